//! The `spec.location` (and `pathTests[].subPath`) of Gatekeeper mutators: a dotted
//! path of field names, each optionally followed by one list selector.
//!
//! ```text
//! location  := segment ("." segment)*
//! segment   := name ("[" name ":" (name | "*") "]")?
//! name      := [A-Za-z0-9_-]+  |  '"' … '"'  |  "'" … "'"    (backslash escapes in quotes)
//! ```
//!
//! Whitespace between tokens is ignored (`[name: foo]` and `[name:foo]` are the same).
//! A quoted `"*"` is the literal value `*`, not a glob. Errors name the 1-based column.

use std::fmt;

/// The most segments (fields and list selectors) a location may have: locations are
/// walked recursively, so their depth is bounded.
pub(crate) const MAX_NODES: usize = 64;
/// The longest location accepted, in characters.
pub(crate) const MAX_CHARS: usize = 4096;

/// One step of a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    /// A field of a mapping.
    Field(String),
    /// The elements of a list whose `key` field is `value` (`None`: any element, `*`).
    List { key: String, value: Option<String> },
}

/// A parsed location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Name(String),
    Dot,
    Open,
    Close,
    Colon,
    Glob,
    End,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Self::Name(n) => format!("name {n:?}"),
            Self::Dot => "'.'".to_owned(),
            Self::Open => "'['".to_owned(),
            Self::Close => "']'".to_owned(),
            Self::Colon => "':'".to_owned(),
            Self::Glob => "'*'".to_owned(),
            Self::End => "the end".to_owned(),
        }
    }
}

fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The tokens of `text`, each with its 1-based column.
fn tokens(text: &str) -> Result<Vec<(Token, usize)>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                i += 1;
                continue;
            }
            '.' => out.push((Token::Dot, column)),
            '[' => out.push((Token::Open, column)),
            ']' => out.push((Token::Close, column)),
            ':' => out.push((Token::Colon, column)),
            '*' => out.push((Token::Glob, column)),
            '"' | '\'' => {
                let mut name = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => {
                            return Err(format!(
                                "column {column}: the quoted name is not closed (missing {c})"
                            ));
                        }
                        Some(&q) if q == c => break,
                        Some('\\') => {
                            let Some(&escaped) = chars.get(j + 1) else {
                                return Err(format!(
                                    "column {}: a backslash ends the location",
                                    j + 1
                                ));
                            };
                            name.push(escaped);
                            j += 2;
                        }
                        Some(&other) => {
                            name.push(other);
                            j += 1;
                        }
                    }
                }
                out.push((Token::Name(name), column));
                i = j + 1;
                continue;
            }
            c if is_plain(c) => {
                let start = i;
                while i < chars.len() && is_plain(chars[i]) {
                    i += 1;
                }
                out.push((Token::Name(chars[start..i].iter().collect()), column));
                continue;
            }
            other => {
                return Err(format!(
                    "column {column}: unexpected character {other:?} (quote names with other characters)"
                ));
            }
        }
        i += 1;
    }
    out.push((Token::End, chars.len() + 1));
    Ok(out)
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> (&Token, usize) {
        self.tokens
            .get(self.at)
            .or_else(|| self.tokens.last())
            .map_or((&Token::End, 0), |(t, c)| (t, *c))
    }

    fn bump(&mut self) -> (Token, usize) {
        let (token, column) = self.peek();
        let out = (token.clone(), column);
        if self.at < self.tokens.len() {
            self.at += 1;
        }
        out
    }

    fn name(&mut self, what: &str) -> Result<String, String> {
        match self.bump() {
            (Token::Name(n), column) if n.is_empty() => {
                Err(format!("column {column}: the {what} is empty"))
            }
            (Token::Name(n), _) => Ok(n),
            (other, column) => Err(format!(
                "column {column}: expected a {what}, found {}",
                other.describe()
            )),
        }
    }

    fn expect(&mut self, token: &Token, context: &str) -> Result<(), String> {
        let (found, column) = self.bump();
        if &found == token {
            Ok(())
        } else {
            Err(format!(
                "column {column}: expected {} {context}, found {}",
                token.describe(),
                found.describe()
            ))
        }
    }
}

