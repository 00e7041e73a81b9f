//! Parsing multi-document YAML and JSON into [`Object`]s, within [`ParseLimits`].
//!
//! YAML goes through two passes over the text: a cheap event scan (no alias expansion,
//! no values built) records the line where each document starts — empty documents
//! included — and then serde-saphyr builds the values under a [`serde_saphyr::Budget`].
//! The line of a value or an error is then mapped back to its document index. Input that
//! starts with `{` or `[` is first read as a JSON stream (one or more values); when that
//! fails and the file does not end in `.json`, it is read as YAML (a flow mapping such
//! as `{a: 1}` is YAML, not JSON).

use std::fmt;
use std::path::Path;

use serde_json::{Map, Value};
use serde_saphyr::granit_parser::{Event, Parser};

use super::object::{name_problem, shape_problem, type_name};
use super::{Object, Source};

/// Bounds on what [`ManifestSet::parse_with`](super::ManifestSet::parse_with) accepts, so
/// hostile input fails fast with a clear error instead of exhausting memory, stack or
/// time.
///
/// The defaults fit any real-world manifest set (a 32 MiB file, 128 levels of nesting,
/// 10,000 documents) while rejecting a "billion laughs" YAML alias bomb after at most
/// 100,000 replayed events.
///
/// ```
/// use idp_core::manifest::ParseLimits;
///
/// let limits = ParseLimits::default().with_max_input_bytes(1024).with_max_depth(16);
/// assert_eq!(limits.max_input_bytes, 1024);
/// assert_eq!(limits.max_depth, 16);
/// assert_eq!(ParseLimits::default().max_depth, 128);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseLimits {
    /// Largest input accepted, in bytes. Default: 32 MiB.
    pub max_input_bytes: usize,
    /// Deepest nesting of mappings and sequences. Default: 128. JSON input is also bounded
    /// by `serde_json`'s own recursion limit of 128.
    pub max_depth: usize,
    /// Most documents in one input (empty ones count). Default: 10,000.
    pub max_documents: usize,
    /// Most YAML alias uses (`*name`) in one input. Default: 10,000.
    pub max_aliases: usize,
    /// Most parser events YAML aliases may replay in total — the bound on alias
    /// expansion. Default: 100,000.
    pub max_alias_expansion: usize,
    /// Most nodes (scalars, mappings, sequences) in one input, which bounds the memory
    /// the parsed values take. Default: 2,000,000 (far more than a 32 MiB file of real
    /// manifests holds).
    pub max_nodes: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_input_bytes: 32 * 1024 * 1024,
            max_depth: 128,
            max_documents: 10_000,
            max_aliases: 10_000,
            max_alias_expansion: 100_000,
            max_nodes: 2_000_000,
        }
    }
}

impl ParseLimits {
    /// Set [`Self::max_input_bytes`].
    ///
    /// ```
    /// let l = idp_core::manifest::ParseLimits::default().with_max_input_bytes(10);
    /// assert!(idp_core::ManifestSet::parse_with(&[b' '; 11], None, &l).is_err());
    /// ```
    pub fn with_max_input_bytes(mut self, bytes: usize) -> Self {
        self.max_input_bytes = bytes;
        self
    }

    /// Set [`Self::max_depth`].
    ///
    /// ```
    /// let l = idp_core::manifest::ParseLimits::default().with_max_depth(2);
    /// assert!(idp_core::ManifestSet::parse_with(b"a: {b: {c: {d: 1}}}", None, &l).is_err());
    /// ```
    pub fn with_max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Set [`Self::max_documents`].
    ///
    /// ```
    /// let l = idp_core::manifest::ParseLimits::default().with_max_documents(1);
    /// assert!(idp_core::ManifestSet::parse_with(b"---\n---\n", None, &l).is_err());
    /// ```
    pub fn with_max_documents(mut self, documents: usize) -> Self {
        self.max_documents = documents;
        self
    }

    /// Set [`Self::max_aliases`].
    ///
    /// ```
    /// let l = idp_core::manifest::ParseLimits::default().with_max_aliases(1);
    /// assert_eq!(l.max_aliases, 1);
    /// ```
    pub fn with_max_aliases(mut self, aliases: usize) -> Self {
        self.max_aliases = aliases;
        self
    }

