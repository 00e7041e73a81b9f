//! Readings of Kubernetes names the policy engines share (Gatekeeper, CEL, Kyverno).

use idp_core::manifest::Source;
use idp_core::model::Operation;

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// The admission operation a context's [`Operation`] is presented as (`Apply` is a
/// `CREATE`).
pub(crate) fn operation_name(op: Operation) -> &'static str {
    match op {
        Operation::Apply | Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
    }
}

/// `"<source>: "` to put before an error message, or nothing.
pub(crate) fn source_prefix(source: Option<&Source>) -> String {
    source.map_or_else(String::new, |s| format!("{s}: "))
}

/// The strings of a JSON list (other items skipped; nothing when it is not a list).
pub(crate) fn strings(value: Option<&serde_json::Value>) -> Vec<String> {
    value
        .and_then(serde_json::Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(serde_json::Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(split_api_version("apps/v1"), ("apps", "v1"));
        assert_eq!(split_api_version("v1"), ("", "v1"));
        assert_eq!(operation_name(Operation::Apply), "CREATE");
        assert_eq!(source_prefix(None), "");
    }
}
