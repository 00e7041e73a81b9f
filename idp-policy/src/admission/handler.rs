//! [`AdmissionHandler`]: answers AdmissionReviews with policies and mutations, with no
//! HTTP in sight.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use idp_core::model::{Enforcement, Operation as CoreOperation};
use idp_core::ports::Mutation;
use idp_core::{ErrorKind, Object, Policy, PolicyContext, Violation};
use serde_json::Value;

use super::patch::JsonPatch;
use super::review::{
    API_VERSION, AdmissionRequest, AdmissionResponse, AdmissionReview, KIND, Operation, Status,
};

/// Which question a review answers: the validating webhook's or the mutating webhook's.
///
/// ```
/// use idp_policy::admission::ReviewKind;
/// assert_eq!(ReviewKind::from_path("/validate"), Some(ReviewKind::Validate));
/// assert_eq!(ReviewKind::from_path("/mutate"), Some(ReviewKind::Mutate));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewKind {
    /// Check the object against the policies.
    Validate,
    /// Apply the mutations and answer with a JSON Patch.
    Mutate,
}

impl ReviewKind {
    /// The kind served at an HTTP path (`/validate`, `/mutate`).
    ///
    /// ```
    /// assert!(idp_policy::admission::ReviewKind::from_path("/other").is_none());
    /// ```
    pub fn from_path(path: &str) -> Option<Self> {
        match path.trim_end_matches('/') {
            "/validate" => Some(Self::Validate),
            "/mutate" => Some(Self::Mutate),
            _ => None,
        }
    }
}

/// The default largest review [`AdmissionHandler::handle`] reads: 8 MiB. The API server
/// limits a request body to 3 MiB, and a review of an UPDATE carries the object twice.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How many violations a denial message, and how many warnings a response, lists before
/// it says "and N more".
const DEFAULT_MAX_LISTED: usize = 20;

/// The audit annotation key holding the audit-only violations (the API server prefixes
/// it with the webhook's name).
pub const AUDIT_ANNOTATION: &str = "policy-violations";

/// Answers `admission.k8s.io/v1` reviews: validating ones with policies, mutating ones
/// with mutations. Transport-neutral: feed it a parsed [`AdmissionReview`] or the raw
/// request body; the `admission` feature adds an HTTP endpoint around it.
///
/// **Validating**: the object (`oldObject` for DELETE) is evaluated in a
/// [`PolicyContext`] made from the request (namespace, operation, user, dry run; the
/// environment, component and attributes come from [`AdmissionHandler::with_context`]),
/// so a [`PolicySet`](crate::PolicySet)'s match rules, namespaces and exceptions work as
/// they do before commit. Violations with enforcement `deny` refuse the request (403,
/// the message lists them); `warn` ones become warnings kubectl prints; `audit` ones go to
/// the log and to the audit annotation [`AUDIT_ANNOTATION`]. `CONNECT` is always allowed.
///
/// **Mutating**: the mutations run on a copy of the object and the response carries the
/// RFC 6902 difference (see [`JsonPatch`]), base64-encoded, `patchType: JSONPatch`; no
/// patch when nothing changed. `DELETE`, `CONNECT` and subresource requests (`status`,
/// `scale`, …) are allowed untouched.
///
/// A review that cannot be understood (bad JSON, no request, no object, too large) is
/// answered with `allowed: false` and a message saying what was wrong; nothing panics.
///
/// ```
/// use idp_policy::admission::{AdmissionHandler, AdmissionRequest, AdmissionReview, Operation};
/// use idp_policy::{PolicySet, pss::PodSecurity};
///
/// let handler = AdmissionHandler::new().with_policy(PolicySet::new().with_policy(PodSecurity::baseline()));
/// let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
///     "spec": {"hostNetwork": true, "containers": [{"name": "app", "image": "nginx:1.27"}]}});
/// let review = AdmissionReview::ask(AdmissionRequest::new("uid-1", Operation::Create, pod));
/// let answer = handler.validate(&review).response.unwrap();
/// assert_eq!(answer.uid, "uid-1");
/// assert!(!answer.allowed);
/// assert!(answer.status.unwrap().message.unwrap().contains("hostNetwork=true"));
/// ```
#[derive(Clone)]
pub struct AdmissionHandler {
    policies: Vec<Arc<dyn Policy>>,
    mutations: Vec<Arc<dyn Mutation>>,
    context: PolicyContext,
    max_body_bytes: usize,
    max_listed: usize,
}

