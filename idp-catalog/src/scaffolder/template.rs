//! The `scaffolder.backstage.io/v1beta3` Template model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use idp_core::{Error, Result};

/// The only Template apiVersion the scaffolder runs.
pub const API_VERSION: &str = "scaffolder.backstage.io/v1beta3";

/// A parsed Template: its parameters (form pages), steps and output.
///
/// ```
/// use idp_catalog::scaffolder::Template;
/// let t = Template::from_yaml(r#"
/// apiVersion: scaffolder.backstage.io/v1beta3
/// kind: Template
/// metadata: {name: hello}
/// spec:
///   owner: team-a
///   type: service
///   parameters:
///     - title: Name
///       required: [name]
///       properties:
///         name: {type: string}
///   steps:
///     - id: log
///       action: debug:log
///       input: {message: "hello ${{ parameters.name }}"}
/// "#).unwrap();
/// assert_eq!(t.name, "hello");
/// assert_eq!(t.steps[0].action, "debug:log");
/// assert_eq!(t.parameters.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (`default` when absent).
    pub namespace: String,
    /// `metadata.title`.
    pub title: Option<String>,
    /// `metadata.description`.
    pub description: Option<String>,
    /// `spec.type`, e.g. `service` or `resource`.
    pub template_type: String,
    /// `spec.owner`.
    pub owner: Option<String>,
    /// The form pages; `spec.parameters` given as one object is one page.
    pub parameters: Vec<ParameterStep>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// `spec.output`, rendered after the last step.
    pub output: TemplateOutput,
    /// The folder the template was read from: `fetch:*` resolve relative URLs against it.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

/// One form page of `spec.parameters`: a JSON Schema object with `ui:*` hints kept.
///
/// ```
/// use idp_catalog::scaffolder::ParameterStep;
/// let p = ParameterStep::new(serde_json::json!({"title": "Secrets", "properties": {
///     "token": {"type": "string", "ui:field": "Secret"}}}));
/// assert_eq!(p.title.as_deref(), Some("Secrets"));
/// assert_eq!(p.ui_hints()["token"]["ui:field"], "Secret");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParameterStep {
    /// The page title.
    pub title: Option<String>,
    /// The page description.
    pub description: Option<String>,
    /// The whole page as written, a JSON Schema with `ui:*` keys.
    pub schema: Value,
}

impl ParameterStep {
    /// Wrap one page's JSON Schema.
    ///
    /// ```
    /// let p = idp_catalog::scaffolder::ParameterStep::new(serde_json::json!({"properties": {}}));
    /// assert!(p.title.is_none());
    /// ```
    pub fn new(schema: Value) -> Self {
        let text = |k: &str| schema.get(k).and_then(Value::as_str).map(str::to_owned);
        Self {
            title: text("title"),
            description: text("description"),
            schema,
        }
    }

    /// The `ui:*` keys of every property, by dotted property path (for form UIs).
    ///
    /// ```
    /// let p = idp_catalog::scaffolder::ParameterStep::new(serde_json::json!({"properties": {
    ///     "owner": {"type": "string", "ui:field": "OwnerPicker", "ui:options": {"catalogFilter": {"kind": "Group"}}}}}));
    /// assert_eq!(p.ui_hints()["owner"]["ui:field"], "OwnerPicker");
    /// ```
    pub fn ui_hints(&self) -> BTreeMap<String, Map<String, Value>> {
        let mut out = BTreeMap::new();
        walk_properties(&self.schema, "", &mut |path, prop| {
            let hints: Map<String, Value> = prop
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.starts_with("ui:"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !hints.is_empty() {
                out.entry(path.to_owned())
                    .or_insert_with(Map::new)
                    .extend(hints);
            }
        });
        out
    }

    /// Dotted paths of the fields marked secret (`ui:field: Secret` or
    /// `ui:widget: password`).
    ///
    /// ```
    /// let p = idp_catalog::scaffolder::ParameterStep::new(serde_json::json!({"properties": {
    ///     "db": {"type": "object", "properties": {"password": {"type": "string", "ui:widget": "password"}}}}}));
    /// assert_eq!(p.secret_fields(), vec!["db.password".to_owned()]);
    /// ```
    pub fn secret_fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk_properties(&self.schema, "", &mut |path, prop| {
            let field = prop.get("ui:field").and_then(Value::as_str);
            let widget = prop.get("ui:widget").and_then(Value::as_str);
            if field == Some("Secret") || widget == Some("password") {
                out.push(path.to_owned());
            }
        });
        out.sort();
        out.dedup();
        out
    }
}

