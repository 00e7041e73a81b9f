//! OpenTelemetry injection.

use std::fmt::Write as _;

use idp_core::ports::Mutation;
use idp_core::{Object, PolicyContext, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{ATTR_OWNER, insert_missing};
use crate::podspec::{PodSpec, pod_spec_mut};

fn default_annotation() -> String {
    "idp.dev/otel-inject".to_owned()
}

fn default_team_attribute() -> String {
    "team.name".to_owned()
}

fn default_sidecar_name() -> String {
    "otel-collector".to_owned()
}

fn default_sidecar_image() -> String {
    "otel/opentelemetry-collector:0.116.0".to_owned()
}

fn default_local_endpoint() -> String {
    "http://localhost:4317".to_owned()
}

fn yes() -> bool {
    true
}

/// An OpenTelemetry Collector sidecar added next to the application containers.
///
/// The sidecar gets `OTEL_EXPORTER_OTLP_ENDPOINT` set to the injection's `endpoint`
/// (where it forwards to), the applications export to [`CollectorSidecar::local_endpoint`].
/// It is added as a native sidecar (an init container with `restartPolicy: Always`) by
/// default, so Jobs still complete; it carries a restricted security context, resources
/// and probes so it passes this crate's own policies.
///
/// ```
/// let s = idp_policy::mutate::CollectorSidecar::default();
/// assert_eq!(s.name, "otel-collector");
/// assert!(s.native);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectorSidecar {
    /// Container name (default `otel-collector`).
    #[serde(default = "default_sidecar_name")]
    pub name: String,
    /// Collector image (default a pinned `otel/opentelemetry-collector`).
    #[serde(default = "default_sidecar_image")]
    pub image: String,
    /// Extra arguments (e.g. `--config=/conf/collector.yaml`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Where the applications send telemetry (default `http://localhost:4317`).
    #[serde(default = "default_local_endpoint")]
    pub local_endpoint: String,
    /// Add as a native sidecar init container (default true) rather than a container.
    #[serde(default = "yes")]
    pub native: bool,
}

impl Default for CollectorSidecar {
    fn default() -> Self {
        Self {
            name: default_sidecar_name(),
            image: default_sidecar_image(),
            args: Vec::new(),
            local_endpoint: default_local_endpoint(),
            native: true,
        }
    }
}

impl CollectorSidecar {
    fn container(&self, upstream: &str) -> Value {
        let mut c = json!({
            "name": self.name,
            "image": self.image,
            "env": [{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": upstream}],
            "ports": [
                {"name": "otlp-grpc", "containerPort": 4317},
                {"name": "otlp-http", "containerPort": 4318}
            ],
            "resources": {
                "requests": {"cpu": "50m", "memory": "64Mi"},
                "limits": {"cpu": "200m", "memory": "256Mi"}
            },
            "livenessProbe": {"httpGet": {"path": "/", "port": 13133}},
            "readinessProbe": {"httpGet": {"path": "/", "port": 13133}},
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "runAsNonRoot": true,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"}
            }
        });
        if let Some(map) = c.as_object_mut() {
            if !self.args.is_empty() {
                map.insert("args".to_owned(), json!(self.args));
            }
            if self.native {
                map.insert("restartPolicy".to_owned(), json!("Always"));
            }
        }
        c
    }
}

/// Inject the OpenTelemetry SDK environment into every application container:
/// `OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_RESOURCE_ATTRIBUTES`
/// (`service.name`, `service.namespace`, `deployment.environment.name` and the owning
/// team), optionally with a [`CollectorSidecar`].
///
/// Variables a container already sets are left alone, so a second run changes nothing
/// and a developer's own value wins. The service name is the object's
/// `app.kubernetes.io/name` label, else the component's name, else the object's name;
/// the team is the `idp.dev/owner` label, else the context attribute
/// [`ATTR_OWNER`](super::ATTR_OWNER). Opt out per workload with the annotation
/// `idp.dev/otel-inject: "false"` on the object or its pod template.
///
/// ```
/// use idp_core::{Object, PolicyContext, ports::Mutation};
/// use idp_policy::mutate::OtelInjection;
/// let mut d = Object::from_value(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
///     "metadata": {"name": "cart", "namespace": "shop", "labels": {"idp.dev/owner": "payments"}},
///     "spec": {"template": {"spec": {"containers": [{"name": "app"}]}}}})).unwrap();
/// let ctx = PolicyContext::new().with_environment("prod".parse().unwrap());
/// OtelInjection::new("http://collector:4317").mutate(&mut d, &ctx).unwrap();
/// let env = &d.as_map()["spec"]["template"]["spec"]["containers"][0]["env"];
/// assert_eq!(env[0]["value"], "cart");
/// assert_eq!(env[2]["value"], "service.name=cart,service.namespace=shop,deployment.environment.name=prod,team.name=payments");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtelInjection {
    /// The OTLP endpoint (the collector's address).
    pub endpoint: String,
    /// Add a collector sidecar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar: Option<CollectorSidecar>,
    /// The opt-out annotation (default `idp.dev/otel-inject`; value `"false"` opts out).
    #[serde(default = "default_annotation")]
    pub opt_out_annotation: String,
    /// The resource attribute naming the owning team (default `team.name`).
    #[serde(default = "default_team_attribute")]
    pub team_attribute: String,
}

