//! Kyverno conditions — a rule's `preconditions` and a `validate.deny` — and the
//! `{{ }}` variables in them, evaluated with JMESPath.
//!
//! A condition is `key`, `operator`, `value` (and an optional `message`). Key and
//! value may hold variables: a string that is exactly one `{{ expression }}` takes the
//! expression's value with its type (a list, a number…); a string with variables among
//! other text has each replaced by its text. The expressions see `request` (`object`,
//! `oldObject` (`null`), `operation`, `namespace`, `name`, `kind`, `userInfo`, `dryRun`),
//! `images` (see [`images`]), `serviceAccountName` and `serviceAccountNamespace`
//! (empty). Besides the standard
//! functions, the commonly used Kyverno ones are there (see `functions`); an
//! expression that calls another (the `time_*` family, arithmetic on quantities…) fails
//! when it runs, and the failure is reported.
//!
//! Conditions are `any` (at least one holds; none given: true) and `all` (every one
//! holds), or a plain list (all).

use idp_core::{Error, Result};
use jmespath::{Expression, Rcvar, ToJmespath};
use serde_json::{Value, json};

use super::pattern::{self, Op};

/// Deeper nesting of brackets and parentheses than this in an expression is refused
/// (the JMESPath parser recurses on them).
const MAX_NESTING: usize = 64;

/// A `key` or `value`: a literal, or text with variables.
#[derive(Clone)]
enum Template {
    Literal(Value),
    /// Exactly one `{{ }}`: its value, with its type.
    Whole(Box<Expression<'static>>),
    /// Text and variables, joined as text.
    Text(Vec<Piece>),
    /// A list whose items may hold variables.
    List(Vec<Template>),
    /// Text with variables inside variables (`{{ images.containers."{{element.name}}".tag }}`),
    /// filled in innermost first when evaluated.
    Nested(String),
}

#[derive(Clone)]
enum Piece {
    Text(String),
    Var(Box<Expression<'static>>),
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Literal(v) => write!(f, "{v}"),
            Self::Whole(e) => write!(f, "{{{{{}}}}}", e.as_str()),
            Self::Text(_) => f.write_str("<text with variables>"),
            Self::List(items) => f.debug_list().entries(items).finish(),
            Self::Nested(text) => write!(f, "{text}"),
        }
    }
}

fn compile(expr: &str, field: &str) -> std::result::Result<Expression<'static>, String> {
    let mut depth = 0usize;
    for c in expr.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "{field}: the expression nests brackets deeper than {MAX_NESTING} levels"
                    ));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    super::functions::compile(expr)
        .map_err(|e| format!("{field}: {expr:?} is not valid JMESPath: {e}"))
}

impl Template {
    fn parse(value: &Value, field: &str) -> std::result::Result<Self, String> {
        match value {
            Value::String(s) => Self::parse_text(s, field),
            Value::Array(items) => Ok(Self::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Self::parse(v, &format!("{field}[{i}]")))
                    .collect::<std::result::Result<_, _>>()?,
            )),
            other => Ok(Self::Literal(other.clone())),
        }
    }

    fn parse_text(text: &str, field: &str) -> std::result::Result<Self, String> {
        if !text.contains("{{") {
            return Ok(Self::Literal(Value::String(text.to_owned())));
        }
        // A `{{` opening before the first one closes: nested variables.
        if let Some(first) = text.find("{{")
            && let Some(close) = text[first..].find("}}")
            && text[first + 2..first + close].contains("{{")
        {
            return Ok(Self::Nested(text.to_owned()));
        }
        let trimmed = text.trim();
        if let Some(inner) = trimmed
            .strip_prefix("{{")
            .and_then(|t| t.strip_suffix("}}"))
            .filter(|inner| !inner.contains("{{") && !inner.contains("}}"))
        {
            return Ok(Self::Whole(Box::new(compile(inner.trim(), field)?)));
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("{field}: `{{{{` without its `}}}}` in {text:?}"))?;
            pieces.push(Piece::Var(Box::new(compile(after[..end].trim(), field)?)));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Self::Text(pieces))
    }

    fn resolve(&self, data: &Rcvar) -> std::result::Result<Value, String> {
        match self {
            Self::Literal(v) => Ok(v.clone()),
            Self::Whole(e) => run(e, data),
            Self::Text(pieces) => {
                let mut out = String::new();
                for p in pieces {
                    match p {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Var(e) => match run(e, data)? {
                            Value::String(s) => out.push_str(&s),
                            Value::Null => {}
                            other => out.push_str(&other.to_string()),
                        },
                    }
                }
                Ok(Value::String(out))
            }
            Self::List(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|t| t.resolve(data))
                    .collect::<std::result::Result<_, _>>()?,
            )),
            Self::Nested(text) => super::mutate::fill_lenient(text, data),
        }
    }
}

