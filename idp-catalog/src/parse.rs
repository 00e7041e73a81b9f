//! Reading catalog YAML: multi-document files, each document with its index and line.
//!
//! Parsing uses `serde-saphyr` with its resource budget (nesting depth, node count,
//! alias expansion), so a hostile file ("billion laughs") fails with an error instead of
//! exhausting memory. Errors carry the 1-based line in the file.
//!
//! ```
//! use idp_catalog::parse::parse_documents;
//! let docs = parse_documents("kind: A\n---\n# empty\n---\nkind: B\n").unwrap();
//! assert_eq!(docs.len(), 2);
//! assert_eq!((docs[1].index, docs[1].line), (2, 4));
//! let err = parse_documents("a: 1\n---\nb: [\n").unwrap_err();
//! assert_eq!(err.document, Some(1));
//! assert!(err.line.unwrap() >= 3);
//! ```

use std::fmt;

use serde_json::Value;

/// One YAML document of a file.
///
/// ```
/// let d = &idp_catalog::parse::parse_documents("a: 1").unwrap()[0];
/// assert_eq!((d.index, d.line), (0, 1));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 0-based position of the document in its file (empty documents count).
    pub index: usize,
    /// 1-based line where the document starts.
    pub line: usize,
    /// The parsed content.
    pub value: Value,
}

/// A file that is not valid YAML.
///
/// ```
/// let e = idp_catalog::parse::parse_documents("a: [").unwrap_err();
/// assert!(e.to_string().starts_with("line "));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The 0-based document that failed, when known.
    pub document: Option<usize>,
    /// The 1-based line in the file, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ParseError {}

fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 200,
            max_nodes: 1_000_000,
            max_aliases: 10_000,
        },
        with_snippet: false,
    }
}

/// Whether `line` is a `---` document marker.
fn is_marker(line: &str) -> bool {
    line.strip_prefix("---")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// Whether a segment has content (not only blanks, comments and directives).
fn has_content(segment: &str) -> bool {
    segment.lines().any(|l| {
        let t = l.trim();
        !(t.is_empty() || t.starts_with('#') || t.starts_with('%') || t == "...")
    })
}

/// Split a multi-document text into `(first line, segment)` pieces at `---` markers.
fn split(text: &str) -> Vec<(usize, &str)> {
    let mut segments = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1usize;
    let mut offset = 0usize;
    for (line_no, line) in (1usize..).zip(text.split_inclusive('\n')) {
        if is_marker(line) && offset > start {
            segments.push((start_line, &text[start..offset]));
            start = offset;
            start_line = line_no;
        }
        offset += line.len();
    }
    segments.push((start_line, &text[start..]));
    // A leading segment with only comments/directives before the first `---` is not a document.
    if segments.len() > 1 && !has_content(segments[0].1) && !is_marker(segments[0].1) {
        segments.remove(0);
    }
    segments
}

/// Parse every document of a YAML text. Empty and `null` documents are skipped but
/// counted in [`Document::index`]. Any syntax error fails the whole file.
///
/// ```
/// let docs = idp_catalog::parse::parse_documents("---\na: 1\n---\nb: 2\n").unwrap();
/// assert_eq!(docs[1].value["b"], 2);
/// ```
pub fn parse_documents(text: &str) -> Result<Vec<Document>, ParseError> {
    let mut out = Vec::new();
    for_each_document(text, |d| out.push(d))?;
    Ok(out)
}

/// [`parse_documents`], handing each document to `each` as soon as it is parsed (so
/// that a caller can be done with one before the next is built). On a syntax error the
/// documents before it have been handed over already; the caller discards them.
pub(crate) fn for_each_document(
    text: &str,
    mut each: impl FnMut(Document),
) -> Result<(), ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, (line, segment)) in split(text).into_iter().enumerate() {
        if !has_content(segment) {
            continue;
        }
        let parsed = match crate::fastyaml::parse(segment) {
            Some(value) => Ok(value),
            None => serde_saphyr::from_str_with_options::<Value>(segment, options()),
        };
        match parsed {
            Ok(Value::Null) => {}
            Ok(value) => each(Document { index, line, value }),
            Err(e) => {
                let err_line = e
                    .location()
                    .map(|l| line + usize::try_from(l.line()).unwrap_or(1).saturating_sub(1));
                let render = serde_saphyr::render_options! {
                    snippets: serde_saphyr::SnippetMode::Off,
                    line_offset: (line - 1) as u64,
                };
                return Err(ParseError {
                    document: Some(index),
                    line: err_line,
                    message: e.render_with_options(render),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_markers_only_at_column_zero() {
        let text = "a: |\n  ---\n  x\n---\nb: 1\n";
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].value["a"], "---\nx\n");
        assert_eq!(docs[1].line, 4);
    }

    #[test]
    fn leading_comment_is_not_a_document() {
        let docs = parse_documents("# hello\n---\na: 1\n").unwrap();
        assert_eq!((docs[0].index, docs[0].line), (0, 2));
    }

    #[test]
    fn error_line_is_absolute() {
        let err = parse_documents("a: 1\n---\nb: 1\nc: [\n").unwrap_err();
        assert_eq!(err.document, Some(1));
        let line = err.line.unwrap();
        assert!((4..=5).contains(&line), "{err}");
    }

    /// Every document of a generated organisation goes through the fast path (no
    /// fallback to serde-saphyr), and reads the same as serde-saphyr reads it.
    #[test]
    fn generated_org_is_all_on_the_fast_path() {
        let dir = tempfile::tempdir().unwrap();
        let files = crate::generate::write_org(dir.path(), 3000, 5).unwrap();
        let (mut fast, mut fallbacks) = (0, Vec::new());
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (line, segment) in split(&text) {
                if !has_content(segment) {
                    continue;
                }
                match crate::fastyaml::parse(segment) {
                    Some(v) => {
                        assert_eq!(v, serde_saphyr::from_str::<Value>(segment).unwrap());
                        fast += 1;
                    }
                    None => fallbacks.push(format!("{}:{line}", f.display())),
                }
            }
        }
        assert!(
            fallbacks.is_empty(),
            "{} fell back: {fallbacks:?}",
            fallbacks.len()
        );
        assert_eq!(fast, 3001);
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            let refs = vec![format!("*a{p}"); 10].join(", ");
            text += &[
                "a",
                &i.to_string(),
                ": &a",
                &i.to_string(),
                " [",
                &refs,
                "]\n",
            ]
            .concat();
        }
        assert!(parse_documents(&text).is_err());
    }
}
