//! Kubernetes admission: answer `admission.k8s.io/v1` `AdmissionReview`s with the same
//! policies and mutations that run before commit and in CI.
//!
//! Where to start:
//!
//! - [`AdmissionHandler`]: built from policies (usually one [`PolicySet`](crate::PolicySet))
//!   and mutations; [`validate`](AdmissionHandler::validate) answers a validating webhook
//!   (deny with a 403 message listing the enforced violations, warnings for `warn`,
//!   an audit annotation for `audit`), [`mutate`](AdmissionHandler::mutate) a mutating
//!   one (a base64 RFC 6902 [`JsonPatch`]). Transport-neutral: give it the request body
//!   with [`handle`](AdmissionHandler::handle) from any HTTP server.
//! - `AdmissionService` (feature `admission`): the handler as a tower `Service` serving
//!   `POST /validate` and `POST /mutate`, for hyper or axum.
//! - The wire types: [`AdmissionReview`], [`AdmissionRequest`], [`AdmissionResponse`].
//!
//! ```
//! use idp_policy::admission::{AdmissionHandler, AdmissionRequest, AdmissionReview, Operation, ReviewKind};
//! use idp_policy::{Action, PolicyOptions, PolicySet, guardrails, mutate::StandardLabels};
//!
//! let policies = PolicySet::new()
//!     .with_policy_options(guardrails::DisallowLatestTag::default(), PolicyOptions::new().action(Action::Warn));
//! let handler = AdmissionHandler::new().with_policy(policies).with_mutation(StandardLabels::default());
//!
//! let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
//!     "spec": {"containers": [{"name": "app", "image": "nginx:latest"}]}});
//! let body = serde_json::to_vec(&AdmissionReview::ask(AdmissionRequest::new("42", Operation::Create, pod))).unwrap();
//!
//! let answer = handler.handle(ReviewKind::Validate, &body).response.unwrap();
//! assert!(answer.allowed);
//! assert!(answer.warnings[0].starts_with("disallow-latest-tag/latest-tag:"));
//! ```

mod handler;
mod patch;
mod review;
#[cfg(feature = "admission")]
mod service;

pub use handler::{AUDIT_ANNOTATION, AdmissionHandler, DEFAULT_MAX_BODY_BYTES, ReviewKind};
pub use patch::{JsonPatch, PatchOperation, push_pointer_token};
pub use review::{
    API_VERSION, AdmissionRequest, AdmissionResponse, AdmissionReview, GroupVersionKind,
    GroupVersionResource, KIND, Operation, PATCH_TYPE_JSON_PATCH, Status, UserInfo,
};
#[cfg(feature = "admission")]
#[cfg_attr(docsrs, doc(cfg(feature = "admission")))]
pub use service::{AdmissionService, ResponseFuture};