fn run(expr: &Expression<'static>, data: &Rcvar) -> std::result::Result<Value, String> {
    let found = expr
        .search(data.clone())
        .map_err(|e| format!("{{{{{}}}}} failed: {e}", expr.as_str()))?;
    serde_json::to_value(&*found).map_err(|e| format!("{{{{{}}}}}: {e}", expr.as_str()))
}

/// The operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Equals,
    NotEquals,
    AnyIn,
    AllIn,
    AnyNotIn,
    AllNotIn,
    Greater,
    GreaterOrEquals,
    Less,
    LessOrEquals,
    DurationGreater,
    DurationGreaterOrEquals,
    DurationLess,
    DurationLessOrEquals,
}

impl Operator {
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "Equals" | "Equal" => Self::Equals,
            "NotEquals" | "NotEqual" => Self::NotEquals,
            "AnyIn" => Self::AnyIn,
            // The deprecated In/NotIn, as Kyverno reads them.
            "AllIn" | "In" => Self::AllIn,
            "AnyNotIn" | "NotIn" => Self::AnyNotIn,
            "AllNotIn" => Self::AllNotIn,
            "GreaterThan" => Self::Greater,
            "GreaterThanOrEquals" => Self::GreaterOrEquals,
            "LessThan" => Self::Less,
            "LessThanOrEquals" => Self::LessOrEquals,
            "DurationGreaterThan" => Self::DurationGreater,
            "DurationGreaterThanOrEquals" => Self::DurationGreaterOrEquals,
            "DurationLessThan" => Self::DurationLess,
            "DurationLessThanOrEquals" => Self::DurationLessOrEquals,
            _ => return None,
        })
    }
}

/// One condition.
#[derive(Debug, Clone)]
pub(super) struct Condition {
    key: Template,
    operator: Operator,
    value: Template,
    /// `message`, shown when a deny condition holds (variables filled in).
    message: Option<Template>,
}

/// The text a scalar compares by.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// `key` equals `value`: a string value may hold wildcards; numbers, quantities and
/// durations compare by amount; lists and maps compare whole.
fn equals(key: &Value, value: &Value) -> bool {
    match (key, value) {
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            key == value
        }
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (_, Value::Null) => matches!(key, Value::Null) || key.as_str() == Some(""),
        (_, _) => match text(value) {
            Some(v) => pattern::compare(key, Op::Eq, &v) || text(key).is_some_and(|k| k == v),
            None => false,
        },
    }
}

fn as_list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

fn order(key: &Value, value: &Value, op: Op) -> bool {
    text(value).is_some_and(|v| pattern::compare(key, op, &v))
}

/// Seconds for a number, else a Go duration.
fn duration(value: &Value) -> Option<i128> {
    match value {
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.is_finite() && f.abs() < 1e12)
            .map(|s| (s * 1e9) as i128),
        Value::String(s) => pattern::parse_duration(s),
        _ => None,
    }
}

impl Condition {
    fn parse(value: &Value, field: &str) -> std::result::Result<Self, String> {
        let word = value
            .get("operator")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{field}.operator is required"))?;
        let operator = Operator::parse(word).ok_or_else(|| {
            format!(
                "{field}.operator {word:?} is not one of Equals, NotEquals, AnyIn, AllIn, AnyNotIn, AllNotIn, GreaterThan, GreaterThanOrEquals, LessThan, LessThanOrEquals, DurationGreaterThan, DurationGreaterThanOrEquals, DurationLessThan, DurationLessThanOrEquals"
            )
        })?;
        Ok(Self {
            key: Template::parse(
                value.get("key").unwrap_or(&Value::Null),
                &format!("{field}.key"),
            )?,
            operator,
            value: Template::parse(
                value.get("value").unwrap_or(&Value::Null),
                &format!("{field}.value"),
            )?,
            message: value
                .get("message")
                .and_then(Value::as_str)
                .map(|m| Template::parse_text(m, &format!("{field}.message")))
                .transpose()?,
        })
    }

