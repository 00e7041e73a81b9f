//! Label and field selectors, as accepted by the `labelSelector` and `fieldSelector`
//! query parameters.
//!
//! Label selectors support equality (`a=b`, `a==b`, `a!=b`) and set-based requirements
//! (`a in (x,y)`, `a notin (x)`, `a`, `!a`), comma-separated (all must hold).

use std::collections::BTreeMap;

use serde_json::Value;

/// One requirement of a label selector.
///
/// ```
/// use idp_testkit::{LabelSelector, Requirement};
/// let sel = LabelSelector::parse("!legacy").unwrap();
/// assert_eq!(sel.requirements, vec![Requirement::DoesNotExist("legacy".into())]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` or `key==value`.
    Equals(String, String),
    /// `key!=value` (also true when the label is absent).
    NotEquals(String, String),
    /// `key in (v1,v2)`.
    In(String, Vec<String>),
    /// `key notin (v1,v2)` (also true when the label is absent).
    NotIn(String, Vec<String>),
    /// `key`: the label is present.
    Exists(String),
    /// `!key`: the label is absent.
    DoesNotExist(String),
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// A parsed label selector: every requirement must match.
///
/// ```
/// use std::collections::BTreeMap;
/// use idp_testkit::LabelSelector;
///
/// let sel = LabelSelector::parse("app=web, tier in (front,back), !legacy").unwrap();
/// let labels: BTreeMap<String, String> =
///     [("app".into(), "web".into()), ("tier".into(), "front".into())].into();
/// assert!(sel.matches(&labels));
/// assert!(LabelSelector::parse("app in (web").is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// The requirements, all of which must hold.
    pub requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the `labelSelector` query syntax. An empty string selects everything.
    ///
    /// ```
    /// assert!(idp_testkit::LabelSelector::parse("").unwrap().requirements.is_empty());
    /// ```
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut p = Parser {
            chars: input.chars().collect(),
            pos: 0,
        };
        let mut requirements = Vec::new();
        p.skip_ws();
        if p.at_end() {
            return Ok(Self { requirements });
        }
        loop {
            requirements.push(p.requirement()?);
            p.skip_ws();
            if p.at_end() {
                break;
            }
            if !p.eat(',') {
                return Err(format!(
                    "unable to parse requirement: expected ',' at position {} in {input:?}",
                    p.pos
                ));
            }
        }
        Ok(Self { requirements })
    }

    /// Whether the labels satisfy every requirement.
    ///
    /// ```
    /// let sel = idp_testkit::LabelSelector::parse("env!=prod").unwrap();
    /// assert!(sel.matches(&Default::default()));
    /// ```
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether an object's `metadata.labels` satisfy the selector.
    pub(crate) fn matches_object(&self, obj: &Value) -> bool {
        if self.requirements.is_empty() {
            return true;
        }
        self.matches(&labels_of(obj))
    }
}

/// The `metadata.labels` of an object as a map (non-string values are skipped).
pub(crate) fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_str(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        if self.chars.len() >= self.pos + n
            && self.chars[self.pos..self.pos + n]
                .iter()
                .copied()
                .eq(s.chars())
        {
            self.pos += n;
            true
        } else {
            false
        }
    }

    /// A label key or value: letters, digits, `-`, `_`, `.`, `/`.
    fn word(&mut self) -> String {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn key(&mut self) -> Result<String, String> {
        self.skip_ws();
        let key = self.word();
        if key.is_empty() {
            return Err(format!(
                "unable to parse requirement: expected a label key at position {}",
                self.pos
            ));
        }
        validate_key(&key)?;
        Ok(key)
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        self.skip_ws();
        if self.eat('!') {
            let key = self.key()?;
            return Ok(Requirement::DoesNotExist(key));
        }
        let key = self.key()?;
        self.skip_ws();
        if self.at_end() || self.peek() == Some(',') {
            return Ok(Requirement::Exists(key));
        }
        if self.eat_str("==") || self.eat('=') {
            return Ok(Requirement::Equals(key, self.value()?));
        }
        if self.eat_str("!=") {
            return Ok(Requirement::NotEquals(key, self.value()?));
        }
        let op = self.word();
        match op.as_str() {
            "in" => Ok(Requirement::In(key, self.set()?)),
            "notin" => Ok(Requirement::NotIn(key, self.set()?)),
            other => Err(format!(
                "unable to parse requirement: unknown operator {other:?} after key {key:?}; use =, ==, !=, in, notin"
            )),
        }
    }

    fn value(&mut self) -> Result<String, String> {
        self.skip_ws();
        let v = self.word();
        validate_value(&v)?;
        Ok(v)
    }

    fn set(&mut self) -> Result<Vec<String>, String> {
        self.skip_ws();
        if !self.eat('(') {
            return Err("unable to parse requirement: expected '(' after in/notin".to_owned());
        }
        let mut values = Vec::new();
        loop {
            values.push(self.value()?);
            self.skip_ws();
            if self.eat(')') {
                break;
            }
            if !self.eat(',') {
                return Err(
                    "unable to parse requirement: expected ',' or ')' in value set".to_owned(),
                );
            }
        }
        Ok(values)
    }
}

