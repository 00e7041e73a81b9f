//! Kyverno `mutate` rules: `patchStrategicMerge`, `patchesJson6902` and `foreach`.
//!
//! A rule's patch is read once; when the rule applies, the `{{ }}` variables in it are
//! filled in from the object as it is at that point (after the rules before it), the
//! patch is put under the Pod template for an auto-generated rule, and it is applied:
//! a strategic merge patch with anchors by [`overlay`], a JSON patch by [`jsonpatch`].
//!
//! Variables are filled in innermost first, so `{{ replace_all('{{element}}', 'a', 'b') }}`
//! works as in Kyverno. A string that is exactly one `{{ }}` takes the value with its type
//! (a number stays a number); otherwise each variable is replaced by its text. A variable
//! that has no value is an error naming it (write a default: `{{ x || 'none' }}`), as
//! Kyverno fails such a rule rather than writing an empty string into the object.
//! Keys may hold variables too (`"{{ element.name }}": …`). In a JSON patch the text is
//! filled in before it is read, so `value: {{ request.object.spec.replicas }}` is a number.
//!
//! `foreach` entries run in order, each over the object as the entries before it left
//! it; within an entry, the list is evaluated once and the element patches are applied one
//! after the other (`order: Descending` reverses them, which removals by index need).
//! `elementIndex`, and `elementIndex0`, `elementIndex1`… by depth, are set as for
//! validate rules; `preconditions` are allowed on the outermost loop only.

use idp_core::{Error, Result};
use jmespath::{Rcvar, Variable};
use serde_json::{Map, Value, json};

use super::Form;
use super::conditions::Conditions;
use super::foreach::with_element;
use super::{jsonpatch, overlay};

/// Deeper nesting of variables in one string than this is refused.
const MAX_ROUNDS: usize = 64;
/// Deeper nesting of a patch than this is refused when variables are filled in.
const MAX_NESTING: usize = 128;

/// A patch as written.
#[derive(Debug, Clone)]
pub(super) enum Patch {
    /// `patchStrategicMerge`.
    Strategic(Value),
    /// `patchesJson6902`: the text, and its operations when it has no variables.
    Json6902 {
        text: String,
        parsed: Option<Vec<jsonpatch::Operation>>,
    },
}

/// What a mutate rule does.
#[derive(Debug, Clone)]
pub(super) enum Mutate {
    /// One patch.
    Patch(Patch),
    /// `foreach`: a patch per element of lists.
    ForEach(Vec<ForEach>),
}

/// One `foreach` entry.
#[derive(Clone)]
pub(super) struct ForEach {
    list: Box<jmespath::Expression<'static>>,
    descending: bool,
    preconditions: Option<Conditions>,
    body: Body,
}

impl std::fmt::Debug for ForEach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForEach")
            .field("list", &self.list.as_str())
            .field("descending", &self.descending)
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
enum Body {
    Patch(Patch),
    Nested(Vec<ForEach>),
}

/// What applying a rule did.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Outcome {
    /// The object after the patch (it may equal the object before).
    Patched(Value),
    /// The rule does not apply (an anchor did not hold, or no element was patched).
    Skipped(String),
}

fn patch_error(field: &str, e: &overlay::PatchError) -> String {
    if e.field.is_empty() {
        format!("{field}: {}", e.message)
    } else {
        format!("{field}.{}: {}", e.field, e.message)
    }
}

impl Patch {
    /// The patch of `value` (a `mutate` block or a `foreach` entry), if it has one.
    fn parse(value: &Value, field: &str, here: &str) -> Result<Option<Self>> {
        let strategic = value
            .get("patchStrategicMerge")
            .filter(|p| !p.is_null())
            .or_else(|| value.get("overlay").filter(|p| !p.is_null()));
        let json = value.get("patchesJson6902").filter(|p| !p.is_null());
        match (strategic, json) {
            (Some(_), Some(_)) => Err(Error::invalid_input(format!(
                "{here}{field}: give patchStrategicMerge or patchesJson6902, not both"
            ))),
            (Some(p), None) => {
                if !p.is_object() {
                    return Err(Error::invalid_input(format!(
                        "{here}{field}.patchStrategicMerge must be a mapping (a partial resource)"
                    )));
                }
                overlay::check(p).map_err(|e| {
                    Error::invalid_input(format!(
                        "{here}{}",
                        patch_error(&format!("{field}.patchStrategicMerge"), &e)
                    ))
                })?;
                Ok(Some(Self::Strategic(p.clone())))
            }
            (None, Some(p)) => {
                let text = match p {
                    Value::String(s) => s.clone(),
                    // A list written inline rather than as a block of text.
                    Value::Array(_) => p.to_string(),
                    _ => {
                        return Err(Error::invalid_input(format!(
                            "{here}{field}.patchesJson6902 must be the text of a list of operations (op, path, value)"
                        )));
                    }
                };
                let parsed = if text.contains("{{") {
                    None
                } else {
                    Some(jsonpatch::parse(&text).map_err(|e| {
                        Error::invalid_input(format!(
                            "{here}{}",
                            patch_error(&format!("{field}.patchesJson6902"), &e)
                        ))
                    })?)
                };
                Ok(Some(Self::Json6902 { text, parsed }))
            }
            (None, None) => Ok(None),
        }
    }

