//! A fast path for the plain YAML that catalog files are almost always written in.
//!
//! Most `catalog-info.yaml` documents use a small part of YAML: block mappings and
//! sequences, one-line plain and quoted scalars, one-line flow sequences, and `|`/`>`
//! block scalars. [`parse`] reads exactly that part about ten times faster than a general
//! YAML parser and answers `None` for anything else — anchors, tags, multi-line flow
//! collections, continuation lines, duplicate keys, unusual characters, ambiguous
//! scalars it cannot type on its own, and every syntax error. The caller then uses the
//! full parser, so the result is always what the full parser gives: the fast path only
//! decides how fast, never what. Property tests compare the two on generated documents
//! and on arbitrary text.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// Deepest nesting the fast path handles; deeper documents go to the full parser, which
/// applies the configured budget.
const MAX_DEPTH: usize = 64;

/// Longest document the fast path reads (fewer bytes than the full parser's node budget,
/// so no budget can be exceeded here).
const MAX_LEN: usize = 1_000_000;

/// One line of the document: its indentation (spaces) and the rest, `\r` removed.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
    /// Whether whitespace was trimmed off the end (content inside a block scalar).
    trimmed: bool,
}

impl Line<'_> {
    /// Blank or comment-only lines carry no structure (outside block scalars).
    fn is_trivia(&self) -> bool {
        self.text.is_empty() || self.text.starts_with('#')
    }
}

/// Parse one YAML document (no `---` marker inside except on its first line), or `None`
/// when the text is outside the fast path's subset.
///
/// An empty document gives `Some(Value::Null)`.
pub(crate) fn parse(text: &str) -> Option<Value> {
    // Large documents go to the full parser, which enforces the node budget.
    if text.len() > MAX_LEN || !all_printable(text) {
        return None;
    }
    let has_cr = text.contains('\r');
    let mut lines = Vec::with_capacity(text.len() / 16 + 1);
    for (n, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if has_cr && raw.contains('\r') {
            return None;
        }
        if n == 0 && raw.starts_with("---") {
            // A marker is `---` alone or followed by whitespace; `---x` is a scalar.
            let after = &raw[3..];
            let rest = after.trim_start_matches([' ', '\t']);
            let separated = rest.len() < after.len();
            if !(after.is_empty() || (separated && (rest.is_empty() || rest.starts_with('#')))) {
                return None;
            }
            lines.push(Line {
                indent: 0,
                text: "",
                trimmed: false,
            });
            continue;
        }
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        let untrimmed = &raw[indent..];
        let text = untrimmed.trim_end_matches([' ', '\t']);
        let trimmed = text.len() != untrimmed.len();
        if text.starts_with('\t') {
            // A tab in indentation: only harmless on an otherwise blank line, and only
            // the full parser knows the rest.
            if !text.trim_start_matches(['\t', ' ']).is_empty() {
                return None;
            }
            lines.push(Line {
                indent,
                text: "",
                trimmed: true,
            });
            continue;
        }
        if indent == 0 && (text.starts_with("---") || text.starts_with("...")) {
            return None;
        }
        if text.starts_with('%') && indent == 0 {
            return None;
        }
        lines.push(Line {
            indent,
            text,
            trimmed,
        });
    }
    let mut p = Parser { lines, pos: 0 };
    p.skip_trivia();
    if p.pos >= p.lines.len() {
        return Some(Value::Null);
    }
    let first = p.lines[p.pos];
    let value = if first.indent != 0 {
        // A document may start indented, but keep the fast path simple.
        return None;
    } else if is_block_start(first.text) {
        p.block(0, 0)?
    } else {
        // A lone scalar document.
        let v = inline_value(first.text)?;
        p.pos += 1;
        v
    };
    p.skip_trivia();
    (p.pos >= p.lines.len()).then_some(value)
}

/// Whether every character of `text` is [`printable`] (checked a byte at a time for
/// ASCII text).
fn all_printable(text: &str) -> bool {
    if text.is_ascii() {
        text.bytes()
            .all(|b| matches!(b, b'\t' | b'\n' | b'\r' | 0x20..=0x7e))
    } else {
        text.chars().all(printable)
    }
}

