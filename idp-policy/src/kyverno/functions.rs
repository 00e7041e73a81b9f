//! Kyverno's own JMESPath functions, beside the standard ones: the string, matching,
//! encoding and parsing functions Kyverno policies use most.
//!
//! | function | gives |
//! |---|---|
//! | `to_upper(s)`, `to_lower(s)` | `s` in upper or lower case |
//! | `trim(s, cutset)`, `trim_prefix(s, prefix)`, `truncate(s, n)` | `s` trimmed or cut to `n` characters |
//! | `split(s, sep)` | the parts of `s` |
//! | `replace(s, old, new, n)`, `replace_all(s, old, new)` | `s` with `n` (`-1`: every) or every `old` replaced |
//! | `equal_fold(a, b)` | whether `a` and `b` are equal ignoring case |
//! | `pattern_match(pattern, s)` | whether `s` matches the `*`/`?` wildcard pattern |
//! | `regex_match(regex, s)` | whether `regex` matches somewhere in `s` |
//! | `regex_replace_all(regex, s, replacement)` | `s` with every match replaced (`$1` for groups) |
//! | `label_match(selector, labels)` | whether every `selector` key has its value in `labels` |
//! | `base64_decode(s)`, `base64_encode(s)` | standard base64 |
//! | `parse_json(s)`, `parse_yaml(s)` | the value `s` holds |
//!
//! Numbers given where text is wanted are taken as their decimal text, as Kyverno does.
//! Regular expressions are compiled with a size limit; one over it is an error.

use std::sync::LazyLock;

use base64::Engine as _;
use jmespath::functions::{ArgumentType, CustomFunction, Signature};
use jmespath::{
    Context, ErrorReason, Expression, JmespathError, Rcvar, Runtime, ToJmespath, Variable,
};

/// The runtime with the standard and Kyverno functions: built once, never changed.
static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    let mut runtime = Runtime::new();
    runtime.register_builtin_functions();
    register(&mut runtime);
    runtime
});

/// Compile `expr` with Kyverno's functions available.
pub(super) fn compile(expr: &str) -> Result<Expression<'static>, JmespathError> {
    RUNTIME.compile(expr)
}

/// A regular expression bigger than this once compiled is refused.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

fn fail(ctx: &Context<'_>, position: usize, expected: &str, actual: String) -> JmespathError {
    JmespathError::from_ctx(
        ctx,
        ErrorReason::Runtime(jmespath::RuntimeError::InvalidType {
            expected: expected.to_owned(),
            actual,
            position,
        }),
    )
}

/// Argument `i` as text: a string, or a number's decimal text.
fn text(args: &[Rcvar], i: usize, ctx: &Context<'_>) -> Result<String, JmespathError> {
    match args.get(i).map(|a| &**a) {
        Some(Variable::String(s)) => Ok(s.clone()),
        Some(Variable::Number(n)) => Ok(n.to_string()),
        other => Err(fail(
            ctx,
            i,
            "string",
            other.map_or_else(|| "nothing".to_owned(), |v| v.get_type().to_string()),
        )),
    }
}

fn out<T: ToJmespath>(value: T) -> Result<Rcvar, JmespathError> {
    value.to_jmespath()
}

fn regex(pattern: &str, ctx: &Context<'_>) -> Result<regex::Regex, JmespathError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| fail(ctx, 0, "a regular expression", e.to_string()))
}