    fn is_json(&self) -> bool {
        matches!(self, Self::Json6902 { .. })
    }

    /// Apply to `object` with the variables of `data`; `form` puts a strategic merge
    /// patch under the Pod template of a controller.
    fn apply(
        &self,
        object: &Value,
        data: &Rcvar,
        form: Form,
    ) -> std::result::Result<Outcome, String> {
        match self {
            Self::Strategic(patch) => {
                let filled = substitute(patch, data, 0)?;
                let wrapped = match form {
                    Form::Direct => filled,
                    Form::Template => json!({"spec": {"template": filled}}),
                    Form::CronJob => {
                        json!({"spec": {"jobTemplate": {"spec": {"template": filled}}}})
                    }
                };
                match overlay::apply(object, &wrapped) {
                    Ok(overlay::Applied::Patched(v)) => Ok(Outcome::Patched(v)),
                    Ok(overlay::Applied::Skipped(why)) => Ok(Outcome::Skipped(why)),
                    Err(e) => Err(patch_error("patchStrategicMerge", &e)),
                }
            }
            Self::Json6902 { text, parsed } => {
                let filled;
                let ops = if let Some(ops) = parsed {
                    ops
                } else {
                    let text = fill_text(text, data)?;
                    filled =
                        jsonpatch::parse(&text).map_err(|e| patch_error("patchesJson6902", &e))?;
                    &filled
                };
                jsonpatch::apply(object, ops)
                    .map(Outcome::Patched)
                    .map_err(|e| patch_error("patchesJson6902", &e))
            }
        }
    }
}

impl Mutate {
    /// Read a rule's `mutate` block at `field`.
    pub(super) fn parse(value: &Value, field: &str, here: &str) -> Result<Self> {
        if !value.is_object() {
            return Err(Error::invalid_input(format!(
                "{here}{field} must be a mapping with patchStrategicMerge, patchesJson6902 or foreach"
            )));
        }
        if value
            .get("targets")
            .is_some_and(|t| t.as_array().is_none_or(|l| !l.is_empty()) && !t.is_null())
        {
            return Err(Error::invalid_input(format!(
                "{here}{field}.targets: mutating existing resources needs the cluster and is not supported; mutate the object under admission instead"
            )));
        }
        let patch = Patch::parse(value, field, here)?;
        let foreach = value.get("foreach").filter(|f| !f.is_null());
        match (patch, foreach) {
            (Some(_), Some(_)) => Err(Error::invalid_input(format!(
                "{here}{field}: give a patch or a foreach, not both"
            ))),
            (Some(p), None) => Ok(Self::Patch(p)),
            (None, Some(list)) => Ok(Self::ForEach(ForEach::parse_list(
                list,
                &format!("{field}.foreach"),
                here,
                0,
            )?)),
            (None, None) => Err(Error::invalid_input(format!(
                "{here}{field}: give patchStrategicMerge, patchesJson6902 or foreach"
            ))),
        }
    }

    /// Whether Kyverno auto-generates the rule for Pod controllers: not when it uses a
    /// JSON patch, whose paths are the Pod's own.
    pub(super) fn autogen(&self) -> bool {
        match self {
            Self::Patch(p) => !p.is_json(),
            Self::ForEach(list) => list.iter().all(ForEach::autogen),
        }
    }