    fn holds(&self, data: &Rcvar) -> std::result::Result<bool, String> {
        let key = self.key.resolve(data)?;
        let value = self.value.resolve(data)?;
        let member = |k: &Value| as_list(&value).iter().any(|v| equals(k, v));
        Ok(match self.operator {
            Operator::Equals => equals(&key, &value),
            Operator::NotEquals => !equals(&key, &value),
            Operator::AnyIn => as_list(&key).iter().any(member),
            Operator::AllIn => as_list(&key).iter().all(member),
            Operator::AnyNotIn => as_list(&key).iter().any(|k| !member(k)),
            Operator::AllNotIn => as_list(&key).iter().all(|k| !member(k)),
            Operator::Greater => order(&key, &value, Op::Gt),
            Operator::GreaterOrEquals => order(&key, &value, Op::Ge),
            Operator::Less => order(&key, &value, Op::Lt),
            Operator::LessOrEquals => order(&key, &value, Op::Le),
            Operator::DurationGreater
            | Operator::DurationGreaterOrEquals
            | Operator::DurationLess
            | Operator::DurationLessOrEquals => {
                let (Some(k), Some(v)) = (duration(&key), duration(&value)) else {
                    return Err(format!(
                        "{:?} needs durations (seconds or Go durations such as 1h), got {key} and {value}",
                        self.operator
                    ));
                };
                match self.operator {
                    Operator::DurationGreater => k > v,
                    Operator::DurationGreaterOrEquals => k >= v,
                    Operator::DurationLess => k < v,
                    _ => k <= v,
                }
            }
        })
    }
}

/// `any` and `all` conditions.
#[derive(Debug, Clone, Default)]
pub(super) struct Conditions {
    any: Vec<Condition>,
    all: Vec<Condition>,
}

/// What evaluating conditions found.
pub(super) struct Verdict {
    /// Whether they hold.
    pub(super) holds: bool,
    /// The messages of the conditions that held, variables filled in (for a deny).
    pub(super) messages: Vec<String>,
}

impl Conditions {
    /// Read `{any: [...], all: [...]}` or a plain list (all), naming `field` in errors.
    pub(super) fn parse(value: &Value, field: &str, here: &str) -> Result<Self> {
        let list = |v: Option<&Value>, f: &str| -> Result<Vec<Condition>> {
            match v {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        Condition::parse(c, &format!("{f}[{i}]"))
                            .map_err(|e| Error::invalid_input(format!("{here}{e}")))
                    })
                    .collect(),
                Some(other) => Err(Error::invalid_input(format!(
                    "{here}{f} must be a list of conditions, not {other}"
                ))),
            }
        };
        match value {
            Value::Array(_) => Ok(Self {
                any: Vec::new(),
                all: list(Some(value), field)?,
            }),
            Value::Object(_) => Ok(Self {
                any: list(value.get("any"), &format!("{field}.any"))?,
                all: list(value.get("all"), &format!("{field}.all"))?,
            }),
            other => Err(Error::invalid_input(format!(
                "{here}{field} must be any/all lists of conditions, not {other}"
            ))),
        }
    }

    /// Evaluate over `data` (see [`data`]); an expression that fails is an error.
    pub(super) fn evaluate(&self, data: &Rcvar) -> std::result::Result<Verdict, String> {
        let mut held: Vec<&Condition> = Vec::new();
        let mut any_holds = self.any.is_empty();
        for c in &self.any {
            if c.holds(data)? {
                any_holds = true;
                held.push(c);
            }
        }
        let mut all_hold = true;
        for c in &self.all {
            if c.holds(data)? {
                held.push(c);
            } else {
                all_hold = false;
                break;
            }
        }
        let holds = any_holds && all_hold;
        let mut messages = Vec::new();
        if holds {
            for m in held.iter().filter_map(|c| c.message.as_ref()) {
                match m.resolve(data)? {
                    Value::String(s) => messages.push(s),
                    other => messages.push(other.to_string()),
                }
            }
        }
        Ok(Verdict { holds, messages })
    }
}

/// The request facts the data holds beside the object.
pub(super) struct RequestInfo<'a> {
    pub(super) api_version: &'a str,
    pub(super) kind: &'a str,
    pub(super) name: &'a str,
    pub(super) namespace: Option<&'a str>,
    pub(super) operation: &'a str,
    pub(super) user: Option<&'a str>,
    pub(super) dry_run: bool,
}

