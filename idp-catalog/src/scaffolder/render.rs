//! Expressions and rendering with minijinja, configured like Backstage's Nunjucks.
//!
//! - `${{ … }}` prints an expression; `{% … %}` blocks and `{# … #}` comments are Jinja's.
//!   Plain `{{ … }}` is left alone (so GitHub Actions files and Helm charts pass through),
//!   except in `cookiecutterCompat` mode where it is the variable syntax.
//! - No auto-escaping; trailing newlines are kept; Nunjucks-style dict literals with bare
//!   keys (`{ defaultKind: "group" }`) are accepted.
//! - Undefined values are errors when printed, iterated or passed on, and false in
//!   conditions (minijinja's *semi-strict* mode): a typo names the expression and step.
//! - Every render has a fuel budget, so a hostile template cannot spin forever.
//! - A string that is exactly one `${{ expr }}` renders to the expression's native value
//!   (a number, a list, an object), as Backstage does.
//! - Filters: `parseRepoUrl`, `parseEntityRef`, `pick`, `projectSlug`, plus `dump`
//!   (JSON, as in Nunjucks) and minijinja's built-ins.

use std::borrow::Cow;

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::{Map, Value};

use idp_core::{Error, Result};

/// The default fuel per render (minijinja instructions): far more than any real
/// template needs, small enough to stop an endless loop in well under a second.
pub const DEFAULT_FUEL: u64 = 2_000_000;

/// Renders template strings and values against a context.
///
/// ```
/// use idp_catalog::scaffolder::Renderer;
/// let r = Renderer::new(100_000).unwrap();
/// let ctx = serde_json::json!({"parameters": {"name": "cart", "replicas": 3}});
/// assert_eq!(r.render_str("svc-${{ parameters.name }}", &ctx, "example").unwrap(), "svc-cart");
/// // One whole expression keeps its type.
/// assert_eq!(r.render_value(&serde_json::json!("${{ parameters.replicas }}"), &ctx, "example").unwrap(), 3);
/// ```
#[derive(Debug)]
pub struct Renderer {
    backstage: Environment<'static>,
    cookiecutter: Environment<'static>,
    fuel: u64,
}

fn build_env(variable: (&'static str, &'static str), fuel: u64) -> Result<Environment<'static>> {
    let mut env = Environment::new();
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .block_delimiters("{%", "%}")
        .variable_delimiters(variable.0, variable.1)
        .comment_delimiters("{#", "#}")
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| Error::internal(format!("template syntax: {e}")))?;
    env.set_syntax(syntax);
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_fuel(Some(fuel));
    env.set_recursion_limit(64);
    env.add_filter("parseRepoUrl", parse_repo_url_filter);
    env.add_filter("parseEntityRef", parse_entity_ref_filter);
    env.add_filter("pick", pick_filter);
    env.add_filter("projectSlug", project_slug_filter);
    env.add_filter("dump", dump_filter);
    env.add_filter("jsonify", dump_filter);
    Ok(env)
}

fn mj_err(msg: impl Into<String>) -> minijinja::Error {
    minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg.into())
}

fn to_mj(v: &Value) -> minijinja::Value {
    minijinja::Value::from(Serde(v))
}

fn from_mj(v: &minijinja::Value) -> std::result::Result<Value, String> {
    serde_json::to_value(v).map_err(|e| format!("the result is not JSON: {e}"))
}