impl Location {
    /// Parse a location; the error names the column.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let length = text.chars().count();
        if length > MAX_CHARS {
            return Err(format!(
                "the location is {length} characters long, more than {MAX_CHARS}"
            ));
        }
        let mut parser = Parser {
            tokens: tokens(text)?,
            at: 0,
        };
        if parser.peek().0 == &Token::End {
            return Err("the location is empty".to_owned());
        }
        let mut nodes = Vec::new();
        loop {
            nodes.push(Node::Field(parser.name("field name")?));
            if parser.peek().0 == &Token::Open {
                parser.bump();
                let key = parser.name("key field name")?;
                parser.expect(&Token::Colon, &format!("after the key field {key:?}"))?;
                let value = match parser.bump() {
                    (Token::Glob, _) => None,
                    (Token::Name(v), _) => Some(v),
                    (other, column) => {
                        return Err(format!(
                            "column {column}: expected a key value or '*', found {}",
                            other.describe()
                        ));
                    }
                };
                parser.expect(&Token::Close, "to close the list selector")?;
                nodes.push(Node::List { key, value });
            }
            if nodes.len() > MAX_NODES {
                return Err(format!(
                    "the location has more than {MAX_NODES} segments (fields and list selectors)"
                ));
            }
            match parser.bump() {
                (Token::End, _) => break,
                (Token::Dot, column) => {
                    if parser.peek().0 == &Token::End {
                        return Err(format!("column {column}: the location ends with '.'"));
                    }
                }
                (other, column) => {
                    return Err(format!(
                        "column {column}: expected '.' or the end, found {}",
                        other.describe()
                    ));
                }
            }
        }
        Ok(Self { nodes })
    }

    /// Whether `prefix`'s segments are the first ones of this location.
    pub(crate) fn starts_with(&self, prefix: &Location) -> bool {
        self.nodes.starts_with(&prefix.nodes)
    }

    /// The last segment.
    pub(crate) fn last(&self) -> Option<&Node> {
        self.nodes.last()
    }

    /// The first `count` segments, printed.
    pub(crate) fn prefix(&self, count: usize) -> String {
        Self {
            nodes: self.nodes.iter().take(count).cloned().collect(),
        }
        .to_string()
    }
}

