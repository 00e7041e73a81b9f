//! Property tests for the parts of the GitOps deployer that read user input: layout
//! templates and the file names given to objects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use idp_core::{ManifestSet, Object};
use idp_deploy::gitops::{Layout, manifest_files};
use proptest::prelude::*;

proptest! {
    /// Any template either is refused with a message or renders a safe relative folder.
    #[test]
    fn layout_never_escapes_the_repository(template in "[a-z{}/.\\\\ ]{0,40}(\\{env\\}|\\{component\\}){0,2}[a-z{}/.]{0,10}") {
        if let Ok(layout) = Layout::new(template.as_str()) {
            let folder = layout
                .folder(&"component:default/cart".parse().unwrap(), &"prod".parse().unwrap())
                .unwrap();
            prop_assert!(!folder.starts_with('/'));
            prop_assert!(folder.split('/').all(|p| !p.is_empty() && p != "." && p != ".."));
            prop_assert!(folder.contains("prod") && folder.contains("cart"));
        }
    }

    /// Every object gets its own file, named with safe characters only, whatever its
    /// kind, namespace and name.
    #[test]
    fn file_names_are_unique_and_safe(
        objects in prop::collection::vec(("[A-Za-z]{1,8}", prop::option::of("[a-z:_]{1,5}"), "[a-zA-Z0-9:._-]{1,12}"), 1..12)
    ) {
        let mut set = ManifestSet::new();
        let mut seen = std::collections::HashSet::new();
        for (kind, ns, name) in &objects {
            if !seen.insert((kind.clone(), ns.clone(), name.clone())) {
                continue;
            }
            let mut meta = serde_json::json!({"name": name});
            if let Some(ns) = ns {
                meta["namespace"] = ns.clone().into();
            }
            set.push(Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": kind, "metadata": meta})).unwrap());
        }
        match manifest_files(&set) {
            Ok(files) => {
                prop_assert_eq!(files.len(), set.len());
                for name in files.keys() {
                    prop_assert!(std::path::Path::new(name).extension().is_some_and(|e| e == "yaml"));
                    prop_assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)), "{}", name);
                }
            }
            // Only objects that differ in case or characters mapped to `_` may clash.
            Err(e) => prop_assert!(e.to_string().contains("same file"), "{}", e),
        }
    }
}