/// A Backstage repo URL `host?owner=o&repo=r[&organization=..&workspace=..&project=..]`.
///
/// ```
/// let v = idp_catalog::scaffolder::parse_repo_url("github.com?owner=acme&repo=cart").unwrap();
/// assert_eq!(v["host"], "github.com");
/// assert_eq!(v["owner"], "acme");
/// assert_eq!(v["repo"], "cart");
/// assert!(idp_catalog::scaffolder::parse_repo_url("github.com?owner=acme").is_err());
/// ```
pub fn parse_repo_url(url: &str) -> Result<Value> {
    let (host, query) = url.split_once('?').ok_or_else(|| {
        Error::invalid_input(format!(
            "invalid repo URL {url:?}: expected host?owner=<owner>&repo=<repo>"
        ))
    })?;
    if host.is_empty() || host.contains('/') {
        return Err(Error::invalid_input(format!(
            "invalid repo URL {url:?}: the part before `?` must be a host name"
        )));
    }
    let mut out = Map::new();
    out.insert("host".into(), Value::String(host.to_owned()));
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        if matches!(
            k,
            "owner" | "repo" | "organization" | "workspace" | "project"
        ) && !v.is_empty()
        {
            out.insert(k.to_owned(), Value::String(v));
        }
    }
    if !out.contains_key("repo") {
        return Err(Error::invalid_input(format!(
            "invalid repo URL {url:?}: missing repo"
        )));
    }
    Ok(Value::Object(out))
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let decoded = if b == b'%' && i + 2 < bytes.len() {
            hex(bytes[i + 1])
                .zip(hex(bytes[i + 2]))
                .map(|(h, l)| h * 16 + l)
        } else {
            None
        };
        match (decoded, b) {
            (Some(d), _) => {
                out.push(d);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Backstage's `parseEntityRef`: `[kind:][namespace/]name` → `{kind, namespace, name}`,
/// with `defaultKind` / `defaultNamespace` (namespace defaults to `default`).
///
/// ```
/// let v = idp_catalog::scaffolder::parse_entity_ref("techdocs", Some("group"), None).unwrap();
/// assert_eq!(v, serde_json::json!({"kind": "group", "namespace": "default", "name": "techdocs"}));
/// assert!(idp_catalog::scaffolder::parse_entity_ref("techdocs", None, None).is_err());
/// ```
pub fn parse_entity_ref(
    reference: &str,
    default_kind: Option<&str>,
    default_namespace: Option<&str>,
) -> Result<Value> {
    let (kind, rest) = match reference.split_once(':') {
        Some((k, rest)) => (Some(k), rest),
        None => (None, reference),
    };
    let (namespace, name) = match rest.split_once('/') {
        Some((ns, n)) => (Some(ns), n),
        None => (None, rest),
    };
    let kind = kind.or(default_kind).filter(|k| !k.is_empty()).ok_or_else(|| {
        Error::invalid_input(format!(
            "entity reference {reference:?} had missing or empty kind (e.g. did not start with \"component:\" or similar)"
        ))
    })?;
    let namespace = namespace
        .or(default_namespace)
        .unwrap_or(idp_core::DEFAULT_NAMESPACE);
    if namespace.is_empty() {
        return Err(Error::invalid_input(format!(
            "entity reference {reference:?} had missing or empty namespace"
        )));
    }
    if name.is_empty() {
        return Err(Error::invalid_input(format!(
            "entity reference {reference:?} had missing or empty name"
        )));
    }
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(kind.to_owned()));
    out.insert("namespace".into(), Value::String(namespace.to_owned()));
    out.insert("name".into(), Value::String(name.to_owned()));
    Ok(Value::Object(out))
}

#[allow(clippy::needless_pass_by_value)] // minijinja passes owned arguments
fn parse_repo_url_filter(url: String) -> std::result::Result<minijinja::Value, minijinja::Error> {
    parse_repo_url(&url)
        .map(|v| to_mj(&v))
        .map_err(|e| mj_err(e.to_string()))
}

#[allow(clippy::needless_pass_by_value)] // minijinja passes owned arguments
fn project_slug_filter(url: String) -> std::result::Result<String, minijinja::Error> {
    let v = parse_repo_url(&url).map_err(|e| mj_err(e.to_string()))?;
    let owner = v.get("owner").and_then(Value::as_str).unwrap_or_default();
    let repo = v.get("repo").and_then(Value::as_str).unwrap_or_default();
    Ok(format!("{owner}/{repo}"))
}

#[allow(clippy::needless_pass_by_value)] // minijinja passes owned arguments
fn parse_entity_ref_filter(
    reference: String,
    options: Option<minijinja::Value>,
) -> std::result::Result<minijinja::Value, minijinja::Error> {
    let opt = |k: &str| -> Option<String> {
        let o = options.as_ref()?;
        let v = o.get_attr(k).ok()?;
        v.as_str().map(str::to_owned)
    };
    let kind = opt("defaultKind");
    let ns = opt("defaultNamespace");
    parse_entity_ref(&reference, kind.as_deref(), ns.as_deref())
        .map(|v| to_mj(&v))
        .map_err(|e| mj_err(e.to_string()))
}

#[allow(clippy::needless_pass_by_value)] // minijinja passes owned arguments
fn pick_filter(
    value: minijinja::Value,
    key: String,
) -> std::result::Result<minijinja::Value, minijinja::Error> {
    let mut v = value;
    for part in key.split('.') {
        v = v.get_attr(part)?;
        if v.is_undefined() {
            return Err(mj_err(format!("pick: the object has no property {key:?}")));
        }
    }
    Ok(v)
}

#[allow(clippy::needless_pass_by_value)] // minijinja passes owned arguments
fn dump_filter(value: minijinja::Value) -> std::result::Result<String, minijinja::Error> {
    if value.is_undefined() {
        return Err(minijinja::Error::from(minijinja::ErrorKind::UndefinedError));
    }
    serde_json::to_string(&value).map_err(|e| mj_err(format!("dump: {e}")))
}

/// The expression of a string that is exactly one `${{ expr }}` (surrounding blanks allowed).
fn single_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("${{")?.strip_suffix("}}")?;
    if inner.contains("${{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(inner.trim())
}

/// Quote bare identifiers used as dict keys (`{ a: 1 }` → `{ "a": 1 }`), as Nunjucks
/// accepts them and Jinja does not. Only touches text inside `open`…`close`.
fn nunjucks_keys<'a>(src: &'a str, open: &str, close: &str) -> Cow<'a, str> {
    if !src.contains(open) || !src.contains(':') {
        return Cow::Borrowed(src);
    }
    let mut out = String::with_capacity(src.len() + 8);
    let mut rest = src;
    let mut changed = false;
    while let Some(start) = rest.find(open) {
        out.push_str(&rest[..start + open.len()]);
        rest = &rest[start + open.len()..];
        let end = find_close(rest, close).unwrap_or(rest.len());
        let (expr, changed_here) = quote_keys(&rest[..end]);
        changed |= changed_here;
        out.push_str(&expr);
        rest = &rest[end..];
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(src)
    }
}