    /// Apply to `object` (the whole object) in `form`; `data_of` gives the variables'
    /// data for the object as it is at that point.
    pub(super) fn apply(
        &self,
        object: &Value,
        form: Form,
        data_of: &dyn Fn(&Value) -> std::result::Result<Rcvar, String>,
    ) -> std::result::Result<Outcome, String> {
        match self {
            Self::Patch(p) => p.apply(object, &data_of(object)?, form),
            Self::ForEach(list) => {
                let mut current = object.clone();
                let mut patched = false;
                for (i, entry) in list.iter().enumerate() {
                    let data = data_of(&current)?;
                    let (next, any) = entry
                        .run(current, &data, form, 0)
                        .map_err(|e| format!("foreach[{i}]: {e}"))?;
                    current = next;
                    patched |= any;
                }
                Ok(if patched {
                    Outcome::Patched(current)
                } else {
                    Outcome::Skipped("no element of the foreach lists was patched".to_owned())
                })
            }
        }
    }
}

impl ForEach {
    fn parse_list(value: &Value, field: &str, here: &str, depth: usize) -> Result<Vec<Self>> {
        super::foreach::parse_entries(value, field, here, depth, Self::parse_one)
    }

    fn parse_one(item: &Value, field: &str, here: &str, depth: usize) -> Result<Self> {
        let bad = |what: String| Error::invalid_input(format!("{here}{what}"));
        let (list, _, preconditions) = super::foreach::parse_head(item, field, here, depth)?;
        let descending = match item.get("order").and_then(Value::as_str) {
            None | Some("Ascending") => false,
            Some("Descending") => true,
            Some(other) => {
                return Err(bad(format!(
                    "{field}.order: {other:?} is not an order: Ascending or Descending"
                )));
            }
        };
        let patch = Patch::parse(item, field, here)?;
        let nested = item.get("foreach").filter(|f| !f.is_null());
        let body = match (patch, nested) {
            (Some(_), Some(_)) => {
                return Err(bad(format!(
                    "{field}: give a patch or a nested foreach, not both"
                )));
            }
            (Some(p), None) => Body::Patch(p),
            (None, Some(list)) => Body::Nested(Self::parse_list(
                list,
                &format!("{field}.foreach"),
                here,
                depth + 1,
            )?),
            (None, None) => {
                return Err(bad(format!(
                    "{field}: give patchStrategicMerge, patchesJson6902 or a nested foreach"
                )));
            }
        };
        Ok(Self {
            list: Box::new(list),
            descending,
            preconditions,
            body,
        })
    }

    fn autogen(&self) -> bool {
        match &self.body {
            Body::Patch(p) => !p.is_json(),
            Body::Nested(list) => list.iter().all(Self::autogen),
        }
    }

    /// Patch `object` once per element of the list (evaluated over `data`); whether
    /// some element's patch applied.
    fn run(
        &self,
        mut object: Value,
        data: &Rcvar,
        form: Form,
        depth: usize,
    ) -> std::result::Result<(Value, bool), String> {
        let items = self
            .list
            .search(data.clone())
            .map_err(|e| format!("list {:?} failed: {e}", self.list.as_str()))?;
        let items: Vec<Rcvar> = match &*items {
            Variable::Null => Vec::new(),
            Variable::Array(items) => items.clone(),
            _ => return Err(format!("list {:?} is not a list", self.list.as_str())),
        };
        let mut order: Vec<usize> = (0..items.len()).collect();
        if self.descending {
            order.reverse();
        }
        let mut patched = false;
        for i in order {
            let Some(item) = items.get(i) else { continue };
            let element_data = with_element(data, item, i, depth)?;
            if let Some(pre) = &self.preconditions
                && !pre.evaluate(&element_data)?.holds
            {
                continue;
            }
            match &self.body {
                Body::Patch(p) => {
                    if let Outcome::Patched(next) = p
                        .apply(&object, &element_data, form)
                        .map_err(|e| format!("element {i}: {e}"))?
                    {
                        object = next;
                        patched = true;
                    }
                }
                Body::Nested(list) => {
                    for entry in list {
                        let (next, any) = entry.run(object, &element_data, form, depth + 1)?;
                        object = next;
                        patched |= any;
                    }
                }
            }
        }
        Ok((object, patched))
    }
}

/// Evaluate one `{{ }}` expression; `strict`: a null result is an error.
fn evaluate(expr: &str, data: &Rcvar, strict: bool) -> std::result::Result<Value, String> {
    let compiled = super::functions::compile(expr)
        .map_err(|e| format!("{{{{{expr}}}}} is not valid JMESPath: {e}"))?;
    let found = compiled
        .search(data.clone())
        .map_err(|e| format!("{{{{{expr}}}}} failed: {e}"))?;
    let value = serde_json::to_value(&*found).map_err(|e| format!("{{{{{expr}}}}}: {e}"))?;
    if strict && value.is_null() {
        return Err(format!(
            "{{{{{expr}}}}} has no value for this object (give a default: {{{{ {expr} || '' }}}})"
        ));
    }
    Ok(value)
}