/// Whether `c` is allowed in a YAML stream (the `c-printable` set) and not a character
/// some parsers treat as a line break.
fn printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// Whether a line opens a block collection (a sequence entry or a mapping entry).
fn is_block_start(text: &str) -> bool {
    text == "-" || text.starts_with("- ") || split_key(text).is_some()
}

struct Parser<'a> {
    lines: Vec<Line<'a>>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn skip_trivia(&mut self) {
        while self.pos < self.lines.len() && self.lines[self.pos].is_trivia() {
            self.pos += 1;
        }
    }

    /// The next structural line, if any.
    fn peek(&mut self) -> Option<Line<'a>> {
        self.skip_trivia();
        self.lines.get(self.pos).copied()
    }

    /// A block collection whose first line is the next line, at `indent`.
    fn block(&mut self, indent: usize, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        let line = self.peek()?;
        if line.indent != indent {
            return None;
        }
        if line.text == "-" || line.text.starts_with("- ") {
            self.sequence(indent, depth)
        } else {
            self.mapping(indent, depth)
        }
    }

    fn sequence(&mut self, indent: usize, depth: usize) -> Option<Value> {
        let mut items = Vec::new();
        while let Some(line) = self.peek() {
            if line.indent < indent {
                break;
            }
            if line.indent > indent {
                return None;
            }
            let rest = if line.text == "-" {
                ""
            } else if let Some(rest) = line.text.strip_prefix("- ") {
                rest
            } else {
                // Something else at the sequence's indentation ends it; a parent decides
                // whether that is valid.
                break;
            };
            let spaces = rest.len() - rest.trim_start_matches(' ').len();
            let rest = &rest[spaces..];
            if rest.is_empty() || rest.starts_with('#') {
                self.pos += 1;
                items.push(self.nested_or_null(indent, depth, true)?);
            } else if rest == "-" || rest.starts_with("- ") {
                return None;
            } else if split_key(rest).is_some() {
                // A compact mapping: `- name: x` opens a mapping indented to `name`.
                let inner = indent + 2 + spaces;
                self.lines[self.pos] = Line {
                    indent: inner,
                    text: rest,
                    trimmed: line.trimmed,
                };
                items.push(self.mapping(inner, depth + 1)?);
            } else if let Some(style) = block_scalar_style(rest) {
                self.pos += 1;
                items.push(Value::String(self.block_scalar(indent, style)?));
            } else {
                self.pos += 1;
                items.push(inline_value(rest)?);
                self.reject_continuation(indent)?;
            }
        }
        Some(Value::Array(items))
    }

    fn mapping(&mut self, indent: usize, depth: usize) -> Option<Value> {
        let mut map = Map::new();
        while let Some(line) = self.peek() {
            if line.indent < indent {
                break;
            }
            if line.indent > indent {
                return None;
            }
            let (key, rest) = split_key(line.text)?;
            let serde_json::map::Entry::Vacant(slot) = map.entry(key) else {
                return None;
            };
            self.pos += 1;
            let value = if rest.is_empty() || rest.starts_with('#') {
                self.nested_or_null(indent, depth, false)?
            } else if let Some(style) = block_scalar_style(rest) {
                Value::String(self.block_scalar(indent, style)?)
            } else {
                let v = inline_value(rest)?;
                self.reject_continuation(indent)?;
                v
            };
            slot.insert(value);
        }
        Some(Value::Object(map))
    }

    /// After `key:` or `-` with nothing else: a nested block, or null. A mapping value
    /// may also be a sequence at the key's own indentation.
    fn nested_or_null(&mut self, indent: usize, depth: usize, in_sequence: bool) -> Option<Value> {
        match self.peek() {
            Some(next) if next.indent > indent => {
                if !is_block_start(next.text) {
                    return None;
                }
                self.block(next.indent, depth + 1)
            }
            Some(next)
                if !in_sequence
                    && next.indent == indent
                    && (next.text == "-" || next.text.starts_with("- ")) =>
            {
                self.sequence(indent, depth + 1)
            }
            _ => Some(Value::Null),
        }
    }

    /// A scalar must not continue on more-indented lines (multi-line plain or quoted
    /// scalars are left to the full parser).
    fn reject_continuation(&mut self, indent: usize) -> Option<()> {
        match self.peek() {
            Some(next) if next.indent > indent => None,
            _ => Some(()),
        }
    }

    /// The content of a `|` or `>` block scalar whose header was on the previous line,
    /// inside a node at `parent` indentation.
    fn block_scalar(&mut self, parent: usize, style: BlockStyle) -> Option<String> {
        // Raw lines: comments and blank lines are content here.
        let start = self.pos;
        let mut block_indent = None;
        let mut end = start;
        while end < self.lines.len() {
            let line = self.lines[end];
            if line.text.is_empty() {
                // Leading blank lines (no indentation yet): their rules are subtle.
                block_indent?;
                end += 1;
                continue;
            }
            let bi = *block_indent.get_or_insert(line.indent);
            if line.indent < bi {
                break;
            }
            end += 1;
        }
        let bi = block_indent?;
        if bi <= parent {
            return None;
        }
        // Trailing whitespace is content in a block scalar, and a blank line with more
        // spaces than the block's indentation is a content line of spaces: both are left
        // to the full parser.
        if self.lines[start..end]
            .iter()
            .any(|l| l.trimmed || (l.text.is_empty() && l.indent > bi))
        {
            return None;
        }
        // Trailing blank lines are not content under clip/strip chomping.
        let mut last = end;
        while last > start && self.lines[last - 1].text.is_empty() {
            last -= 1;
        }
        let mut out = String::new();
        let mut prev_blank = 0usize;
        let mut first = true;
        for line in &self.lines[start..last] {
            if line.text.is_empty() {
                prev_blank += 1;
                continue;
            }
            let extra = line.indent - bi;
            if style.folded {
                if extra > 0 {
                    return None;
                }
                if !first {
                    if prev_blank == 0 {
                        out.push(' ');
                    } else {
                        for _ in 0..prev_blank {
                            out.push('\n');
                        }
                    }
                }
            } else {
                if !first {
                    out.push('\n');
                }
                for _ in 0..prev_blank {
                    out.push('\n');
                }
                out.extend(std::iter::repeat_n(' ', extra));
            }
            out.push_str(line.text);
            prev_blank = 0;
            first = false;
        }
        if !style.strip && !out.is_empty() {
            out.push('\n');
        }
        self.pos = end;
        Some(out)
    }
}

