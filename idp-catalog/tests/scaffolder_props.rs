//! Property tests for the scaffolder's parsers: arbitrary input never panics, and no
//! path the workspace accepts lies outside it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use idp_catalog::scaffolder::{Renderer, Template, Workspace, parse_entity_ref, parse_repo_url};
use proptest::prelude::*;
use serde_json::json;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn repo_urls_and_entity_refs_never_panic(s in "\\PC{0,60}") {
        let _ = parse_repo_url(&s);
        let _ = parse_entity_ref(&s, Some("group"), None);
        let _ = parse_entity_ref(&s, None, Some("ns"));
    }

    #[test]
    fn rendering_arbitrary_text_never_panics(
        s in "(\\PC|\\$\\{\\{|\\}\\}|\\{%|%\\}|[{}:,'\"é ]){0,80}"
    ) {
        let r = Renderer::new(10_000).unwrap();
        let ctx = json!({"values": {"name": "x", "list": [1, 2]}});
        let _ = r.render_str(&s, &ctx, "prop");
        let _ = r.render_value(&json!(s), &ctx, "prop");
        let _ = r.render_cookiecutter(&s, &json!({"name": "x"}), "prop");
    }

    #[test]
    fn text_without_markers_renders_unchanged(s in "[^{}$%#]{0,80}") {
        let r = Renderer::new(10_000).unwrap();
        prop_assert_eq!(r.render_str(&s, &json!({}), "prop").unwrap(), s);
    }

    #[test]
    fn accepted_workspace_paths_stay_inside(parts in proptest::collection::vec("(\\.\\.|\\.|/|[a-z]{1,3}|é)", 0..8)) {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path()).unwrap();
        let rel = parts.concat();
        if let Ok(path) = ws.resolve(&rel) {
            prop_assert!(path.starts_with(ws.root()), "{rel:?} -> {}", path.display());
        }
    }

    #[test]
    fn template_yaml_never_panics(s in "\\PC{0,200}") {
        let _ = Template::from_yaml(&s);
        let _ = Template::from_yaml(&format!(
            "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {{name: t}}\nspec:\n  type: x\n  steps: {s}\n"
        ));
    }
}