    /// Set [`Self::max_alias_expansion`].
    ///
    /// ```
    /// let l = idp_core::manifest::ParseLimits::default().with_max_alias_expansion(1000);
    /// assert_eq!(l.max_alias_expansion, 1000);
    /// ```
    pub fn with_max_alias_expansion(mut self, events: usize) -> Self {
        self.max_alias_expansion = events;
        self
    }

    /// Set [`Self::max_nodes`].
    ///
    /// ```
    /// let l = idp_core::manifest::ParseLimits::default().with_max_nodes(1_000);
    /// assert_eq!(l.max_nodes, 1_000);
    /// ```
    pub fn with_max_nodes(mut self, nodes: usize) -> Self {
        self.max_nodes = nodes;
        self
    }

    fn saphyr_options(&self) -> serde_saphyr::Options {
        let mut budget = serde_saphyr::Budget::default();
        budget.max_reader_input_bytes = Some(self.max_input_bytes);
        budget.max_depth = self.max_depth;
        budget.flow_nesting_limit = self.max_depth;
        budget.max_documents = self.max_documents;
        budget.max_aliases = self.max_aliases;
        budget.max_nodes = self.max_nodes;
        budget.max_events = self.max_nodes.saturating_mul(2);
        let mut options = serde_saphyr::Options::default();
        options.budget = Some(budget);
        options.alias_limits.max_total_replayed_events = self.max_alias_expansion;
        options.with_snippet = false;
        options
    }
}

/// A manifest that could not be parsed: where (file, document, line, column) and what.
///
/// [`ManifestSet::parse`](super::ManifestSet::parse) returns an [`idp_core::Error`]
/// (kind `InvalidInput`) whose message is this error's text and whose
/// [`source`](std::error::Error::source) is this error, for programs that want the parts.
///
/// [`idp_core::Error`]: crate::Error
///
/// ```
/// use idp_core::{ManifestSet, manifest::ParseError};
///
/// let err = ManifestSet::parse(b"apiVersion: v1\nkind: Pod\n", None).unwrap_err();
/// let parse = std::error::Error::source(&err)
///     .and_then(|e| e.downcast_ref::<ParseError>())
///     .unwrap();
/// assert_eq!(parse.location().document, 0);
/// assert_eq!(parse.field(), Some("metadata.name"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    location: Source,
    column: Option<usize>,
    field: Option<String>,
    message: String,
}

impl ParseError {
    fn new(location: Source, message: impl Into<String>) -> Self {
        Self {
            location,
            column: None,
            field: None,
            message: message.into(),
        }
    }

    /// File, 0-based document index and 1-based line of the problem.
    ///
    /// ```
    /// let err = idp_core::ManifestSet::parse(b"a: [", None).unwrap_err();
    /// let parse = std::error::Error::source(&err)
    ///     .and_then(|e| e.downcast_ref::<idp_core::manifest::ParseError>())
    ///     .unwrap();
    /// assert_eq!(parse.location().line, 1);
    /// ```
    pub fn location(&self) -> &Source {
        &self.location
    }

    /// 1-based column, when known.
    ///
    /// ```
    /// let err = idp_core::ManifestSet::parse(b"{\"a\": }", Some("x.json".as_ref())).unwrap_err();
    /// let parse = std::error::Error::source(&err)
    ///     .and_then(|e| e.downcast_ref::<idp_core::manifest::ParseError>())
    ///     .unwrap();
    /// assert!(parse.column().is_some());
    /// ```
    pub fn column(&self) -> Option<usize> {
        self.column
    }

    /// The object field at fault (`metadata.name`, `kind`, `items[2].apiVersion`), when
    /// the problem is one field of an otherwise well-formed document.
    ///
    /// ```
    /// let err = idp_core::ManifestSet::parse(b"kind: Pod\nmetadata: {name: a}\n", None).unwrap_err();
    /// let parse = std::error::Error::source(&err)
    ///     .and_then(|e| e.downcast_ref::<idp_core::manifest::ParseError>())
    ///     .unwrap();
    /// assert_eq!(parse.field(), Some("apiVersion"));
    /// ```
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What was wrong, without the location.
    ///
    /// ```
    /// let err = idp_core::ManifestSet::parse(b"- 1\n", None).unwrap_err();
    /// let parse = std::error::Error::source(&err)
    ///     .and_then(|e| e.downcast_ref::<idp_core::manifest::ParseError>())
    ///     .unwrap();
    /// assert!(parse.problem().contains("mapping"));
    /// ```
    pub fn problem(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location.file {
            Some(file) => write!(f, "{}", file.display())?,
            None => f.write_str("<input>")?,
        }
        write!(f, ":{}", self.location.line)?;
        if let Some(column) = self.column {
            write!(f, ":{column}")?;
        }
        write!(
            f,
            " (document {}): {}",
            self.location.document, self.message
        )
    }
}

