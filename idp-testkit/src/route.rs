//! URL paths → what they address.

/// A parsed request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/version`
    Version,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`
    Resources { group: String, version: String },
    /// A resource or collection.
    Object(ObjectPath),
    /// `/openapi/v3`
    OpenApiRoot,
    /// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`
    OpenApi { group: String, version: String },
    /// Anything else (including `/openapi/v2`): 404.
    Unknown,
}

/// The resource part of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectPath {
    pub(crate) group: String,
    pub(crate) version: String,
    pub(crate) plural: String,
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) subresource: Option<String>,
    /// The legacy `/watch/` path prefix was used.
    pub(crate) watch_prefix: bool,
}

/// Parses a request path.
pub(crate) fn parse(path: &str) -> Route {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", g] => Route::Group((*g).to_owned()),
        ["openapi", "v3"] => Route::OpenApiRoot,
        ["openapi", "v3", "api", v] => Route::OpenApi {
            group: String::new(),
            version: (*v).to_owned(),
        },
        ["openapi", "v3", "apis", g, v] => Route::OpenApi {
            group: (*g).to_owned(),
            version: (*v).to_owned(),
        },
        ["api", v] => Route::Resources {
            group: String::new(),
            version: (*v).to_owned(),
        },
        ["apis", g, v] => Route::Resources {
            group: (*g).to_owned(),
            version: (*v).to_owned(),
        },
        ["api", v, rest @ ..] => object("", v, rest),
        ["apis", g, v, rest @ ..] => object(g, v, rest),
        _ => Route::Unknown,
    }
}

fn object(group: &str, version: &str, rest: &[&str]) -> Route {
    let (watch_prefix, rest) = match rest {
        ["watch", tail @ ..] => (true, tail),
        _ => (false, rest),
    };
    let mk = |ns: Option<&str>, plural: &str, name: Option<&str>, sub: Option<&str>| {
        Route::Object(ObjectPath {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
            namespace: ns.map(ToOwned::to_owned),
            name: name.map(ToOwned::to_owned),
            subresource: sub.map(ToOwned::to_owned),
            watch_prefix,
        })
    };
    match rest {
        // /namespaces/{name}[/status|finalize] addresses the Namespace object itself.
        ["namespaces"] => mk(None, "namespaces", None, None),
        ["namespaces", name] => mk(None, "namespaces", Some(name), None),
        ["namespaces", name, sub @ ("status" | "finalize")] => {
            mk(None, "namespaces", Some(name), Some(sub))
        }
        ["namespaces", ns, plural] => mk(Some(ns), plural, None, None),
        ["namespaces", ns, plural, name] => mk(Some(ns), plural, Some(name), None),
        ["namespaces", ns, plural, name, sub] => mk(Some(ns), plural, Some(name), Some(sub)),
        [plural] => mk(None, plural, None, None),
        [plural, name] => mk(None, plural, Some(name), None),
        [plural, name, sub] => mk(None, plural, Some(name), Some(sub)),
        _ => Route::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(path: &str) -> ObjectPath {
        match parse(path) {
            Route::Object(o) => o,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn discovery_paths() {
        assert_eq!(parse("/version"), Route::Version);
        assert_eq!(parse("/api"), Route::CoreVersions);
        assert_eq!(parse("/apis/"), Route::Groups);
        assert_eq!(
            parse("/apis/apps/v1"),
            Route::Resources {
                group: "apps".into(),
                version: "v1".into()
            }
        );
        assert_eq!(parse("/openapi/v2"), Route::Unknown);
    }

    #[test]
    fn object_paths() {
        let o = obj("/api/v1/namespaces/ns1/configmaps/a");
        assert_eq!(
            (o.namespace.as_deref(), o.plural.as_str(), o.name.as_deref()),
            (Some("ns1"), "configmaps", Some("a"))
        );
        let o = obj("/api/v1/namespaces/ns1");
        assert_eq!(
            (o.namespace, o.plural.as_str(), o.name.as_deref()),
            (None, "namespaces", Some("ns1"))
        );
        let o = obj("/api/v1/namespaces/ns1/status");
        assert_eq!(o.subresource.as_deref(), Some("status"));
        let o = obj("/apis/apps/v1/namespaces/x/deployments/web/status");
        assert_eq!(
            (o.group.as_str(), o.subresource.as_deref()),
            ("apps", Some("status"))
        );
        let o = obj("/apis/rbac.authorization.k8s.io/v1/clusterroles");
        assert_eq!((o.namespace, o.name), (None, None));
        let o = obj("/api/v1/watch/namespaces/x/pods");
        assert!(o.watch_prefix);
        assert_eq!(parse("/api/v1/a/b/c/d"), Route::Unknown);
    }
}