#[derive(Debug, Clone, Copy)]
struct BlockStyle {
    folded: bool,
    strip: bool,
}

/// `|`, `|-`, `>` or `>-` (optionally followed by a comment is left to the full parser).
fn block_scalar_style(rest: &str) -> Option<BlockStyle> {
    match rest {
        "|" => Some(BlockStyle {
            folded: false,
            strip: false,
        }),
        "|-" => Some(BlockStyle {
            folded: false,
            strip: true,
        }),
        ">" => Some(BlockStyle {
            folded: true,
            strip: false,
        }),
        ">-" => Some(BlockStyle {
            folded: true,
            strip: true,
        }),
        _ => None,
    }
}

/// Split `key: rest` (or `key:`) into the key and the trimmed rest of the line.
fn split_key(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let first = text.chars().next()?;
    let (key, after) = match first {
        '"' => {
            let (s, used) = double_quoted(text)?;
            (Cow::Owned(s), &text[used..])
        }
        '\'' => {
            let (s, used) = single_quoted(text)?;
            (Cow::Owned(s), &text[used..])
        }
        _ => {
            if starts_with_indicator(text) {
                return None;
            }
            let bytes = text.as_bytes();
            let mut i = 0;
            let mut found = None;
            while i < bytes.len() {
                if bytes[i] == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' ') {
                    found = Some(i);
                    break;
                }
                if bytes[i] == b'#' && i > 0 && matches!(bytes[i - 1], b' ' | b'\t') {
                    return None;
                }
                i += 1;
            }
            let colon = found?;
            let key = text[..colon].trim_end_matches([' ', '\t']);
            if key.is_empty() || !plain_is_string(key) || key.contains('\t') || key == "<<" {
                // Keys that are not plainly strings (`1:`, `true:`, `~:`) are rare and
                // typed differently by different tools: left to the full parser.
                return None;
            }
            (Cow::Borrowed(key), &text[colon..])
        }
    };
    let after = after.trim_start_matches(' ');
    let rest = after.strip_prefix(':')?;
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some((key, rest.trim_start_matches(' ')))
}