type Body = dyn Fn(&[Rcvar], &mut Context<'_>) -> Result<Rcvar, JmespathError> + Send + Sync;

fn add(runtime: &mut Runtime, name: &str, inputs: Vec<ArgumentType>, body: Box<Body>) {
    runtime.register_function(
        name,
        Box::new(CustomFunction::new(Signature::new(inputs, None), body)),
    );
}

#[allow(clippy::too_many_lines)]
fn register(runtime: &mut Runtime) {
    use ArgumentType::{Number, Object, String as Str};
    let text_or_number = || ArgumentType::Union(vec![Str, Number]);

    add(
        runtime,
        "to_upper",
        vec![Str],
        Box::new(|a, c| out(text(a, 0, c)?.to_uppercase())),
    );
    add(
        runtime,
        "to_lower",
        vec![Str],
        Box::new(|a, c| out(text(a, 0, c)?.to_lowercase())),
    );
    add(
        runtime,
        "trim",
        vec![Str, Str],
        Box::new(|a, c| {
            let cut = text(a, 1, c)?;
            out(text(a, 0, c)?
                .trim_matches(|ch| cut.contains(ch))
                .to_owned())
        }),
    );
    add(
        runtime,
        "trim_prefix",
        vec![Str, Str],
        Box::new(|a, c| {
            let s = text(a, 0, c)?;
            let prefix = text(a, 1, c)?;
            out(s.strip_prefix(prefix.as_str()).unwrap_or(&s).to_owned())
        }),
    );
    add(
        runtime,
        "truncate",
        vec![Str, Number],
        Box::new(|a, c| {
            let n = a.get(1).and_then(|v| v.as_number()).unwrap_or(0.0);
            if !(n >= 0.0 && n.is_finite()) {
                return Err(fail(c, 1, "a length of 0 or more", n.to_string()));
            }
            // `n` is finite and not negative: the cast only saturates.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = n as usize;
            out(text(a, 0, c)?.chars().take(n).collect::<String>())
        }),
    );
    add(
        runtime,
        "split",
        vec![Str, Str],
        Box::new(|a, c| {
            let s = text(a, 0, c)?;
            let sep = text(a, 1, c)?;
            let parts: Vec<String> = if sep.is_empty() {
                s.chars().map(String::from).collect()
            } else {
                s.split(sep.as_str()).map(str::to_owned).collect()
            };
            out(parts)
        }),
    );
    add(
        runtime,
        "replace",
        vec![Str, Str, Str, Number],
        Box::new(|a, c| {
            let (s, old, new) = (text(a, 0, c)?, text(a, 1, c)?, text(a, 2, c)?);
            let n = a.get(3).and_then(|v| v.as_number()).unwrap_or(-1.0);
            if n < 0.0 {
                return out(s.replace(old.as_str(), &new));
            }
            // `n` is not negative: the cast only saturates.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = n as usize;
            out(s.replacen(old.as_str(), &new, n))
        }),
    );
    add(
        runtime,
        "replace_all",
        vec![Str, Str, Str],
        Box::new(|a, c| {
            let (s, old, new) = (text(a, 0, c)?, text(a, 1, c)?, text(a, 2, c)?);
            out(s.replace(old.as_str(), &new))
        }),
    );
    add(
        runtime,
        "equal_fold",
        vec![Str, Str],
        Box::new(|a, c| {
            let (x, y) = (text(a, 0, c)?, text(a, 1, c)?);
            out(x.to_lowercase() == y.to_lowercase())
        }),
    );
    add(
        runtime,
        "pattern_match",
        vec![Str, text_or_number()],
        Box::new(|a, c| out(super::pattern::wildcard(&text(a, 0, c)?, &text(a, 1, c)?))),
    );
    add(
        runtime,
        "regex_match",
        vec![Str, text_or_number()],
        Box::new(|a, c| out(regex(&text(a, 0, c)?, c)?.is_match(&text(a, 1, c)?))),
    );
    add(
        runtime,
        "regex_replace_all",
        vec![Str, text_or_number(), text_or_number()],
        Box::new(|a, c| {
            let re = regex(&text(a, 0, c)?, c)?;
            out(re
                .replace_all(&text(a, 1, c)?, text(a, 2, c)?.as_str())
                .into_owned())
        }),
    );
    add(
        runtime,
        "label_match",
        vec![Object, Object],
        Box::new(|a, _| {
            let selector = a
                .first()
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default();
            let labels = a
                .get(1)
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default();
            out(selector
                .iter()
                .all(|(k, v)| labels.get(k).is_some_and(|l| l == v)))
        }),
    );
    add(
        runtime,
        "base64_decode",
        vec![Str],
        Box::new(|a, c| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text(a, 0, c)?.trim())
                .map_err(|e| fail(c, 0, "base64 text", e.to_string()))?;
            out(String::from_utf8_lossy(&bytes).into_owned())
        }),
    );
    add(
        runtime,
        "base64_encode",
        vec![Str],
        Box::new(|a, c| out(base64::engine::general_purpose::STANDARD.encode(text(a, 0, c)?))),
    );
    add(
        runtime,
        "parse_json",
        vec![Str],
        Box::new(|a, c| {
            let value: serde_json::Value = serde_json::from_str(&text(a, 0, c)?)
                .map_err(|e| fail(c, 0, "JSON text", e.to_string()))?;
            out(value)
        }),
    );
    add(
        runtime,
        "parse_yaml",
        vec![Str],
        Box::new(|a, c| {
            let value: serde_json::Value = serde_saphyr::from_str(&text(a, 0, c)?)
                .map_err(|e| fail(c, 0, "YAML text", e.to_string()))?;
            out(value)
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn eval(expr: &str, data: &Value) -> Result<Value, String> {
        let e = compile(expr).map_err(|e| e.to_string())?;
        let found = e.search(data).map_err(|e| e.to_string())?;
        serde_json::to_value(&*found).map_err(|e| e.to_string())
    }

    #[test]
    fn functions() {
        let d = json!({"name": "Web-App", "image": "ghcr.io/acme/app:1.2", "n": 42,
            "labels": {"app": "web", "tier": "front"}, "b64": "aGVsbG8=", "doc": "a: [1, 2]"});
        let ok = |expr: &str| eval(expr, &d).unwrap();
        assert_eq!(ok("to_upper(name)"), json!("WEB-APP"));
        assert_eq!(ok("to_lower(name)"), json!("web-app"));
        assert_eq!(ok("trim('--x--', '-')"), json!("x"));
        assert_eq!(ok("trim_prefix(image, 'ghcr.io/')"), json!("acme/app:1.2"));
        assert_eq!(ok("truncate(name, `3`)"), json!("Web"));
        assert_eq!(ok("split(image, ':')"), json!(["ghcr.io/acme/app", "1.2"]));
        assert_eq!(ok("replace('aaa', 'a', 'b', `2`)"), json!("bba"));
        assert_eq!(ok("replace_all('aaa', 'a', 'b')"), json!("bbb"));
        assert_eq!(ok("equal_fold(name, 'web-app')"), json!(true));
        assert_eq!(ok("pattern_match('ghcr.io/*', image)"), json!(true));
        assert_eq!(ok("regex_match('^ghcr\\.io/', image)"), json!(true));
        assert_eq!(ok("regex_match('^4[0-9]$', n)"), json!(true));
        assert_eq!(
            ok("regex_replace_all(':(.*)$', image, ':v$1')"),
            json!("ghcr.io/acme/app:v1.2")
        );
        assert_eq!(ok("label_match(`{\"app\": \"web\"}`, labels)"), json!(true));
        assert_eq!(
            ok("label_match(`{\"app\": \"api\"}`, labels)"),
            json!(false)
        );
        assert_eq!(ok("base64_decode(b64)"), json!("hello"));
        assert_eq!(ok("base64_encode('hello')"), json!("aGVsbG8="));
        assert_eq!(ok("parse_json('{\"a\": [1]}').a[0]"), json!(1));
        assert_eq!(ok("parse_yaml(doc).a[1]"), json!(2));
        // Standard functions are still there.
        assert_eq!(ok("length(labels)"), json!(2));
    }

    #[test]
    fn bad_arguments_are_errors() {
        let d = json!({});
        assert!(
            eval("regex_match('(', 'x')", &d)
                .unwrap_err()
                .contains("regular expression")
        );
        assert!(eval("base64_decode('***')", &d).is_err());
        assert!(eval("parse_json('{')", &d).is_err());
        assert!(eval("to_upper(`1`)", &d).is_err());
        assert!(eval("truncate('abc', `-1`)", &d).is_err());
        assert!(eval("no_such_function('x')", &d).is_err());
    }
}