/// Kyverno's `images` variable: for each of `containers`, `initContainers` and
/// `ephemeralContainers` of the (Pod) object's `spec`, the image of each container by
/// its name, split into `registry` (`docker.io` when none is named), `path` (as
/// written: `nginx` stays `nginx`), `name` (the last path
/// component), `tag` (`latest` when neither a tag nor a digest is given) or `digest`,
/// `reference` (with the digest, else the tag) and `referenceWithTag`.
pub(super) fn images(object: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        let Some(containers) = object
            .pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        let mut by_name = serde_json::Map::new();
        for c in containers {
            let (Some(name), Some(image)) = (
                c.get("name").and_then(Value::as_str),
                c.get("image").and_then(Value::as_str),
            ) else {
                continue;
            };
            let mut r = crate::guardrails::ImageRef::parse(image);
            // The path as written: Kyverno does not add Docker Hub's `library/`.
            let written = image.split(['@']).next().unwrap_or_default();
            if r.registry == "docker.io"
                && !written.starts_with("docker.io/")
                && let Some(short) = r.repository.strip_prefix("library/")
                && !written.contains("library/")
            {
                r.repository = short.to_owned();
            }
            let tag = match (&r.tag, &r.digest) {
                (Some(t), _) => Some(t.clone()),
                (None, None) => Some("latest".to_owned()),
                (None, Some(_)) => None,
            };
            let base = format!("{}/{}", r.registry, r.repository);
            let mut info = json!({
                "registry": r.registry,
                "path": r.repository,
                "name": r.repository.rsplit('/').next().unwrap_or_default(),
                "referenceWithTag": format!("{base}:{}", tag.as_deref().unwrap_or_default()),
                "reference": match (&r.digest, &tag) {
                    (Some(d), _) => format!("{base}@{d}"),
                    (None, t) => format!("{base}:{}", t.as_deref().unwrap_or_default()),
                },
            });
            if let Some(t) = tag {
                info["tag"] = Value::String(t);
            }
            if let Some(d) = r.digest {
                info["digest"] = Value::String(d);
            }
            by_name.insert(name.to_owned(), info);
        }
        out.insert(list.to_owned(), Value::Object(by_name));
    }
    Value::Object(out)
}