impl OtelInjection {
    /// Inject with this endpoint and no sidecar.
    ///
    /// ```
    /// assert!(idp_policy::mutate::OtelInjection::new("http://c:4317").sidecar.is_none());
    /// ```
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            sidecar: None,
            opt_out_annotation: default_annotation(),
            team_attribute: default_team_attribute(),
        }
    }

    /// Also add a collector sidecar.
    ///
    /// ```
    /// use idp_policy::mutate::{CollectorSidecar, OtelInjection};
    /// assert!(OtelInjection::new("http://c:4317").with_sidecar(CollectorSidecar::default()).sidecar.is_some());
    /// ```
    pub fn with_sidecar(mut self, sidecar: CollectorSidecar) -> Self {
        self.sidecar = Some(sidecar);
        self
    }

    fn opted_out(&self, object: &Object) -> bool {
        let off = |v: Option<&str>| v.is_some_and(|v| v.eq_ignore_ascii_case("false"));
        off(object
            .annotations()
            .get(&self.opt_out_annotation)
            .map(String::as_str))
            || PodSpec::of(object).is_some_and(|p| off(p.annotation(&self.opt_out_annotation)))
    }
}

/// Percent-encode the characters the `OTEL_RESOURCE_ATTRIBUTES` (W3C baggage) format
/// reserves.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            ',' | '=' | '%' | ';' | '"' | '\\' => {
                let mut buf = [0u8; 4];
                for b in ch.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "%{b:02X}");
                }
            }
            c if c.is_whitespace() || c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "%{b:02X}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn label<'a>(object: &'a Object, pod: Option<&PodSpec<'a>>, key: &str) -> Option<String> {
    object.labels().get(key).cloned().or_else(|| {
        pod.and_then(PodSpec::metadata)
            .and_then(|m| m.get("labels"))
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
}

impl Mutation for OtelInjection {
    fn name(&self) -> &str {
        "otel-injection"
    }

    fn mutate(&self, object: &mut Object, ctx: &PolicyContext) -> Result<bool> {
        if PodSpec::of(object).is_none() || self.opted_out(object) {
            return Ok(false);
        }
        let pod = PodSpec::of(object);
        let service = label(object, pod.as_ref(), "app.kubernetes.io/name")
            .or_else(|| ctx.component.as_ref().map(|c| c.name().to_owned()))
            .unwrap_or_else(|| object.name().to_owned());
        let namespace = object
            .namespace()
            .map(str::to_owned)
            .or_else(|| ctx.namespace.clone());
        let environment = ctx
            .environment
            .as_ref()
            .map(|e| e.as_str().to_owned())
            .or_else(|| label(object, pod.as_ref(), "idp.dev/environment"));
        let team = label(object, pod.as_ref(), "idp.dev/owner")
            .or_else(|| ctx.attributes.get(ATTR_OWNER).cloned());
        let mut attributes = vec![format!("service.name={}", encode(&service))];
        for (key, value) in [
            ("service.namespace", &namespace),
            ("deployment.environment.name", &environment),
            (self.team_attribute.as_str(), &team),
        ] {
            if let Some(v) = value {
                attributes.push(format!("{key}={}", encode(v)));
            }
        }
        let app_endpoint = self
            .sidecar
            .as_ref()
            .map_or(self.endpoint.as_str(), |s| s.local_endpoint.as_str())
            .to_owned();
        let vars = [
            ("OTEL_SERVICE_NAME", service),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", app_endpoint),
            ("OTEL_RESOURCE_ATTRIBUTES", attributes.join(",")),
        ];
        let sidecar_name = self.sidecar.as_ref().map(|s| s.name.as_str());
        let Some(spec) = pod_spec_mut(object) else {
            return Ok(false);
        };
        let mut changed = false;
        if let Some(containers) = spec.get_mut("containers").and_then(Value::as_array_mut) {
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                if sidecar_name.is_some_and(|s| c.get("name").and_then(Value::as_str) == Some(s)) {
                    continue;
                }
                changed |= add_env(c, &vars);
            }
        }
        if let Some(sidecar) = &self.sidecar {
            changed |= add_sidecar(spec, sidecar, &self.endpoint);
        }
        Ok(changed)
    }
}

fn add_env(container: &mut Map<String, Value>, vars: &[(&str, String)]) -> bool {
    let env = container
        .entry("env")
        .or_insert_with(|| Value::Array(Vec::new()));
    if env.is_null() {
        *env = Value::Array(Vec::new());
    }
    let Some(env) = env.as_array_mut() else {
        return false;
    };
    let mut changed = false;
    for (name, value) in vars {
        let present = env
            .iter()
            .any(|e| e.get("name").and_then(Value::as_str) == Some(name));
        if !present {
            env.push(json!({"name": name, "value": value}));
            changed = true;
        }
    }
    changed
}

fn add_sidecar(spec: &mut Map<String, Value>, sidecar: &CollectorSidecar, upstream: &str) -> bool {
    let has = |list: Option<&Value>| {
        list.and_then(Value::as_array).is_some_and(|l| {
            l.iter()
                .any(|c| c.get("name").and_then(Value::as_str) == Some(sidecar.name.as_str()))
        })
    };
    if has(spec.get("containers")) || has(spec.get("initContainers")) {
        return false;
    }
    let field = if sidecar.native {
        "initContainers"
    } else {
        "containers"
    };
    if insert_missing(spec, field, Value::Array(Vec::new())) {
        // created the list
    }
    match spec.get_mut(field) {
        Some(Value::Array(list)) => {
            list.push(sidecar.container(upstream));
            true
        }
        Some(v @ Value::Null) => {
            *v = Value::Array(vec![sidecar.container(upstream)]);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn encodes_reserved_characters() {
        assert_eq!(encode("a,b=c d%"), "a%2Cb%3Dc%20d%25");
        assert_eq!(encode("plain-team"), "plain-team");
    }
}
