//! Score placeholders: `${metadata.name}`, `${resources.db.host}`, and `$$` for a literal `$`.

use std::collections::BTreeMap;

use serde_json::Value;

/// Expand the placeholders in `input`.
///
/// `$$` becomes `$`; `${path}` is replaced by `lookup(path)`; any other `$` is kept. The
/// error is a sentence about the first placeholder that could not be expanded (without
/// saying where it is: the caller knows the container and the field).
///
/// ```
/// use idp_deploy::workload::expand_placeholders;
/// let out = expand_placeholders("postgres://${resources.db.host}:5432 costs $$5", &mut |p| {
///     (p == "resources.db.host").then(|| "db.internal".to_owned()).ok_or_else(|| format!("no {p}"))
/// });
/// assert_eq!(out.unwrap(), "postgres://db.internal:5432 costs $5");
/// ```
pub fn expand_placeholders(
    input: &str,
    lookup: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                return Err(format!(
                    "`${{{}` has no closing `}}`; write `$$` for a literal `$`",
                    truncate(body)
                ));
            };
            let path = &body[..end];
            let value = lookup(path).map_err(|e| format!("cannot resolve `${{{path}}}`: {e}"))?;
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Split a placeholder path on `.`, honouring `\.` as a dot inside a key.
pub(crate) fn split_path(path: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                chars.next();
                if let Some(last) = parts.last_mut() {
                    last.push('.');
                }
            }
            '.' => parts.push(String::new()),
            c => {
                if let Some(last) = parts.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    parts
}

/// Walk `keys` into `value`; a string is returned as is, other scalars as JSON text, and
/// mappings or lists as compact JSON.
pub(crate) fn lookup_value(value: &Value, keys: &[String]) -> Result<String, String> {
    let mut current = value;
    for (i, key) in keys.iter().enumerate() {
        let next = match current {
            Value::Object(map) => map.get(key),
            Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        current = next.ok_or_else(|| {
            let at = if i == 0 {
                String::new()
            } else {
                format!(" under `{}`", keys[..i].join("."))
            };
            match current {
                Value::Object(map) if !map.is_empty() => format!(
                    "no key `{key}`{at} (known: {})",
                    map.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
                _ => format!("no key `{key}`{at}"),
            }
        })?;
    }
    Ok(match current {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// The values placeholders can reach: `metadata` and each resource's outputs.
pub(crate) struct Scope<'a> {
    pub metadata: Value,
    pub outputs: &'a BTreeMap<String, Value>,
}

impl Scope<'_> {
    /// Resolve one placeholder path.
    pub(crate) fn resolve(&self, path: &str) -> Result<String, String> {
        let keys = split_path(path);
        match keys.first().map(String::as_str) {
            Some("metadata") if keys.len() > 1 => {
                lookup_value(&self.metadata, &keys[1..]).map_err(|e| format!("metadata has {e}"))
            }
            Some("resources") if keys.len() > 2 => {
                let name = &keys[1];
                let Some(outputs) = self.outputs.get(name) else {
                    let known: Vec<&str> = self.outputs.keys().map(String::as_str).collect();
                    return Err(format!(
                        "the workload declares no resource `{name}`{}; add it under `resources:`",
                        if known.is_empty() {
                            String::new()
                        } else {
                            format!(" (declared: {})", known.join(", "))
                        }
                    ));
                };
                lookup_value(outputs, &keys[2..]).map_err(|e| format!("resource `{name}` has {e}"))
            }
            Some("resources") => Err("a resource placeholder needs a resource and an output: \
                 `${resources.<name>.<output>}`"
                .to_owned()),
            _ => Err("a placeholder starts with `metadata.` or `resources.<name>.`".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no(p: &str) -> Result<String, String> {
        Err(format!("unknown {p}"))
    }

    #[test]
    fn escapes_and_plain_dollars() {
        assert_eq!(expand_placeholders("a$$b", &mut no).unwrap(), "a$b");
        assert_eq!(expand_placeholders("$HOME $", &mut no).unwrap(), "$HOME $");
        assert_eq!(expand_placeholders("$${x}", &mut no).unwrap(), "${x}");
        assert!(
            expand_placeholders("${x", &mut no)
                .unwrap_err()
                .contains("closing")
        );
        assert!(
            expand_placeholders("${x}", &mut no)
                .unwrap_err()
                .contains("`${x}`")
        );
    }

    #[test]
    fn escaped_dots_stay_in_keys() {
        assert_eq!(split_path(r"a.b\.c.d"), ["a", "b.c", "d"]);
    }
}