fn validate_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && (p.is_empty() || p.len() > 253 || p.contains('/'))
    {
        return Err(format!("invalid label key {key:?}: bad prefix"));
    }
    if name.is_empty() || name.len() > 63 {
        return Err(format!(
            "invalid label key {key:?}: name part must be 1-63 characters"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Err(format!(
            "invalid label key {key:?}: must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

fn validate_value(v: &str) -> Result<(), String> {
    if v.len() > 63 || v.contains('/') {
        return Err(format!(
            "invalid label value {v:?}: at most 63 characters, no '/'"
        ));
    }
    if !v.is_empty()
        && (!v.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !v.ends_with(|c: char| c.is_ascii_alphanumeric()))
    {
        return Err(format!(
            "invalid label value {v:?}: must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

/// A parsed field selector: only `metadata.name` and `metadata.namespace` with `=`, `==`
/// or `!=` (what the real server supports for every resource).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub(crate) fn parse(input: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in input.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (field, negate, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, false, v)
            } else {
                return Err(format!("invalid selector: {part:?}; expected field=value"));
            };
            let field = field.trim();
            if field != "metadata.name" && field != "metadata.namespace" {
                return Err(format!(
                    "field label not supported: {field} (the fake cluster supports metadata.name and metadata.namespace)"
                ));
            }
            terms.push((field.to_owned(), negate, value.trim().to_owned()));
        }
        Ok(Self { terms })
    }

    pub(crate) fn matches_object(&self, obj: &Value) -> bool {
        self.terms.iter().all(|(field, negate, value)| {
            let pointer = if field == "metadata.name" {
                "/metadata/name"
            } else {
                "/metadata/namespace"
            };
            let actual = obj.pointer(pointer).and_then(Value::as_str).unwrap_or("");
            (actual == value) != *negate
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_every_operator() {
        let s = LabelSelector::parse("a=1,b==2,c!=3,d in (x, y),e notin (z),f,!g").unwrap();
        assert_eq!(
            s.requirements,
            vec![
                Requirement::Equals("a".into(), "1".into()),
                Requirement::Equals("b".into(), "2".into()),
                Requirement::NotEquals("c".into(), "3".into()),
                Requirement::In("d".into(), vec!["x".into(), "y".into()]),
                Requirement::NotIn("e".into(), vec!["z".into()]),
                Requirement::Exists("f".into()),
                Requirement::DoesNotExist("g".into()),
            ]
        );
    }

    #[test]
    fn matching_semantics() {
        let l = labels(&[("app", "web"), ("idp.dev/env", "prod")]);
        assert!(LabelSelector::parse("app=web").unwrap().matches(&l));
        assert!(!LabelSelector::parse("app!=web").unwrap().matches(&l));
        assert!(
            LabelSelector::parse("idp.dev/env in (prod,dev)")
                .unwrap()
                .matches(&l)
        );
        assert!(
            !LabelSelector::parse("idp.dev/env notin (prod)")
                .unwrap()
                .matches(&l)
        );
        assert!(
            LabelSelector::parse("missing notin (x)")
                .unwrap()
                .matches(&l)
        );
        assert!(!LabelSelector::parse("missing").unwrap().matches(&l));
        assert!(LabelSelector::parse("!missing").unwrap().matches(&l));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "a in", "a in (", "=x", "a b", "a=b c", "a in (x", "-a=1", "a==/",
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn field_selector() {
        let obj = serde_json::json!({"metadata": {"name": "a", "namespace": "ns"}});
        assert!(
            FieldSelector::parse("metadata.name=a")
                .unwrap()
                .matches_object(&obj)
        );
        assert!(
            !FieldSelector::parse("metadata.name!=a")
                .unwrap()
                .matches_object(&obj)
        );
        assert!(
            FieldSelector::parse("metadata.namespace==ns,metadata.name=a")
                .unwrap()
                .matches_object(&obj)
        );
        assert!(FieldSelector::parse("spec.x=1").is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(input in ".{0,64}") {
            let _ = LabelSelector::parse(&input);
        }

        #[test]
        fn parser_never_panics_on_selector_like_input(input in "[a-z!=,() ]{0,40}|[a-z]{1,5} (in|notin) \\([a-z, ]{0,10}\\)?") {
            let _ = LabelSelector::parse(&input);
        }

        #[test]
        fn equality_round_trips(k in "[a-z][a-z0-9]{0,10}", v in "[a-z0-9]{0,10}") {
            let sel = LabelSelector::parse(&format!("{k}={v}")).unwrap();
            prop_assert_eq!(sel.requirements, vec![Requirement::Equals(k, v)]);
        }
    }
}