fn write_name(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    if !name.is_empty() && name.chars().all(is_plain) {
        return f.write_str(name);
    }
    f.write_str("\"")?;
    for c in name.chars() {
        if c == '"' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, node) in self.nodes.iter().enumerate() {
            match node {
                Node::Field(name) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    write_name(f, name)?;
                }
                Node::List { key, value } => {
                    f.write_str("[")?;
                    write_name(f, key)?;
                    f.write_str(": ")?;
                    match value {
                        Some(v) => write_name(f, v)?,
                        None => f.write_str("*")?,
                    }
                    f.write_str("]")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn field(n: &str) -> Node {
        Node::Field(n.to_owned())
    }

    #[test]
    fn parses_the_documented_forms() {
        let l = Location::parse("spec.containers[name: foo].imagePullPolicy").unwrap();
        assert_eq!(
            l.nodes,
            [
                field("spec"),
                field("containers"),
                Node::List {
                    key: "name".into(),
                    value: Some("foo".into())
                },
                field("imagePullPolicy"),
            ]
        );
        assert_eq!(
            Location::parse("spec.containers[name:foo].imagePullPolicy").unwrap(),
            l
        );
        let glob = Location::parse("spec.containers[name: *].args").unwrap();
        assert_eq!(
            glob.nodes[2],
            Node::List {
                key: "name".into(),
                value: None
            }
        );
        let quoted = Location::parse(r#"metadata.labels."app.kubernetes.io/name""#).unwrap();
        assert_eq!(quoted.nodes[2], field("app.kubernetes.io/name"));
        assert_eq!(
            quoted.to_string(),
            r#"metadata.labels."app.kubernetes.io/name""#
        );
        let single = Location::parse(r"metadata.annotations.'a\'b'").unwrap();
        assert_eq!(single.nodes[2], field("a'b"));
        // A quoted star is a value, not a glob.
        let star = Location::parse(r#"spec.xs[name: "*"].v"#).unwrap();
        assert_eq!(
            star.nodes[2],
            Node::List {
                key: "name".into(),
                value: Some("*".into())
            }
        );
        assert_eq!(star.to_string(), r#"spec.xs[name: "*"].v"#);
        assert_eq!(l.prefix(3), "spec.containers[name: foo]");
        assert!(l.starts_with(&Location::parse("spec.containers[name: foo]").unwrap()));
        assert!(!l.starts_with(&Location::parse("spec.containers[name: bar]").unwrap()));
    }

    #[test]
    fn errors_name_the_column() {
        let cases = [
            ("", "the location is empty"),
            ("   ", "the location is empty"),
            ("spec.", "column 5: the location ends with '.'"),
            ("spec..x", "column 6: expected a field name, found '.'"),
            (".spec", "column 1: expected a field name, found '.'"),
            ("spec.containers[name foo]", "column 22: expected ':'"),
            ("spec.containers[name: foo", "column 26: expected ']'"),
            (
                "spec.containers[: foo]",
                "column 17: expected a key field name",
            ),
            (
                "spec.containers[name: ]",
                "column 23: expected a key value or '*'",
            ),
            (
                "spec.a b",
                "column 8: expected '.' or the end, found name \"b\"",
            ),
            ("spec.a/b", "column 7: unexpected character '/'"),
            ("spec.\"open", "column 6: the quoted name is not closed"),
            ("spec.\"\"", "column 6: the field name is empty"),
            (
                "spec.xs[a: b][c: d]",
                "column 14: expected '.' or the end, found '['",
            ),
            ("spec.x\\", "column 7: unexpected character '\\\\'"),
        ];
        for (text, want) in cases {
            let err = Location::parse(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn hostile_locations_are_refused() {
        let deep = vec!["a"; MAX_NODES + 1].join(".");
        assert!(
            Location::parse(&deep)
                .unwrap_err()
                .contains("more than 64 segments")
        );
        let ok = vec!["a"; MAX_NODES].join(".");
        assert_eq!(Location::parse(&ok).unwrap().nodes.len(), MAX_NODES);
        let long = "a".repeat(MAX_CHARS + 1);
        assert!(
            Location::parse(&long)
                .unwrap_err()
                .contains("characters long")
        );
    }

    fn arb_name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9_-]{1,8}",
            "[a-z./:\"'\\\\* \\[\\]]{1,6}",
            "\\PC{1,4}",
        ]
    }

    fn arb_location() -> impl Strategy<Value = Location> {
        prop::collection::vec(
            (
                arb_name(),
                prop::option::of((arb_name(), prop::option::of(prop_oneof!["", arb_name()]))),
            ),
            1..6,
        )
        .prop_map(|segments| {
            let mut nodes = Vec::new();
            for (name, list) in segments {
                nodes.push(Node::Field(name));
                if let Some((key, value)) = list {
                    nodes.push(Node::List { key, value });
                }
            }
            Location { nodes }
        })
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,40}") {
            let _ = Location::parse(&text);
        }

        #[test]
        fn never_panics_on_path_like_text(text in "[a-z.\\[\\]:*\"' \\\\]{0,30}") {
            if let Ok(l) = Location::parse(&text) {
                prop_assert_eq!(Location::parse(&l.to_string()).unwrap(), l);
            }
        }

        #[test]
        fn printed_locations_parse_back(l in arb_location()) {
            let text = l.to_string();
            prop_assert_eq!(Location::parse(&text).unwrap(), l, "{}", text);
        }
    }
}