impl fmt::Debug for AdmissionHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdmissionHandler")
            .field(
                "policies",
                &self
                    .policies
                    .iter()
                    .map(Policy::name)
                    .collect::<Vec<&str>>(),
            )
            .field(
                "mutations",
                &self
                    .mutations
                    .iter()
                    .map(|m| m.name())
                    .collect::<Vec<&str>>(),
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl Default for AdmissionHandler {
    fn default() -> Self {
        Self::new()
    }
}

impl AdmissionHandler {
    /// A handler with no policy and no mutation: it allows everything unchanged.
    ///
    /// ```
    /// let h = idp_policy::admission::AdmissionHandler::new();
    /// assert_eq!(h.max_body_bytes(), idp_policy::admission::DEFAULT_MAX_BODY_BYTES);
    /// ```
    pub fn new() -> Self {
        Self {
            policies: Vec::new(),
            mutations: Vec::new(),
            context: PolicyContext::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_listed: DEFAULT_MAX_LISTED,
        }
    }

    /// Add a policy (usually a whole [`PolicySet`](crate::PolicySet)).
    ///
    /// ```
    /// let h = idp_policy::admission::AdmissionHandler::new().with_policy(idp_policy::PolicySet::new());
    /// # let _ = h;
    /// ```
    pub fn with_policy(self, policy: impl Policy + 'static) -> Self {
        self.with_shared_policy(Arc::new(policy))
    }

    /// Add a shared policy.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let p: Arc<dyn idp_core::Policy> = Arc::new(idp_policy::pss::PodSecurity::restricted());
    /// let h = idp_policy::admission::AdmissionHandler::new().with_shared_policy(p);
    /// # let _ = h;
    /// ```
    pub fn with_shared_policy(mut self, policy: Arc<dyn Policy>) -> Self {
        self.policies.push(policy);
        self
    }

    /// Add a mutation (run in the order added).
    ///
    /// ```
    /// let h = idp_policy::admission::AdmissionHandler::new()
    ///     .with_mutation(idp_policy::mutate::StandardLabels::default());
    /// # let _ = h;
    /// ```
    pub fn with_mutation(self, mutation: impl Mutation + 'static) -> Self {
        self.with_shared_mutation(Arc::new(mutation))
    }

    /// Add a shared mutation.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let m: Arc<dyn idp_core::ports::Mutation> = Arc::new(idp_policy::mutate::DefaultResources::default());
    /// let h = idp_policy::admission::AdmissionHandler::new().with_shared_mutation(m);
    /// # let _ = h;
    /// ```
    pub fn with_shared_mutation(mut self, mutation: Arc<dyn Mutation>) -> Self {
        self.mutations.push(mutation);
        self
    }

    /// The context every request starts from: set the environment (the cluster's), the
    /// component and attributes here. Namespace, operation, user, dry run and "now" are
    /// taken from each request.
    ///
    /// ```
    /// use idp_core::PolicyContext;
    /// let h = idp_policy::admission::AdmissionHandler::new()
    ///     .with_context(PolicyContext::new().with_environment("prod".parse().unwrap()));
    /// # let _ = h;
    /// ```
    pub fn with_context(mut self, context: PolicyContext) -> Self {
        self.context = context;
        self
    }

    /// Refuse request bodies larger than `bytes` in [`AdmissionHandler::handle`] (and in
    /// the HTTP endpoint).
    ///
    /// ```
    /// let h = idp_policy::admission::AdmissionHandler::new().with_max_body_bytes(1024);
    /// assert_eq!(h.max_body_bytes(), 1024);
    /// ```
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// The body size limit.
    ///
    /// ```
    /// assert!(idp_policy::admission::AdmissionHandler::new().max_body_bytes() > 3 * 1024 * 1024);
    /// ```
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The [`PolicyContext`] a request is checked in.
    ///
    /// ```
    /// use idp_policy::admission::{AdmissionHandler, AdmissionRequest, Operation};
    /// let req = AdmissionRequest::new("1", Operation::Update, serde_json::json!({})).with_namespace("shop").with_user("jane");
    /// let ctx = AdmissionHandler::new().context_for(&req);
    /// assert_eq!(ctx.namespace.as_deref(), Some("shop"));
    /// assert_eq!(ctx.operation, idp_core::model::Operation::Update);
    /// assert_eq!(ctx.user.as_deref(), Some("jane"));
    /// ```
    pub fn context_for(&self, request: &AdmissionRequest) -> PolicyContext {
        let mut ctx = self.context.clone();
        ctx.namespace.clone_from(&request.namespace);
        ctx.operation = match request.operation {
            Operation::Create => CoreOperation::Create,
            Operation::Update => CoreOperation::Update,
            Operation::Delete => CoreOperation::Delete,
            Operation::Connect => CoreOperation::Apply,
        };
        ctx.user.clone_from(&request.user_info.username);
        ctx.dry_run = request.dry_run.unwrap_or(false);
        ctx.now = jiff::Timestamp::now();
        ctx
    }

    /// Answer a raw request body (JSON of an [`AdmissionReview`]); never fails: a body
    /// that is too large or malformed gets a refusal saying so.
    ///
    /// ```
    /// use idp_policy::admission::{AdmissionHandler, ReviewKind};
    /// let answer = AdmissionHandler::new().handle(ReviewKind::Validate, b"{not json");
    /// let response = answer.response.unwrap();
    /// assert!(!response.allowed);
    /// assert!(response.status.unwrap().message.unwrap().contains("not a valid AdmissionReview"));
    /// ```
    pub fn handle(&self, kind: ReviewKind, body: &[u8]) -> AdmissionReview {
        if body.len() > self.max_body_bytes {
            return refusal(
                String::new(),
                Status::failure(
                    413,
                    "RequestEntityTooLarge",
                    format!(
                        "the AdmissionReview is {} bytes, more than the {} bytes this webhook reads",
                        body.len(),
                        self.max_body_bytes
                    ),
                ),
            );
        }
        match serde_json::from_slice::<AdmissionReview>(body) {
            Ok(review) => match kind {
                ReviewKind::Validate => self.validate(&review),
                ReviewKind::Mutate => self.mutate(&review),
            },
            Err(err) => {
                // The uid still matters: the API server ignores an answer to another uid.
                let uid = serde_json::from_slice::<Value>(body)
                    .ok()
                    .and_then(|v| v.pointer("/request/uid")?.as_str().map(str::to_owned))
                    .unwrap_or_default();
                refusal(
                    uid,
                    Status::bad_request(format!(
                        "the request body is not a valid AdmissionReview: {err}; send admission.k8s.io/v1 \
                         AdmissionReview JSON with a request"
                    )),
                )
            }
        }
    }

    /// Answer a validating review.
    ///
    /// ```
    /// use idp_policy::admission::{AdmissionHandler, AdmissionReview};
    /// let answer = AdmissionHandler::new().validate(&AdmissionReview::default());
    /// assert!(!answer.response.unwrap().allowed, "a review without a request is refused");
    /// ```
    pub fn validate(&self, review: &AdmissionReview) -> AdmissionReview {
        Self::answer(review, |req| self.validate_request(req))
    }

    /// Answer a mutating review.
    ///
    /// ```
    /// use idp_policy::admission::{AdmissionHandler, AdmissionRequest, AdmissionReview, Operation};
    /// let h = AdmissionHandler::new().with_mutation(idp_policy::mutate::StandardLabels::default());
    /// let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    /// let answer = h.mutate(&AdmissionReview::ask(AdmissionRequest::new("1", Operation::Create, cm)));
    /// assert!(answer.response.unwrap().allowed);
    /// ```
    pub fn mutate(&self, review: &AdmissionReview) -> AdmissionReview {
        Self::answer(review, |req| self.mutate_request(req))
    }

    fn answer(
        review: &AdmissionReview,
        respond: impl FnOnce(&AdmissionRequest) -> AdmissionResponse,
    ) -> AdmissionReview {
        let uid = review
            .request
            .as_ref()
            .map(|r| r.uid.clone())
            .unwrap_or_default();
        if !review.api_version.is_empty() && !is_supported(&review.api_version) {
            return refusal(
                uid,
                Status::bad_request(format!(
                    "apiVersion \"{}\" is not supported; this webhook speaks {API_VERSION} \
                     (set admissionReviewVersions: [\"v1\"] in the webhook configuration)",
                    review.api_version
                )),
            );
        }
        if !review.kind.is_empty() && review.kind != KIND {
            return refusal(
                uid,
                Status::bad_request(format!(
                    "kind \"{}\" is not an AdmissionReview",
                    review.kind
                )),
            );
        }
        let Some(request) = &review.request else {
            return refusal(
                uid,
                Status::bad_request("the AdmissionReview has no request"),
            );
        };
        let mut answer = AdmissionReview::answer(respond(request));
        if is_supported(&review.api_version) {
            answer.api_version.clone_from(&review.api_version);
        }
        answer
    }

    /// Validate one request.
    ///
    /// ```
    /// use idp_policy::admission::{AdmissionHandler, AdmissionRequest, Operation};
    /// let req = AdmissionRequest::new("1", Operation::Connect, serde_json::Value::Null);
    /// assert!(AdmissionHandler::new().validate_request(&req).allowed);
    /// ```
    pub fn validate_request(&self, request: &AdmissionRequest) -> AdmissionResponse {
        let span = request_span("admission.validate", request);
        let _guard = span.enter();
        if request.operation == Operation::Connect {
            return AdmissionResponse::allow(request.uid.as_str());
        }
        let object = match request_object(request) {
            Ok(object) => object,
            Err(status) => return AdmissionResponse::deny(request.uid.as_str(), status),
        };
        let ctx = self.context_for(request);
        let violations: Vec<Violation> = self
            .policies
            .iter()
            .flat_map(|p| p.evaluate(&object, &ctx))
            .collect();
        let mut denials = Vec::new();
        let mut warnings = Vec::new();
        let mut audits = Vec::new();
        for v in &violations {
            match v.enforcement {
                Enforcement::Deny => denials.push(v),
                Enforcement::Warn => warnings.push(v),
                Enforcement::Audit => audits.push(v),
            }
        }
        let mut response = if denials.is_empty() {
            AdmissionResponse::allow(request.uid.as_str())
        } else {
            tracing::info!(
                denials = denials.len(),
                "admission refused by policy violations"
            );
            AdmissionResponse::deny(
                request.uid.as_str(),
                Status::forbidden(self.denial_message(&object, &denials)),
            )
        };
        for v in warnings.iter().take(self.max_listed) {
            response.warnings.push(describe(v));
        }
        if warnings.len() > self.max_listed {
            response.warnings.push(format!(
                "… and {} more policy warnings",
                warnings.len() - self.max_listed
            ));
        }
        if !audits.is_empty() {
            for v in &audits {
                tracing::info!(policy = %v.policy, rule = %v.rule, path = ?v.path, message = %v.message, "audit-only policy violation");
            }
            let listed: Vec<String> = audits
                .iter()
                .take(self.max_listed)
                .map(|v| describe(v))
                .collect();
            let value = serde_json::to_string(&listed).unwrap_or_default();
            response.audit_annotations = BTreeMap::from([(AUDIT_ANNOTATION.to_owned(), value)]);
        }
        response
    }

    /// Mutate one request.
    ///
    /// ```
    /// use idp_policy::admission::{AdmissionHandler, AdmissionRequest, Operation};
    /// let h = AdmissionHandler::new().with_mutation(idp_policy::mutate::DefaultResources::default());
    /// let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
    ///     "spec": {"containers": [{"name": "app"}]}});
    /// let response = h.mutate_request(&AdmissionRequest::new("1", Operation::Create, pod));
    /// assert_eq!(response.patch_type.as_deref(), Some("JSONPatch"));
    /// ```
    pub fn mutate_request(&self, request: &AdmissionRequest) -> AdmissionResponse {
        let span = request_span("admission.mutate", request);
        let _guard = span.enter();
        let untouched = matches!(request.operation, Operation::Delete | Operation::Connect)
            || request
                .sub_resource
                .as_deref()
                .is_some_and(|s| !s.is_empty());
        if untouched {
            return AdmissionResponse::allow(request.uid.as_str());
        }
        let mut object = match request_object(request) {
            Ok(object) => object,
            Err(status) => return AdmissionResponse::deny(request.uid.as_str(), status),
        };
        if self.mutations.is_empty() {
            return AdmissionResponse::allow(request.uid.as_str());
        }
        let ctx = self.context_for(request);
        for m in &self.mutations {
            if let Err(err) = m.mutate(&mut object, &ctx) {
                let (code, reason) = match err.kind() {
                    ErrorKind::InvalidInput => (400, "BadRequest"),
                    ErrorKind::Denied => (403, "Forbidden"),
                    _ => (500, "InternalError"),
                };
                return AdmissionResponse::deny(
                    request.uid.as_str(),
                    Status::failure(code, reason, format!("mutation {} failed: {err}", m.name())),
                );
            }
        }
        let patch = JsonPatch::diff(&request.object, &object.into_value());
        tracing::debug!(operations = patch.len(), "mutation patch");
        let mut response = AdmissionResponse::allow(request.uid.as_str());
        response.set_patch(&patch);
        response
    }

    fn denial_message(&self, object: &Object, denials: &[&Violation]) -> String {
        let mut msg = format!(
            "{} {} was refused by {} policy violation{}: ",
            object.kind(),
            display_name(object),
            denials.len(),
            if denials.len() == 1 { "" } else { "s" }
        );
        for (i, v) in denials.iter().take(self.max_listed).enumerate() {
            if i > 0 {
                msg.push_str("; ");
            }
            msg.push_str(&describe(v));
        }
        if denials.len() > self.max_listed {
            let _ = write!(msg, "; … and {} more", denials.len() - self.max_listed);
        }
        msg
    }
}

fn is_supported(api_version: &str) -> bool {
    // v1beta1 reviews have the same shape for everything read and written here.
    api_version == API_VERSION || api_version == "admission.k8s.io/v1beta1"
}

fn refusal(uid: String, status: Status) -> AdmissionReview {
    AdmissionReview::answer(AdmissionResponse::deny(uid, status))
}

fn request_span(name: &'static str, request: &AdmissionRequest) -> tracing::Span {
    tracing::info_span!(
        "admission",
        op = name,
        uid = %request.uid,
        kind = %request.kind.kind,
        namespace = request.namespace.as_deref().unwrap_or(""),
        name = request.name.as_deref().unwrap_or(""),
        operation = ?request.operation,
    )
}

/// The object a request is about: `oldObject` for DELETE, `object` otherwise.
fn request_object(request: &AdmissionRequest) -> Result<Object, Status> {
    let (field, value) = if request.operation == Operation::Delete {
        ("request.oldObject", &request.old_object)
    } else {
        ("request.object", &request.object)
    };
    if value.is_null() {
        return Err(Status::bad_request(format!(
            "{field} is missing for operation {:?}; the webhook needs the object to check it",
            request.operation
        )));
    }
    Object::from_value(value.clone()).map_err(|e| {
        Status::bad_request(format!(
            "{field} is not a Kubernetes object: {}",
            e.message()
        ))
    })
}

fn display_name(object: &Object) -> String {
    let name = if object.name().is_empty() {
        object.generate_name().unwrap_or("")
    } else {
        object.name()
    };
    match object.namespace() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_owned(),
    }
}

/// `policy/rule: message (at path)`.
fn describe(v: &Violation) -> String {
    match &v.path {
        Some(path) => format!("{}/{}: {} (at {path})", v.policy, v.rule, v.message),
        None => format!("{}/{}: {}", v.policy, v.rule, v.message),
    }
}