/// Call `f(path, property_schema)` for every property declared anywhere in `schema`
/// (nested `properties`, `dependencies`, `allOf`/`anyOf`/`oneOf`, `if`/`then`/`else`).
pub(crate) fn walk_properties(schema: &Value, prefix: &str, f: &mut dyn FnMut(&str, &Value)) {
    let Some(obj) = schema.as_object() else {
        return;
    };
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            f(&path, prop);
            walk_properties(prop, &path, f);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for sub in obj.get(key).and_then(Value::as_array).into_iter().flatten() {
            walk_properties(sub, prefix, f);
        }
    }
    for key in ["then", "else"] {
        if let Some(sub) = obj.get(key) {
            walk_properties(sub, prefix, f);
        }
    }
    if let Some(deps) = obj.get("dependencies").and_then(Value::as_object) {
        for dep in deps.values() {
            walk_properties(dep, prefix, f);
        }
    }
    if let Some(items) = obj.get("items") {
        walk_properties(items, prefix, f);
    }
}

/// One entry of `spec.steps`.
///
/// ```
/// let s: idp_catalog::scaffolder::Step = idp_catalog::scaffolder::Step::from_value(
///     &serde_json::json!({"id": "a", "action": "debug:log", "if": "${{ parameters.x }}"}), 0).unwrap();
/// assert!(s.condition.is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// `id` (`step-<n>` when absent, counting from 1).
    pub id: String,
    /// `name` (display).
    pub name: Option<String>,
    /// `action`, e.g. `fetch:template`.
    pub action: String,
    /// `input` (templated), `{}` when absent.
    pub input: Value,
    /// `if` (templated); the step is skipped when it renders falsy.
    #[serde(rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    /// `each` (templated): an array or object; the step runs once per entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub each: Option<Value>,
}

impl Step {
    /// Read step number `index` (from 0) of `spec.steps`.
    ///
    /// ```
    /// let s = idp_catalog::scaffolder::Step::from_value(&serde_json::json!({"action": "debug:log"}), 1).unwrap();
    /// assert_eq!(s.id, "step-2");
    /// ```
    pub fn from_value(value: &Value, index: usize) -> Result<Self> {
        let where_ = || format!("spec.steps[{index}]");
        let obj = value.as_object().ok_or_else(|| {
            Error::invalid_input(format!("{} must be a mapping with an `action`", where_()))
        })?;
        let action = obj
            .get("action")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "{} has no `action`; name the action to run, e.g. `action: fetch:template`",
                    where_()
                ))
            })?;
        let id = match obj.get("id") {
            None | Some(Value::Null) => format!("step-{}", index + 1),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(other) => {
                return Err(Error::invalid_input(format!(
                    "{}.id must be a non-empty string, found {other}",
                    where_()
                )));
            }
        };
        Ok(Self {
            id,
            name: obj.get("name").and_then(Value::as_str).map(str::to_owned),
            action: action.to_owned(),
            input: obj
                .get("input")
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new())),
            condition: obj.get("if").cloned(),
            each: obj.get("each").cloned(),
        })
    }
}

/// `spec.output`: links and text shown when a run ends (templated).
///
/// ```
/// let o = idp_catalog::scaffolder::TemplateOutput::from_value(&serde_json::json!({
///     "links": [{"title": "Repository", "url": "${{ steps.publish.output.remoteUrl }}"}]}));
/// assert_eq!(o.links.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct TemplateOutput {
    /// `links`: `{title, url, icon, entityRef}` each.
    pub links: Vec<Value>,
    /// `text`: `{title, content}` each.
    pub text: Vec<Value>,
    /// Any other keys (Backstage shows them as raw values).
    pub extra: Map<String, Value>,
}

impl TemplateOutput {
    /// Read `spec.output`.
    ///
    /// ```
    /// assert!(idp_catalog::scaffolder::TemplateOutput::from_value(&serde_json::Value::Null).links.is_empty());
    /// ```
    pub fn from_value(value: &Value) -> Self {
        let mut extra = value.as_object().cloned().unwrap_or_default();
        let mut list = |k: &str| match extra.remove(k) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let links = list("links");
        let text = list("text");
        Self { links, text, extra }
    }
}