/// A value as text in a string.
fn as_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// A piece of a string with variables.
#[derive(Debug)]
enum Node {
    Text(String),
    /// `{{ … }}`, whose expression may itself hold variables.
    Var(Vec<Node>),
}

/// Split a string into text and variables, nested ones inside their outer variable. A
/// `{{` never closed and a `}}` never opened are text.
fn parse_template(text: &str) -> std::result::Result<Vec<Node>, String> {
    // The open variables' pieces, outermost first, above the top level.
    let mut stack: Vec<Vec<Node>> = vec![Vec::new()];
    let mut rest = text;
    let push_text = |stack: &mut Vec<Vec<Node>>, t: &str| {
        if let Some(top) = stack.last_mut() {
            match top.last_mut() {
                Some(Node::Text(s)) => s.push_str(t),
                _ => top.push(Node::Text(t.to_owned())),
            }
        }
    };
    while !rest.is_empty() {
        let open = rest.find("{{");
        let close = rest.find("}}");
        match (open, close) {
            (Some(o), c) if c.is_none_or(|c| o < c) => {
                push_text(&mut stack, &rest[..o]);
                if stack.len() > MAX_ROUNDS {
                    return Err(format!(
                        "{text:?}: variables nest deeper than {MAX_ROUNDS} levels"
                    ));
                }
                stack.push(Vec::new());
                rest = &rest[o + 2..];
            }
            (_, Some(c)) => {
                push_text(&mut stack, &rest[..c]);
                if stack.len() > 1 {
                    let inner = stack.pop().unwrap_or_default();
                    if let Some(top) = stack.last_mut() {
                        top.push(Node::Var(inner));
                    }
                } else {
                    push_text(&mut stack, "}}");
                }
                rest = &rest[c + 2..];
            }
            _ => {
                push_text(&mut stack, rest);
                rest = "";
            }
        }
    }
    // Variables never closed are text again.
    while stack.len() > 1 {
        let inner = stack.pop().unwrap_or_default();
        push_text(&mut stack, "{{");
        for node in inner {
            match node {
                Node::Text(t) => push_text(&mut stack, &t),
                var @ Node::Var(_) => {
                    if let Some(top) = stack.last_mut() {
                        top.push(var);
                    }
                }
            }
        }
    }
    Ok(stack.pop().unwrap_or_default())
}

/// The text of pieces, their variables evaluated (each once: a value's own text is
/// never read for variables).
fn render(nodes: &[Node], data: &Rcvar, strict: bool) -> std::result::Result<String, String> {
    let mut out = String::new();
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Var(inner) => {
                let expr = render(inner, data, strict)?;
                match evaluate(expr.trim(), data, strict)? {
                    Value::Null => {}
                    v => out.push_str(&as_text(v)),
                }
            }
        }
    }
    Ok(out)
}

/// Fill in the variables of a string, innermost first; a string that is exactly one
/// variable takes its value with its type. A variable without a value is an error.
pub(super) fn fill(text: &str, data: &Rcvar) -> std::result::Result<Value, String> {
    fill_in(text, data, true)
}

/// [`fill`], where a variable without a value is `null` (alone) or nothing (in text):
/// what conditions compare.
pub(super) fn fill_lenient(text: &str, data: &Rcvar) -> std::result::Result<Value, String> {
    fill_in(text, data, false)
}

fn fill_in(text: &str, data: &Rcvar, strict: bool) -> std::result::Result<Value, String> {
    if !text.contains("{{") {
        return Ok(Value::String(text.to_owned()));
    }
    let nodes = parse_template(text)?;
    let mut vars = nodes.iter().filter(|n| matches!(n, Node::Var(_)));
    let only = vars.next().filter(|_| vars.next().is_none());
    if let Some(Node::Var(inner)) = only
        && nodes
            .iter()
            .all(|n| matches!(n, Node::Var(_)) || matches!(n, Node::Text(t) if t.trim().is_empty()))
    {
        let expr = render(inner, data, strict)?;
        return evaluate(expr.trim(), data, strict);
    }
    render(&nodes, data, strict).map(Value::String)
}

/// [`fill`] for text the result is put back into (a JSON patch before it is read, a
/// generated object's name).
pub(super) fn fill_text(text: &str, data: &Rcvar) -> std::result::Result<String, String> {
    fill(text, data).map(as_text)
}

/// Whether some string or key of `value` holds a `{{`.
pub(super) fn has_variables(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("{{"),
        Value::Array(items) => items.iter().any(has_variables),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains("{{") || has_variables(v)),
        _ => false,
    }
}