/// The data variables are looked up in.
pub(super) fn data(object: &Value, r: &RequestInfo<'_>) -> std::result::Result<Rcvar, String> {
    let (group, version) = crate::names::split_api_version(r.api_version);
    let data = json!({
        "images": images(object),
        "request": {
            "object": object,
            "oldObject": null,
            "operation": r.operation,
            "namespace": r.namespace.unwrap_or_default(),
            "name": r.name,
            "kind": {"group": group, "version": version, "kind": r.kind},
            "userInfo": {"username": r.user.unwrap_or_default()},
            "dryRun": r.dry_run,
        },
        "serviceAccountName": "",
        "serviceAccountNamespace": "",
    });
    data.to_jmespath()
        .map_err(|e| format!("cannot give the object to JMESPath: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any key, value and operator text: parsing and evaluating never panic.
        #[test]
        fn conditions_never_panic(
            key in "[{}a-z.\\[\\]|'`*() 0-9]{0,24}",
            value in "[{}a-z.\\[\\]|'`*() 0-9]{0,24}",
            op in prop::sample::select(vec!["Equals", "NotEquals", "AnyIn", "AllIn", "AnyNotIn",
                "AllNotIn", "GreaterThan", "LessThanOrEquals", "DurationGreaterThan", "Bogus"]),
        ) {
            let c = json!({"any": [{"key": key, "operator": op, "value": value, "message": key}]});
            if let Ok(c) = Conditions::parse(&c, "c", "") {
                let _ = c.evaluate(&pod());
            }
        }
    }

    #[test]
    fn images_split_each_container_image() {
        let v = images(&json!({"spec": {
            "containers": [{"name": "web", "image": "nginx"}, {"name": "app", "image": "ghcr.io/acme/app:1.2"}],
            "initContainers": [{"name": "init", "image": "reg.example:5000/tools/init@sha256:abc"}]}}));
        assert_eq!(
            v["containers"]["web"],
            json!({"registry": "docker.io", "path": "nginx", "name": "nginx", "tag": "latest",
                "reference": "docker.io/nginx:latest", "referenceWithTag": "docker.io/nginx:latest"})
        );
        assert_eq!(v["containers"]["app"]["path"], "acme/app");
        assert_eq!(v["containers"]["app"]["tag"], "1.2");
        let init = &v["initContainers"]["init"];
        assert_eq!(init["registry"], "reg.example:5000");
        assert_eq!(init["digest"], "sha256:abc");
        assert!(init.get("tag").is_none());
        assert_eq!(init["reference"], "reg.example:5000/tools/init@sha256:abc");
        assert_eq!(init["referenceWithTag"], "reg.example:5000/tools/init:");
        assert_eq!(v.get("ephemeralContainers"), None);
    }

    fn pod() -> Rcvar {
        data(
            &json!({"metadata": {"name": "web", "labels": {"app": "cart"}},
                "spec": {"type": "NodePort", "replicas": 3, "containers": [
                    {"name": "a", "image": "nginx:latest", "resources": {"requests": {"memory": "512Mi"}}},
                    {"name": "b", "image": "ghcr.io/acme/b:1.0"}]}}),
            &RequestInfo {
                api_version: "v1",
                kind: "Pod",
                name: "web",
                namespace: Some("shop"),
                operation: "CREATE",
                user: None,
                dry_run: false,
            },
        )
        .unwrap()
    }

    fn holds(yaml: &Value) -> bool {
        Conditions::parse(yaml, "c", "")
            .unwrap()
            .evaluate(&pod())
            .unwrap()
            .holds
    }

    #[test]
    fn operators() {
        let c = |key: &str, op: &str, value: Value| json!({"all": [{"key": key, "operator": op, "value": value}]});
        assert!(holds(&c(
            "{{ request.object.spec.type }}",
            "Equals",
            json!("NodePort")
        )));
        assert!(holds(&c(
            "{{ request.object.spec.type }}",
            "Equals",
            json!("Node*")
        )));
        assert!(holds(&c(
            "{{ request.object.spec.type }}",
            "NotEquals",
            json!("ClusterIP")
        )));
        assert!(holds(&c(
            "{{ request.object.metadata.labels.team || '' }}",
            "Equals",
            json!("")
        )));
        assert!(holds(&c(
            "{{ request.object.spec.replicas }}",
            "GreaterThan",
            json!(2)
        )));
        assert!(!holds(&c(
            "{{ request.object.spec.replicas }}",
            "GreaterThan",
            json!("3")
        )));
        assert!(holds(&c(
            "{{ request.object.spec.containers[0].resources.requests.memory }}",
            "LessThan",
            json!("1Gi")
        )));
        assert!(holds(&c(
            "{{ request.object.spec.containers[].image }}",
            "AnyIn",
            json!(["*:latest"])
        )));
        assert!(!holds(&c(
            "{{ request.object.spec.containers[].image }}",
            "AllIn",
            json!(["*:latest"])
        )));
        assert!(holds(&c(
            "{{ request.object.spec.containers[].image }}",
            "AnyNotIn",
            json!(["ghcr.io/acme/*"])
        )));
        assert!(!holds(&c(
            "{{ request.object.spec.containers[].image }}",
            "AllNotIn",
            json!(["ghcr.io/acme/*"])
        )));
        assert!(holds(&c(
            "{{ request.operation }}",
            "AnyIn",
            json!(["CREATE", "UPDATE"])
        )));
        assert!(holds(&c(
            "{{ request.namespace }}-{{ request.object.metadata.name }}",
            "Equals",
            json!("shop-web")
        )));
        assert!(holds(&c(
            "{{ length(request.object.spec.containers) }}",
            "Equals",
            json!(2)
        )));
        assert!(holds(&c("90m", "DurationGreaterThan", json!("1h"))));
        assert!(holds(&c("{{ serviceAccountName }}", "Equals", json!(""))));
    }

    #[test]
    fn any_and_all() {
        let t = json!({"key": "a", "operator": "Equals", "value": "a"});
        let f = json!({"key": "a", "operator": "Equals", "value": "b"});
        assert!(holds(&json!({"any": [f.clone(), t.clone()]})));
        assert!(!holds(&json!({"any": [f.clone()], "all": [t.clone()]})));
        assert!(!holds(&json!({"all": [t.clone(), f.clone()]})));
        assert!(holds(&json!([t.clone(), t])));
        assert!(holds(&json!({})));
    }

    #[test]
    fn errors_name_the_field() {
        let err = Conditions::parse(
            &json!({"all": [{"key": "{{ a.[ }}", "operator": "Equals"}]}),
            "deny.conditions",
            "f.yaml: ",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("f.yaml: deny.conditions.all[0].key")
                && err.contains("not valid JMESPath"),
            "{err}"
        );
        let err = Conditions::parse(&json!({"any": [{"key": "a", "operator": "Like"}]}), "c", "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.any[0].operator \"Like\""), "{err}");
        let deep = format!("{{{{ {}a{} }}}}", "(".repeat(100), ")".repeat(100));
        let err = Conditions::parse(&json!([{"key": deep, "operator": "Equals"}]), "c", "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("deeper than 64"), "{err}");
        // An unknown function fails when it runs, as an error.
        let c = Conditions::parse(
            &json!([{"key": "{{ time_now_utc() }}", "operator": "Equals", "value": "WEB"}]),
            "c",
            "",
        )
        .unwrap();
        assert!(c.evaluate(&pod()).is_err());
    }
}
