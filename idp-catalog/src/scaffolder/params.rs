//! Parameter validation: every form page's JSON Schema applies to the whole set of
//! values (as Backstage validates them), schema defaults fill missing fields, and errors
//! name the field without ever quoting a secret.

use serde::Serialize;
use serde_json::{Map, Value};

use idp_core::{Error, Result};

use super::secrets::Redactor;
use super::template::{Template, walk_properties};

/// One problem with one parameter.
///
/// ```
/// let e = idp_catalog::scaffolder::FieldError { field: "name".into(), message: "is required".into() };
/// assert_eq!(e.to_string(), "parameters.name: is required");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Dotted path of the field (`""` for the whole object).
    pub field: String,
    /// What is wrong, never containing a secret value.
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "parameters: {}", self.message)
        } else {
            write!(f, "parameters.{}: {}", self.field, self.message)
        }
    }
}

/// Fill schema `default`s for fields the caller left out (recursively into objects).
fn apply_defaults(schema: &Value, values: &mut Value) {
    let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(Value::as_object),
        values.as_object_mut(),
    ) else {
        return;
    };
    for (name, prop) in props {
        if !obj.contains_key(name) {
            if let Some(default) = prop.get("default") {
                obj.insert(name.clone(), default.clone());
            } else if prop.get("type").and_then(Value::as_str) == Some("object")
                && prop.get("properties").is_some()
            {
                let mut nested = Value::Object(Map::new());
                apply_defaults(prop, &mut nested);
                if nested.as_object().is_some_and(|m| !m.is_empty()) {
                    obj.insert(name.clone(), nested);
                }
            }
        } else if let Some(child) = obj.get_mut(name) {
            apply_defaults(prop, child);
        }
    }
}

fn pointer_to_dotted(pointer: &str) -> String {
    pointer
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

/// The values at the dotted `paths` (strings, numbers; nested values flattened), for
/// redaction.
pub(crate) fn values_at(values: &Value, paths: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for path in paths {
        let mut v = values;
        let mut found = true;
        for part in path.split('.') {
            if let Some(next) = v.get(part) {
                v = next;
            } else {
                found = false;
                break;
            }
        }
        if found {
            collect_scalars(v, &mut out);
        }
    }
    out
}

fn collect_scalars(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|i| collect_scalars(i, out)),
        Value::Object(m) => m.values().for_each(|i| collect_scalars(i, out)),
        Value::Bool(_) | Value::Null => {}
    }
}

/// Validate `values` against every page of `template`'s parameters, after filling
/// schema defaults. Returns the values with defaults, or every problem found.
///
/// ```
/// use idp_catalog::scaffolder::{Template, validate_parameters};
/// let t = Template::from_yaml(r#"
/// apiVersion: scaffolder.backstage.io/v1beta3
/// kind: Template
/// metadata: {name: t}
/// spec:
///   type: service
///   parameters:
///     - required: [name]
///       properties:
///         name: {type: string, pattern: '^[a-z-]+$'}
///     - properties:
///         replicas: {type: integer, default: 2}
///   steps: []
/// "#).unwrap();
/// let ok = validate_parameters(&t, &serde_json::json!({"name": "cart"})).unwrap();
/// assert_eq!(ok["replicas"], 2);
/// let errors = validate_parameters(&t, &serde_json::json!({"name": "Cart!"})).unwrap_err();
/// assert_eq!(errors[0].field, "name");
/// ```
pub fn validate_parameters(
    template: &Template,
    values: &Value,
) -> std::result::Result<Value, Vec<FieldError>> {
    let mut values = if values.is_null() {
        Value::Object(Map::new())
    } else {
        values.clone()
    };
    if !values.is_object() {
        return Err(vec![FieldError {
            field: String::new(),
            message: "the values must be a mapping of parameter names to values".into(),
        }]);
    }
    for page in &template.parameters {
        apply_defaults(&page.schema, &mut values);
    }
    let secret_paths = template.secret_fields();
    let redactor = Redactor::new(values_at(&values, &secret_paths));
    let mut errors = Vec::new();
    for (i, page) in template.parameters.iter().enumerate() {
        let validator = match jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .build(&strip_ui(&page.schema))
        {
            Ok(v) => v,
            Err(e) => {
                errors.push(FieldError {
                    field: String::new(),
                    message: format!(
                        "the template's parameters page {} is not a valid JSON Schema: {}",
                        i + 1,
                        e.masked()
                    ),
                });
                continue;
            }
        };
        for err in validator.iter_errors(&values) {
            let mut field = pointer_to_dotted(err.instance_path().as_str());
            let message =
                if let jsonschema::error::ValidationErrorKind::Required { property } = err.kind() {
                    let prop = property.as_str().unwrap_or_default();
                    field = if field.is_empty() {
                        prop.to_owned()
                    } else {
                        format!("{field}.{prop}")
                    };
                    "is required".to_owned()
                } else if is_secret_path(&secret_paths, &field) {
                    // Never quote the value of a secret field.
                    redactor.redact(&err.masked().to_string())
                } else {
                    redactor.redact(&err.to_string())
                };
            let e = FieldError { field, message };
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

fn is_secret_path(secrets: &[String], field: &str) -> bool {
    secrets
        .iter()
        .any(|s| field == s || field.starts_with(&format!("{s}.")))
}

/// The schema without `ui:*` keys (they are hints for forms, not validation).
fn strip_ui(schema: &Value) -> Value {
    match schema {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with("ui:"))
                .map(|(k, v)| (k.clone(), strip_ui(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_ui).collect()),
        other => other.clone(),
    }
}

/// [`validate_parameters`] as one [`Error`] of kind `InvalidInput` listing every field.
pub(crate) fn validate_or_error(template: &Template, values: &Value) -> Result<Value> {
    validate_parameters(template, values).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| format!("  - {e}")).collect();
        Error::invalid_input(format!(
            "template {} rejected the parameters ({} problem{}):\n{}",
            template.name,
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            lines.join("\n")
        ))
    })
}

/// Every property path declared by the template (for `--set` type coercion in CLIs).
///
/// ```
/// # let t = idp_catalog::scaffolder::Template::from_yaml("apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: t}\nspec: {type: x, steps: [], parameters: {properties: {n: {type: integer}}}}").unwrap();
/// assert_eq!(idp_catalog::scaffolder::property_type(&t, "n").as_deref(), Some("integer"));
/// ```
pub fn property_type(template: &Template, path: &str) -> Option<String> {
    let mut found = None;
    for page in &template.parameters {
        walk_properties(&page.schema, "", &mut |p, prop| {
            if p == path && found.is_none() {
                found = prop.get("type").and_then(Value::as_str).map(str::to_owned);
            }
        });
    }
    found
}