/// Characters that cannot start a plain scalar in block context (or that we leave to
/// the full parser).
fn starts_with_indicator(text: &str) -> bool {
    let Some(c) = text.chars().next() else {
        return true;
    };
    if matches!(
        c,
        ',' | '['
            | ']'
            | '{'
            | '}'
            | '#'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
    ) {
        return true;
    }
    matches!(c, '-' | '?' | ':') && (text.len() == 1 || matches!(text.as_bytes()[1], b' ' | b'\t'))
}

/// A value on the rest of a line: quoted, `[...]`, `{}`, or plain.
fn inline_value(text: &str) -> Option<Value> {
    let first = text.chars().next()?;
    match first {
        '"' => {
            let (s, used) = double_quoted(text)?;
            trailing_comment_only(&text[used..])?;
            Some(Value::String(s))
        }
        '\'' => {
            let (s, used) = single_quoted(text)?;
            trailing_comment_only(&text[used..])?;
            Some(Value::String(s))
        }
        '[' => flow_sequence(text),
        '{' => {
            let inner = text.strip_prefix('{')?;
            let close = inner.find('}')?;
            if !inner[..close].trim_matches(' ').is_empty() {
                return None;
            }
            trailing_comment_only(&inner[close + 1..])?;
            Some(Value::Object(Map::new()))
        }
        _ => {
            if starts_with_indicator(text) {
                return None;
            }
            let plain = strip_comment(text);
            if plain.contains(": ") || plain.ends_with(':') || plain.contains('\t') {
                return None;
            }
            scalar(plain)
        }
    }
}

/// What follows a closed quoted scalar must be nothing or a comment.
fn trailing_comment_only(rest: &str) -> Option<()> {
    if rest.is_empty() {
        return Some(());
    }
    let t = rest.trim_start_matches([' ', '\t']);
    (t.len() < rest.len() && (t.is_empty() || t.starts_with('#'))).then_some(())
}

/// Cut a ` #comment` off a plain scalar.
fn strip_comment(text: &str) -> &str {
    let bytes = text.as_bytes();
    for i in 1..bytes.len() {
        if bytes[i] == b'#' && matches!(bytes[i - 1], b' ' | b'\t') {
            return text[..i].trim_end_matches([' ', '\t']);
        }
    }
    text
}

/// `[a, b, "c"]` on one line, scalars only.
fn flow_sequence(text: &str) -> Option<Value> {
    let inner = text.strip_prefix('[')?;
    let close = inner.rfind(']')?;
    trailing_comment_only(&inner[close + 1..])?;
    let body = inner[..close].trim_matches(' ');
    if body.is_empty() {
        return Some(Value::Array(Vec::new()));
    }
    let mut items = Vec::new();
    let mut rest = body;
    loop {
        rest = rest.trim_start_matches(' ');
        let (item, after) = match rest.chars().next()? {
            '"' => {
                let (s, used) = double_quoted(rest)?;
                (Value::String(s), &rest[used..])
            }
            '\'' => {
                let (s, used) = single_quoted(rest)?;
                (Value::String(s), &rest[used..])
            }
            _ => {
                let end = rest.find(',').unwrap_or(rest.len());
                let plain = rest[..end].trim_end_matches(' ');
                if plain.is_empty()
                    || plain.contains([
                        '[', ']', '{', '}', ':', '#', '\'', '"', '&', '*', '!', '|', '>', '%', '@',
                        '`', '?', '\t',
                    ])
                    || plain.starts_with('-')
                {
                    return None;
                }
                (scalar(plain)?, &rest[end..])
            }
        };
        items.push(item);
        let after = after.trim_start_matches(' ');
        if after.is_empty() {
            break;
        }
        rest = after.strip_prefix(',')?;
        if rest.trim_start_matches(' ').is_empty() {
            // A trailing comma: valid YAML, but leave it to the full parser.
            return None;
        }
    }
    Some(Value::Array(items))
}

/// Type a plain scalar as the full parser does. Words that cannot be anything but a
/// string are typed here; forms that might be a number, boolean or null (`1.5`, `0x1f`,
/// `yes`, `~`) are typed by the full parser on their own, which is exactly how it types
/// them in place, and answer `None` when that is not a scalar.
fn scalar(plain: &str) -> Option<Value> {
    if plain_is_string(plain) {
        return Some(Value::String(plain.to_owned()));
    }
    match serde_saphyr::from_str::<Value>(plain) {
        Ok(v @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_))) => Some(v),
        _ => None,
    }
}