impl std::error::Error for ParseError {}

impl From<ParseError> for crate::Error {
    fn from(err: ParseError) -> Self {
        crate::Error::invalid_input(err.to_string()).with_source(err)
    }
}

/// One parsed document: index, first line, value.
struct Document {
    index: usize,
    line: usize,
    value: Value,
}

/// Parse `input` into objects (flattening lists), checking every object's identity.
pub(super) fn parse(
    input: &[u8],
    file: Option<&Path>,
    limits: &ParseLimits,
) -> Result<Vec<Object>, ParseError> {
    let here = |document, line| Source::new(file.map(Path::to_path_buf), document, line);
    if input.len() > limits.max_input_bytes {
        return Err(ParseError::new(
            here(0, 1),
            format!(
                "the input is {} bytes, more than the limit of {} bytes \
                 (ParseLimits::max_input_bytes); split it or raise the limit",
                input.len(),
                limits.max_input_bytes
            ),
        ));
    }
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let text = match std::str::from_utf8(input) {
        Ok(text) => text,
        Err(e) => {
            // The prefix is valid UTF-8; it tells the line and the document.
            let prefix = std::str::from_utf8(&input[..e.valid_up_to()]).unwrap_or_default();
            let line = 1 + prefix.matches('\n').count();
            let document = document_starts(prefix, file, limits)
                .map_or(0, |starts| starts.len().saturating_sub(1));
            return Err(ParseError::new(
                here(document, line),
                format!(
                    "the input is not valid UTF-8 (byte {}); save the file as UTF-8",
                    e.valid_up_to()
                ),
            ));
        }
    };

    let documents = if looks_like_json(text) {
        match parse_json(text, file, limits) {
            Ok(documents) => documents,
            Err(err) if is_json_file(file) => return Err(err),
            Err(_) => parse_yaml(text, file, limits)?,
        }
    } else {
        parse_yaml(text, file, limits)?
    };

    let mut objects = Vec::new();
    for doc in documents {
        let source = here(doc.index, doc.line);
        collect(doc.value, &source, "", &mut objects)?;
    }
    Ok(objects)
}