impl Template {
    /// Read a Template entity (JSON form).
    ///
    /// ```
    /// let t = idp_catalog::scaffolder::Template::from_value(&serde_json::json!({
    ///     "apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template",
    ///     "metadata": {"name": "t"}, "spec": {"type": "service", "steps": []}})).unwrap();
    /// assert_eq!(t.template_type, "service");
    /// ```
    pub fn from_value(value: &Value) -> Result<Self> {
        let api = value.get("apiVersion").and_then(Value::as_str);
        if api != Some(API_VERSION) {
            return Err(Error::invalid_input(format!(
                "not a v1beta3 template: apiVersion is {}, expected {API_VERSION}",
                api.map_or_else(|| "missing".to_owned(), |a| format!("{a:?}"))
            )));
        }
        let kind = value.get("kind").and_then(Value::as_str);
        if kind != Some("Template") {
            return Err(Error::invalid_input(format!(
                "not a template: kind is {kind:?}, expected \"Template\""
            )));
        }
        let meta = |k: &str| {
            value
                .get("metadata")
                .and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let name = meta("name")
            .ok_or_else(|| Error::invalid_input("template has no string `metadata.name`"))?;
        let spec = value
            .get("spec")
            .and_then(Value::as_object)
            .ok_or_else(|| Error::invalid_input(format!("template {name} has no `spec`")))?;
        let parameters = match spec.get("parameters") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(pages)) => pages.iter().cloned().map(ParameterStep::new).collect(),
            Some(page @ Value::Object(_)) => vec![ParameterStep::new(page.clone())],
            Some(other) => {
                return Err(Error::invalid_input(format!(
                    "template {name}: spec.parameters must be a JSON Schema object or a list of them, found {other}"
                )));
            }
        };
        let raw_steps = match spec.get("steps") {
            None | Some(Value::Null) => &Vec::new(),
            Some(Value::Array(steps)) => steps,
            Some(_) => {
                return Err(Error::invalid_input(format!(
                    "template {name}: spec.steps must be a list"
                )));
            }
        };
        let mut steps: Vec<Step> = Vec::with_capacity(raw_steps.len());
        for (i, raw) in raw_steps.iter().enumerate() {
            let step =
                Step::from_value(raw, i).map_err(|e| e.context(format!("template {name}")))?;
            if steps.iter().any(|s| s.id == step.id) {
                return Err(Error::invalid_input(format!(
                    "template {name}: two steps have the id {:?}; step ids must be unique",
                    step.id
                )));
            }
            steps.push(step);
        }
        Ok(Self {
            namespace: meta("namespace").unwrap_or_else(|| idp_core::DEFAULT_NAMESPACE.to_owned()),
            title: meta("title"),
            description: meta("description"),
            template_type: spec
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            owner: spec.get("owner").and_then(Value::as_str).map(str::to_owned),
            parameters,
            steps,
            output: TemplateOutput::from_value(spec.get("output").unwrap_or(&Value::Null)),
            base_dir: None,
            name,
        })
    }

    /// Read a Template from YAML text (one document, or the first Template of several).
    ///
    /// ```
    /// let err = idp_catalog::scaffolder::Template::from_yaml("kind: Component").unwrap_err();
    /// assert!(err.to_string().contains("apiVersion"));
    /// ```
    pub fn from_yaml(text: &str) -> Result<Self> {
        let docs = crate::parse::parse_documents(text)
            .map_err(|e| Error::invalid_input(format!("template YAML: {e}")))?;
        let doc = docs
            .iter()
            .find(|d| d.value.get("kind").and_then(Value::as_str) == Some("Template"))
            .or(docs.first())
            .ok_or_else(|| Error::invalid_input("template YAML has no document"))?;
        Self::from_value(&doc.value)
    }

    /// Read a Template file; relative `fetch:*` URLs resolve against its folder.
    ///
    /// ```no_run
    /// let t = idp_catalog::scaffolder::Template::load("examples/templates/rust-service/template.yaml").unwrap();
    /// assert!(t.base_dir.is_some());
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid_input(format!("cannot read template {}: {e}", path.display()))
        })?;
        let mut t = Self::from_yaml(&text).map_err(|e| e.context(path.display()))?;
        t.base_dir = Some(
            path.parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        );
        Ok(t)
    }

    /// Set the folder relative `fetch:*` URLs resolve against.
    ///
    /// ```
    /// # let t = idp_catalog::scaffolder::Template::from_yaml("apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: t}\nspec: {type: x, steps: []}").unwrap();
    /// let t = t.with_base_dir("/srv/templates/t");
    /// assert!(t.base_dir.is_some());
    /// ```
    pub fn with_base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    /// Dotted paths of every secret field over all pages.
    ///
    /// ```
    /// # let t = idp_catalog::scaffolder::Template::from_yaml("apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: t}\nspec: {type: x, steps: [], parameters: {properties: {pw: {type: string, 'ui:field': Secret}}}}").unwrap();
    /// assert_eq!(t.secret_fields(), vec!["pw".to_owned()]);
    /// ```
    pub fn secret_fields(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .parameters
            .iter()
            .flat_map(ParameterStep::secret_fields)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The action ids the steps use, in first-use order, without duplicates.
    ///
    /// ```
    /// # let t = idp_catalog::scaffolder::Template::from_yaml("apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: t}\nspec: {type: x, steps: [{action: a}, {action: b}, {action: a}]}").unwrap();
    /// assert_eq!(t.action_ids(), vec!["a", "b"]);
    /// ```
    pub fn action_ids(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.steps {
            if !out.contains(&s.action.as_str()) {
                out.push(&s.action);
            }
        }
        out
    }
}