/// Whether a plain scalar can only be a string: it cannot match the YAML 1.2 core
/// schema's null, boolean, integer or float forms, nor the YAML 1.1 booleans and number
/// forms some parsers still accept.
fn plain_is_string(plain: &str) -> bool {
    let bytes = plain.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    let second = bytes.get(1).copied();
    match first {
        b'0'..=b'9' => false,
        b'+' | b'-' => !matches!(second, Some(b'0'..=b'9' | b'.') | None),
        b'.' => {
            !(matches!(second, Some(b'0'..=b'9') | None)
                || ["inf", "nan"]
                    .iter()
                    .any(|w| plain[1..].eq_ignore_ascii_case(w)))
        }
        b'~' => second.is_some(),
        _ => {
            if plain.len() > 5 {
                return true;
            }
            // Compared without allocating a lower-case copy (most keys are this short).
            !["true", "false", "null", "yes", "no", "on", "off", "y", "n"]
                .iter()
                .any(|w| plain.eq_ignore_ascii_case(w))
        }
    }
}

/// A single-quoted scalar on one line; returns it and the bytes consumed.
fn single_quoted(text: &str) -> Option<(String, usize)> {
    let body = text.strip_prefix('\'')?;
    let mut out = String::new();
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if let Some(&(_, '\'')) = chars.peek() {
                chars.next();
                out.push('\'');
                continue;
            }
            return Some((out, i + 2));
        }
        out.push(c);
    }
    None
}