/// Where `close` ends the expression (ignoring string literals and nested braces).
fn find_close(s: &str, close: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' {
                i += 1;
            } else if b == q {
                quote = None;
            }
        } else if b == b'"' || b == b'\'' {
            quote = Some(b);
        } else if depth == 0 && bytes[i..].starts_with(close.as_bytes()) {
            return Some(i);
        } else if b == b'{' {
            depth += 1;
        } else if b == b'}' {
            depth = depth.saturating_sub(1);
        }
        i += 1;
    }
    None
}

fn quote_keys(expr: &str) -> (String, bool) {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = String::with_capacity(expr.len() + 4);
    let mut stack: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    let mut changed = false;
    let mut expect_key = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            out.push(c);
            if c == '\\' && i + 1 < chars.len() {
                out.push(chars[i + 1]);
                i += 1;
            } else if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if expect_key && (c.is_ascii_alphabetic() || c == '_') {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            let mut k = j;
            while k < chars.len() && chars[k].is_whitespace() {
                k += 1;
            }
            if k < chars.len() && chars[k] == ':' {
                out.push('"');
                out.extend(&chars[i..j]);
                out.push('"');
                changed = true;
                i = j;
                expect_key = false;
                continue;
            }
        }
        if !c.is_whitespace() {
            expect_key = false;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '{' => {
                stack.push('{');
                expect_key = true;
            }
            '(' | '[' => stack.push(c),
            '}' | ')' | ']' => {
                stack.pop();
            }
            ',' if stack.last() == Some(&'{') => expect_key = true,
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    (out, changed)
}

fn snippet(s: &str) -> String {
    const MAX: usize = 160;
    let t = s.trim();
    if t.chars().count() <= MAX {
        t.to_owned()
    } else {
        format!("{}…", t.chars().take(MAX).collect::<String>())
    }
}

impl Renderer {
    /// A renderer whose every render may run at most `fuel` instructions.
    ///
    /// ```
    /// let r = idp_catalog::scaffolder::Renderer::new(1_000).unwrap();
    /// let err = r.render_str("{% for a in range(1000) %}{% for b in range(1000) %}x{% endfor %}{% endfor %}",
    ///     &serde_json::json!({}), "loop").unwrap_err();
    /// assert!(err.to_string().contains("fuel"));
    /// ```
    pub fn new(fuel: u64) -> Result<Self> {
        Ok(Self {
            backstage: build_env(("${{", "}}"), fuel)?,
            cookiecutter: build_env(("{{", "}}"), fuel)?,
            fuel,
        })
    }

    fn error(&self, e: &minijinja::Error, source: &str, what: &str) -> Error {
        let cause = if e.kind() == minijinja::ErrorKind::OutOfFuel {
            format!(
                "the template ran out of fuel ({} instructions); it may loop forever",
                self.fuel
            )
        } else if e.kind() == minijinja::ErrorKind::UndefinedError {
            format!(
                "{e} (a name or property that does not exist; check the spelling, or use `| default(...)`)"
            )
        } else {
            e.to_string()
        };
        Error::invalid_input(format!(
            "{what}: cannot render `{}`: {cause}",
            snippet(source)
        ))
    }

    /// Render a template string (file contents, a file name, a mixed input string).
    ///
    /// ```
    /// let r = idp_catalog::scaffolder::Renderer::new(100_000).unwrap();
    /// let out = r.render_str("{% if values.ci %}ci: on{% endif %}\nraw {{ kept }}\n",
    ///     &serde_json::json!({"values": {"ci": true}}), "file").unwrap();
    /// assert_eq!(out, "ci: on\nraw {{ kept }}\n");
    /// let err = r.render_str("${{ values.nope }}", &serde_json::json!({"values": {}}), "step `x`").unwrap_err();
    /// assert!(err.to_string().contains("values.nope") && err.to_string().contains("step `x`"));
    /// ```
    pub fn render_str(&self, source: &str, ctx: &Value, what: &str) -> Result<String> {
        self.render_with(false, source, &to_mj(ctx), what)
    }

    /// Render with `{{ }}` variables and the context's `values` also named `cookiecutter`
    /// (`fetch:template`'s `cookiecutterCompat`).
    ///
    /// ```
    /// let r = idp_catalog::scaffolder::Renderer::new(100_000).unwrap();
    /// let out = r.render_cookiecutter("{{ cookiecutter.name }}", &serde_json::json!({"name": "cart"}), "f").unwrap();
    /// assert_eq!(out, "cart");
    /// ```
    pub fn render_cookiecutter(&self, source: &str, values: &Value, what: &str) -> Result<String> {
        let ctx = serde_json::json!({"values": values, "cookiecutter": values});
        self.render_with(true, source, &to_mj(&ctx), what)
    }

    pub(crate) fn render_with(
        &self,
        cookiecutter: bool,
        source: &str,
        ctx: &minijinja::Value,
        what: &str,
    ) -> Result<String> {
        let (env, open, close) = if cookiecutter {
            (&self.cookiecutter, "{{", "}}")
        } else {
            (&self.backstage, "${{", "}}")
        };
        let src = nunjucks_keys(source, open, close);
        env.render_str(&src, ctx.clone())
            .map_err(|e| self.error(&e, source, what))
    }

    pub(crate) fn mj_context(ctx: &Value) -> minijinja::Value {
        to_mj(ctx)
    }

    /// Evaluate one expression (without `${{ }}`) to its native value; `Ok(None)` when
    /// it is undefined.
    fn eval(&self, expr: &str, ctx: &minijinja::Value, what: &str) -> Result<Option<Value>> {
        let src = nunjucks_keys(&format!("${{{{{expr}}}}}"), "${{", "}}").into_owned();
        let expr_src = src
            .strip_prefix("${{")
            .and_then(|s| s.strip_suffix("}}"))
            .unwrap_or(expr)
            .to_owned();
        let source = format!("${{{{ {expr} }}}}");
        let compiled = self
            .backstage
            .compile_expression_owned(expr_src)
            .map_err(|e| self.error(&e, &source, what))?;
        let v = compiled
            .eval(ctx.clone())
            .map_err(|e| self.error(&e, &source, what))?;
        if v.is_undefined() {
            return Ok(None);
        }
        from_mj(&v)
            .map(Some)
            .map_err(|m| Error::invalid_input(format!("{what}: `{}`: {m}", snippet(&source))))
    }

    /// Render every string inside `value` (object keys are kept as written).
    ///
    /// ```
    /// let r = idp_catalog::scaffolder::Renderer::new(100_000).unwrap();
    /// let ctx = serde_json::json!({"parameters": {"tags": ["a", "b"]}});
    /// let v = r.render_value(&serde_json::json!({"t": "${{ parameters.tags }}", "n": "${{ parameters.tags | length }} tags"}), &ctx, "s").unwrap();
    /// assert_eq!(v, serde_json::json!({"t": ["a", "b"], "n": "2 tags"}));
    /// ```
    pub fn render_value(&self, value: &Value, ctx: &Value, what: &str) -> Result<Value> {
        self.render_value_mj(value, &to_mj(ctx), what, "")
    }

    pub(crate) fn render_value_mj(
        &self,
        value: &Value,
        ctx: &minijinja::Value,
        what: &str,
        path: &str,
    ) -> Result<Value> {
        let here = || {
            if path.is_empty() {
                what.to_owned()
            } else {
                format!("{what} input `{path}`")
            }
        };
        match value {
            Value::String(s) => {
                if let Some(expr) = single_expression(s) {
                    return self.eval(expr, ctx, &here())?.ok_or_else(|| {
                        Error::invalid_input(format!(
                            "{}: `{}` is undefined (check the spelling, or use `| default(...)`)",
                            here(),
                            snippet(s)
                        ))
                    });
                }
                if s.contains("${{") || s.contains("{%") {
                    return self.render_with(false, s, ctx, &here()).map(Value::String);
                }
                Ok(value.clone())
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| self.render_value_mj(v, ctx, what, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>>>()
                .map(Value::Array),
            Value::Object(m) => {
                let mut out = Map::with_capacity(m.len());
                for (k, v) in m {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    out.insert(k.clone(), self.render_value_mj(v, ctx, what, &p)?);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    /// Whether a step's `if` holds: JavaScript truthiness of the rendered value, an
    /// undefined expression being false.
    ///
    /// ```
    /// let r = idp_catalog::scaffolder::Renderer::new(100_000).unwrap();
    /// let ctx = serde_json::json!({"parameters": {"ci": false, "name": "x"}});
    /// assert!(!r.condition(&serde_json::json!("${{ parameters.ci }}"), &ctx, "s").unwrap());
    /// assert!(r.condition(&serde_json::json!("${{ parameters.name == 'x' }}"), &ctx, "s").unwrap());
    /// assert!(!r.condition(&serde_json::json!("${{ parameters.missing }}"), &ctx, "s").unwrap());
    /// ```
    pub fn condition(&self, value: &Value, ctx: &Value, what: &str) -> Result<bool> {
        let ctx = to_mj(ctx);
        let v = match value {
            Value::String(s) => match single_expression(s) {
                Some(expr) => self.eval(expr, &ctx, what)?.unwrap_or(Value::Null),
                None => self.render_value_mj(value, &ctx, what, "")?,
            },
            other => other.clone(),
        };
        Ok(truthy(&v))
    }
}

/// JavaScript truthiness, as Backstage applies it to `if`.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_keys_are_quoted_only_in_dicts() {
        let (out, changed) =
            quote_keys(r#" x | parseEntityRef({ defaultKind:"group", defaultNamespace: 'n' }) "#);
        assert!(changed);
        assert!(
            out.contains(r#"{ "defaultKind":"group", "defaultNamespace": 'n' }"#),
            "{out}"
        );
        let (out, changed) = quote_keys(" a[1:2] ~ 'b: c' ");
        assert!(!changed, "{out}");
        let (out, changed) = quote_keys(" {é: 'ü\\'', k: 1} ");
        assert!(changed);
        assert_eq!(out, " {é: 'ü\\'', \"k\": 1} ");
        assert_eq!(find_close("'}}' é }}", "}}"), Some(8));
    }

    #[test]
    fn single_expression_detection() {
        assert_eq!(single_expression(" ${{ a.b }} "), Some("a.b"));
        assert_eq!(single_expression("x ${{ a }}"), None);
        assert_eq!(single_expression("${{ a }}-${{ b }}"), None);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb+c"), "a/b c");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