/// Fill in the variables of every string and key of `value`.
pub(super) fn substitute(
    value: &Value,
    data: &Rcvar,
    depth: usize,
) -> std::result::Result<Value, String> {
    if depth > MAX_NESTING {
        return Err(format!("the patch nests deeper than {MAX_NESTING} levels"));
    }
    Ok(match value {
        Value::String(s) => fill(s, data)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute(v, data, depth + 1))
                .collect::<std::result::Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = if k.contains("{{") {
                    fill_text(k, data)?
                } else {
                    k.clone()
                };
                out.insert(key, substitute(v, data, depth + 1)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jmespath::ToJmespath;

    fn data() -> Rcvar {
        json!({"request": {"object": {"metadata": {"name": "web", "labels": {"app": "cart"}},
            "spec": {"replicas": 3, "containers": [{"name": "a"}, {"name": "b"}]}}},
            "element": {"name": "a.old.com"}})
        .to_jmespath()
        .unwrap()
    }

    #[test]
    fn fill_keeps_types_and_nests() {
        let d = data();
        assert_eq!(
            fill("{{ request.object.spec.replicas }}", &d).unwrap(),
            json!(3)
        );
        assert_eq!(
            fill(
                "n-{{request.object.metadata.name}}-{{ request.object.spec.replicas }}",
                &d
            )
            .unwrap(),
            json!("n-web-3")
        );
        assert_eq!(
            fill(
                "{{ replace_all('{{element.name}}', '.old.com', '.new.com') }}",
                &d
            )
            .unwrap(),
            json!("a.new.com")
        );
        assert_eq!(fill("plain", &d).unwrap(), json!("plain"));
        let err = fill("{{ request.object.metadata.nothing }}", &d).unwrap_err();
        assert!(err.contains("has no value"), "{err}");
        assert_eq!(
            fill("{{ request.object.metadata.nothing || 'x' }}", &d).unwrap(),
            json!("x")
        );
        // A lone `}}` or `{{` is text.
        assert_eq!(fill("a }} b {{", &d).unwrap(), json!("a }} b {{"));
        assert_eq!(
            fill("x {{ {{request.object.metadata.name}}", &d).unwrap(),
            json!("x {{ web")
        );
        // A value's text is not read for variables again.
        let tricky = json!({"request": {"object": {"a": "{{ request.object.b }}", "b": "secret"}}})
            .to_jmespath()
            .unwrap();
        assert_eq!(
            fill("v={{ request.object.a }}", &tricky).unwrap(),
            json!("v={{ request.object.b }}")
        );
    }

    proptest::proptest! {
        /// Any text of braces, names and quotes: filling in never panics, and text
        /// without `{{` is kept as it is.
        #[test]
        fn fill_never_panics(text in "[{}a-z. '|()]{0,40}") {
            let d = data();
            let filled = fill(&text, &d);
            if !text.contains("{{") {
                proptest::prop_assert_eq!(filled.unwrap(), json!(text));
            }
        }
    }

    #[test]
    fn substitute_fills_keys_and_values() {
        let d = data();
        let out = substitute(
            &json!({"metadata": {"labels": {"{{request.object.metadata.labels.app}}": "{{request.object.metadata.name}}"}}}),
            &d,
            0,
        )
        .unwrap();
        assert_eq!(out, json!({"metadata": {"labels": {"cart": "web"}}}));
    }

    #[test]
    fn parse_refuses_what_it_cannot_do() {
        let err = Mutate::parse(
            &json!({"targets": [{"apiVersion": "v1", "kind": "Secret"}], "patchStrategicMerge": {"metadata": {}}}),
            "m",
            "",
        )
        .unwrap_err();
        assert!(err.to_string().contains("m.targets"), "{err}");
        let err = Mutate::parse(&json!({}), "m", "").unwrap_err();
        assert!(
            err.to_string().contains("give patchStrategicMerge"),
            "{err}"
        );
        let err = Mutate::parse(
            &json!({"foreach": [{"list": "request.object.spec.containers", "order": "Sideways",
                "patchStrategicMerge": {}}]}),
            "m",
            "",
        )
        .unwrap_err();
        assert!(err.to_string().contains("m.foreach[0].order"), "{err}");
        assert!(
            !Mutate::parse(
                &json!({"patchesJson6902": "- op: add\n  path: /metadata/labels/a\n  value: b\n"}),
                "m",
                ""
            )
            .unwrap()
            .autogen()
        );
    }
}