/// A double-quoted scalar on one line with the common escapes; returns it and the bytes
/// consumed.
fn double_quoted(text: &str) -> Option<(String, usize)> {
    let body = text.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 2)),
            '\\' => {
                let (_, e) = chars.next()?;
                let decoded = match e {
                    '"' => '"',
                    '\\' => '\\',
                    '/' => '/',
                    'n' => '\n',
                    't' | '\t' => '\t',
                    'r' => '\r',
                    '0' => '\0',
                    ' ' => ' ',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'e' => '\u{1b}',
                    'a' => '\u{7}',
                    'v' => '\u{b}',
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut code = 0u32;
                        for _ in 0..n {
                            let (_, h) = chars.next()?;
                            code = code * 16 + h.to_digit(16)?;
                        }
                        char::from_u32(code)?
                    }
                    _ => return None,
                };
                out.push(decoded);
            }
            _ => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn full(text: &str) -> Result<Value, String> {
        serde_saphyr::from_str::<Value>(text).map_err(|e| e.to_string())
    }

    /// The fast path must either decline or agree with the full parser.
    fn agree(text: &str) {
        if let Some(fast) = parse(text) {
            match full(text) {
                Ok(v) => assert_eq!(fast, v, "fast path differs on {text:?}"),
                Err(e) => panic!("fast path accepted {text:?} which the full parser rejects: {e}"),
            }
        }
    }

    #[test]
    fn an_indicator_followed_by_a_tab_is_an_indicator() {
        // `?`, `-` and `:` then a tab start a key, an entry or a value, as with a space:
        // not plain scalars (found by never_disagrees_on_token_soup).
        for text in ["?\t#c", "?\tx", "-\tx", "a:\n  -\tb\n", ":\tx"] {
            agree(text);
        }
    }

    #[test]
    fn reads_a_typical_entity() {
        let text = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: cart # the cart\n  description: |\n    Shopping cart.\n\n    Second paragraph.\n  tags: [java, 'web', \"data\"]\n  annotations:\n    backstage.io/techdocs-ref: dir:.\n  links:\n  - url: https://example.com/x?a=b#frag\n    title: Dashboard\n    icon: dashboard\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n  dependsOn:\n    - resource:cart-db\n  replicas: 3\n  ratio: 1.5\n  enabled: true\n  nothing: ~\n  empty:\n  target: ./x.yaml\n  $text: ./docs/api.yaml\n";
        let fast = parse(text).expect("typical entity is on the fast path");
        assert_eq!(fast, full(text).unwrap());
        assert_eq!(
            fast["metadata"]["description"],
            "Shopping cart.\n\nSecond paragraph.\n"
        );
        assert_eq!(fast["spec"]["replicas"], json!(3));
        assert_eq!(fast["spec"]["enabled"], json!(true));
        assert_eq!(fast["spec"]["nothing"], Value::Null);
    }

    #[test]
    fn declines_what_it_does_not_handle() {
        for text in [
            "---#c\n",
            "---x: 1\n",
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: b\n  c\n",
            "a: 1\na: 2\n",
            "a: [1,\n  2]\n",
            "? a\n: b\n",
            "a: |+\n  x\n",
            "a: \"x\n  y\"\n",
            "- - a\n",
            "a:\tb\n",
            "a: b: c\n",
        ] {
            assert!(parse(text).is_none(), "{text:?}");
        }
    }

    #[test]
    fn block_scalars_match_the_full_parser() {
        for text in [
            "a: |\n  x\n  y\n",
            "a: |-\n  x\n\n  y\n\n",
            "a: >\n  x\n  y\n\n  z\n",
            "a: >-\n  x\n  y\n",
            "a: |\n    x\n      y\n    z\nb: 1\n",
            "- |\n  x\n- >\n  y\n  z\n",
            "a:\n  b: |\n    # not a comment\n    x\n  c: d\n",
        ] {
            assert!(parse(text).is_some(), "{text:?}");
            agree(text);
        }
    }

    #[test]
    fn scalars_are_typed_like_the_full_parser() {
        for word in [
            "1",
            "-1",
            "0",
            "007",
            "0x1f",
            "0o17",
            "1.5",
            "-.5",
            ".inf",
            "-.Inf",
            ".nan",
            "1e3",
            "true",
            "True",
            "FALSE",
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "null",
            "Null",
            "~",
            "~x",
            "+1",
            "+x",
            "-x",
            ".x",
            "./x",
            "1.2.3",
            "v1",
            "12:30",
            "2001-12-14",
            "99999999999999999999",
            "1_000",
        ] {
            agree(&format!("k: {word}\n"));
            agree(&format!("k: [{word}]\n"));
            agree(&format!("- {word}\n"));
            agree(&format!("{word}: v\n"));
        }
    }

    const PIECES: &[&str] = &[
        "a",
        "b",
        "key",
        "x y",
        "a.b/c",
        "$text",
        ": ",
        ":",
        "- ",
        "-",
        "  ",
        "    ",
        "\t",
        "|",
        "|-",
        ">",
        ">-",
        "|+",
        "'q'",
        "'it''s'",
        "\"d\\n\"",
        "\"\\u00e9\"",
        "[",
        "]",
        "[a, 1]",
        "[]",
        "{}",
        "{a: 1}",
        "#c",
        " #c",
        "1",
        "1.5",
        "yes",
        "~",
        "null",
        "&a ",
        "*a",
        "!t ",
        "---",
        "...",
        "?",
        ",",
        "\n",
        "\n",
        "\n",
        "\r\n",
        "é",
        "日本",
        "0x1",
        "-1",
        ".5",
        "%",
        "@",
        "`",
        "\"",
        "'",
    ];

    fn soup() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(PIECES), 0..40).prop_map(|v| v.concat())
    }

    fn structured() -> impl Strategy<Value = String> {
        let line = (
            prop::sample::select(&["", "  ", "    ", "- ", "  - ", "    - "][..]),
            prop::sample::select(&["a", "b", "c", "name", "x.y/z", "'k'", "\"k\""][..]),
            prop::sample::select(
                &[
                    ":", ": v", ": 1", ": 1.5", ": true", ": ~", ": [a, b]", ": []", ": {}", ": |",
                    ": >-", ": 'x'", ": \"y\"", ": v # c", "", ": -1", ": ./p",
                ][..],
            ),
        )
            .prop_map(|(i, k, v)| format!("{i}{k}{v}\n"));
        prop::collection::vec(line, 0..14).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn never_disagrees_on_token_soup(text in soup()) {
            agree(&text);
        }

        #[test]
        fn never_disagrees_on_structured_lines(text in structured()) {
            agree(&text);
        }

        #[test]
        fn never_disagrees_on_arbitrary_text(text in "\\PC{0,80}") {
            agree(&text);
        }

        #[test]
        fn reads_what_the_full_parser_writes(value in arb_value()) {
            let text = serde_saphyr::to_string(&value).unwrap();
            agree(&text);
        }
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|i| json!(i)),
            "[a-z0-9 ./:#'\"-]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("[a-z$./-]{1,8}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