fn looks_like_json(text: &str) -> bool {
    matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['))
}

fn is_json_file(file: Option<&Path>) -> bool {
    file.and_then(Path::extension)
        .is_some_and(|ext| ext.eq_ignore_ascii_case("json"))
}

/// A stream of JSON values, each one a document.
fn parse_json(
    text: &str,
    file: Option<&Path>,
    limits: &ParseLimits,
) -> Result<Vec<Document>, ParseError> {
    check_json_nodes(text, file, limits)?;
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut documents = Vec::new();
    // Line counting is incremental so a long stream of values stays linear.
    let (mut counted_to, mut line) = (0usize, 1usize);
    let mut index = 0;
    loop {
        let rest = &text[stream.byte_offset()..];
        let start = text.len() - rest.trim_start().len();
        line += text[counted_to..start].matches('\n').count();
        counted_to = start;
        let Some(next) = stream.next() else { break };
        let source = Source::new(file.map(Path::to_path_buf), index, line);
        match next {
            Ok(value) => {
                if index >= limits.max_documents {
                    return Err(too_many_documents(source, limits));
                }
                if depth_exceeds(&value, limits.max_depth) {
                    return Err(ParseError::new(
                        source,
                        format!(
                            "the document nests deeper than {} levels \
                             (ParseLimits::max_depth)",
                            limits.max_depth
                        ),
                    ));
                }
                documents.push(Document { index, line, value });
                index += 1;
            }
            Err(e) => {
                let mut err = ParseError::new(
                    Source::new(file.map(Path::to_path_buf), index, e.line().max(1)),
                    format!("invalid JSON: {}", strip_json_location(&e)),
                );
                err.column = Some(e.column().max(1));
                return Err(err);
            }
        }
    }
    Ok(documents)
}

/// Refuse JSON with more than [`ParseLimits::max_nodes`] values before building any:
/// every value but the first of a document follows a `,`, `[` or `{` outside a string,
/// so counting those bounds the number of values.
fn check_json_nodes(
    text: &str,
    file: Option<&Path>,
    limits: &ParseLimits,
) -> Result<(), ParseError> {
    let (mut nodes, mut line) = (0usize, 1usize);
    let (mut in_string, mut escaped) = (false, false);
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                b'\n' => line += 1,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'\n' => line += 1,
            b',' | b'[' | b'{' => {
                nodes += 1;
                if nodes > limits.max_nodes {
                    return Err(ParseError::new(
                        Source::new(file.map(Path::to_path_buf), 0, line),
                        format!(
                            "more than {} values (ParseLimits::max_nodes); split the \
                             input or raise the limit",
                            limits.max_nodes
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn strip_json_location(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix)
        .map_or(text.clone(), str::to_owned)
}

/// Whether `value` nests more than `max` mappings/sequences deep.
fn depth_exceeds(value: &Value, max: usize) -> bool {
    let mut stack = vec![(value, 0usize)];
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth + 1 > max {
            return true;
        }
        stack.extend(children.map(|child| (child, depth + 1)));
    }
    false
}

fn too_many_documents(source: Source, limits: &ParseLimits) -> ParseError {
    ParseError::new(
        source,
        format!(
            "more than {} documents (ParseLimits::max_documents); split the input or \
             raise the limit",
            limits.max_documents
        ),
    )
}

/// The 1-based line where each YAML document starts, in order, empty documents included.
fn document_starts(
    text: &str,
    file: Option<&Path>,
    limits: &ParseLimits,
) -> Result<Vec<usize>, ParseError> {
    let mut options = serde_saphyr::granit_parser::Options::default();
    options.emit_comments = false;
    options.flow_nesting_limit = limits.max_depth;
    options.block_nesting_limit = limits.max_depth.saturating_add(1);
    let mut parser = Parser::new_from_str_with_options(text, options);
    let mut starts = Vec::new();
    while let Some(next) = parser.next_event() {
        match next {
            Ok((Event::DocumentStart(..), span)) => {
                let line = span.start.line().max(1);
                if starts.len() >= limits.max_documents {
                    let source = Source::new(file.map(Path::to_path_buf), starts.len(), line);
                    return Err(too_many_documents(source, limits));
                }
                starts.push(line);
            }
            Ok((Event::StreamEnd, _)) => break,
            Ok(_) => {}
            Err(e) => {
                let mut err = ParseError::new(
                    Source::new(
                        file.map(Path::to_path_buf),
                        starts.len().saturating_sub(1),
                        e.marker().line().max(1),
                    ),
                    {
                        let info = e.info();
                        let hint = if info.contains("limit") {
                            LIMIT_HINT
                        } else {
                            ""
                        };
                        format!("invalid YAML: {info}{hint}")
                    },
                );
                err.column = Some(e.marker().col() + 1);
                return Err(err);
            }
        }
    }
    Ok(starts)
}

/// The index of the document that holds `line`, given where each one starts.
fn document_at(starts: &[usize], line: usize) -> usize {
    starts
        .partition_point(|start| *start <= line)
        .saturating_sub(1)
}

fn parse_yaml(
    text: &str,
    file: Option<&Path>,
    limits: &ParseLimits,
) -> Result<Vec<Document>, ParseError> {
    let starts = document_starts(text, file, limits)?;
    let values: Vec<serde_saphyr::Spanned<Value>> =
        serde_saphyr::from_str_multiple_with_options(text, limits.saphyr_options())
            .map_err(|e| yaml_error(&e, &starts, file))?;
    Ok(values
        .into_iter()
        .map(|spanned| {
            let at = usize::try_from(spanned.referenced.line())
                .unwrap_or(1)
                .max(1);
            let index = document_at(&starts, at);
            let line = starts.get(index).copied().unwrap_or(at);
            Document {
                index,
                line,
                value: spanned.value,
            }
        })
        .collect())
}

fn yaml_error(e: &serde_saphyr::Error, starts: &[usize], file: Option<&Path>) -> ParseError {
    let location = e.location();
    let line = location
        .and_then(|l| usize::try_from(l.line()).ok())
        .filter(|line| *line > 0);
    let column = location
        .and_then(|l| usize::try_from(l.column()).ok())
        .filter(|column| *column > 0);
    let mut text = e.to_string();
    if let (Some(line), Some(column)) = (line, column) {
        let suffix = format!(" at line {line}, column {column}");
        if let Some(stripped) = text.strip_suffix(&suffix) {
            text = stripped.to_owned();
        }
    }
    let hint = if is_limit_error(e, &text) {
        LIMIT_HINT
    } else {
        ""
    };
    let line = line.unwrap_or_else(|| starts.first().copied().unwrap_or(1));
    let mut err = ParseError::new(
        Source::new(file.map(Path::to_path_buf), document_at(starts, line), line),
        format!("invalid YAML: {text}{hint}"),
    );
    err.column = column;
    err
}

const LIMIT_HINT: &str = "; the input exceeds the parse limits (ParseLimits: input size, \
     nesting depth, documents, aliases and alias expansion) — it may be a YAML alias bomb \
     or nest too deeply; simplify it or raise the limit";

/// Whether a serde-saphyr error is a budget or alias-expansion breach.
fn is_limit_error(e: &serde_saphyr::Error, text: &str) -> bool {
    matches!(
        e,
        serde_saphyr::Error::Budget { .. }
            | serde_saphyr::Error::AliasReplayLimitExceeded { .. }
            | serde_saphyr::Error::AliasReplayStackDepthExceeded { .. }
            | serde_saphyr::Error::AliasReplayCounterOverflow { .. }
    ) || text.contains("limit exceeded")
        || text.contains("budget")
}

/// Add the objects in `value` to `out`: a mapping is one object (or a `*List` of
/// them), a sequence holds objects, null is nothing.
fn collect(
    value: Value,
    source: &Source,
    path: &str,
    out: &mut Vec<Object>,
) -> Result<(), ParseError> {
    let at = |field: &str| {
        if path.is_empty() {
            field.to_owned()
        } else if field.is_empty() {
            path.to_owned()
        } else {
            format!("{path}.{field}")
        }
    };
    let fail = |field: Option<String>, problem: String| {
        let message = match &field {
            Some(field) if !path.is_empty() => format!("{}: {problem}", at(field)),
            None if !path.is_empty() => format!("{path}: {problem}"),
            _ => problem,
        };
        let mut err = ParseError::new(source.clone(), message);
        err.field = field.map(|f| at(&f));
        err
    };
    match value {
        Value::Null if path.is_empty() => Ok(()),
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                let item_path = if path.is_empty() {
                    format!("[{i}]")
                } else {
                    format!("{path}[{i}]")
                };
                collect_one(item, source, &item_path, out)?;
            }
            Ok(())
        }
        Value::Object(mut map) if is_list(&map) => match map.remove("items") {
            Some(Value::Array(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    collect_one(item, source, &at(&format!("items[{i}]")), out)?;
                }
                Ok(())
            }
            Some(Value::Null) | None => Ok(()),
            Some(other) => Err(fail(
                Some("items".to_owned()),
                format!("`items` must be a sequence, found {}", type_name(&other)),
            )),
        },
        Value::Object(map) => {
            if let Some((field, problem)) = shape_problem(&map).or_else(|| name_problem(&map)) {
                return Err(fail(Some(field.to_owned()), problem));
            }
            out.push(Object::from_checked(map, source.clone()));
            Ok(())
        }
        other => Err(fail(
            None,
            format!(
                "expected a Kubernetes object (a mapping with apiVersion, kind and \
                 metadata) or a list of them, found {}",
                type_name(&other)
            ),
        )),
    }
}

/// An element of a sequence or of a List's `items`: one object (or a nested list).
fn collect_one(
    value: Value,
    source: &Source,
    path: &str,
    out: &mut Vec<Object>,
) -> Result<(), ParseError> {
    match value {
        Value::Object(_) => collect(value, source, path, out),
        other => {
            let mut err = ParseError::new(
                source.clone(),
                format!(
                    "{path}: expected a Kubernetes object (a mapping), found {}",
                    type_name(&other)
                ),
            );
            err.field = Some(path.to_owned());
            Err(err)
        }
    }
}

/// A `v1 List` or a typed list (`ConfigMapList`…): a kind ending in `List` with `items`.
fn is_list(map: &Map<String, Value>) -> bool {
    map.get("kind")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind.ends_with("List"))
        && map.contains_key("items")
}
