//! Kubeconfig files pointing `kubectl` (or any client) at a fake cluster.

/// A kubeconfig YAML document for a plain-HTTP server at `url`, with a context named
/// `name` and the given default namespace.
///
/// ```
/// let yaml = idp_testkit::kubeconfig_yaml("http://127.0.0.1:6443", "fake", "default");
/// assert!(yaml.contains("server: http://127.0.0.1:6443"));
/// assert!(yaml.contains("current-context: fake"));
/// ```
pub fn kubeconfig_yaml(url: &str, name: &str, namespace: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: {url}
contexts:
- name: {name}
  context:
    cluster: {name}
    user: {name}
    namespace: {namespace}
current-context: {name}
users:
- name: {name}
  user: {{}}
preferences: {{}}
"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_as_kube_kubeconfig() {
        let yaml = super::kubeconfig_yaml("http://127.0.0.1:1234", "fake", "ns");
        let kc = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("fake"));
        let cluster = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("http://127.0.0.1:1234"));
    }
}
