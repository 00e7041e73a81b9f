//! The `admission.k8s.io/v1` wire types: an [`AdmissionReview`] carries a request from
//! the API server to a webhook and the webhook's response back.
//!
//! Field names and shapes follow the Kubernetes API reference for
//! `admission.k8s.io/v1` (camelCase on the wire). Unknown fields are ignored, so a newer
//! API server can add fields without breaking the webhook.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The only API version this module answers in.
pub const API_VERSION: &str = "admission.k8s.io/v1";
/// The kind of the envelope.
pub const KIND: &str = "AdmissionReview";

/// The envelope exchanged with the API server: a request going in, a response coming
/// back, both under `apiVersion: admission.k8s.io/v1`, `kind: AdmissionReview`.
///
/// ```
/// use idp_policy::admission::AdmissionReview;
/// let review: AdmissionReview = serde_json::from_value(serde_json::json!({
///     "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
///     "request": {"uid": "1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
///         "resource": {"group": "", "version": "v1", "resource": "pods"},
///         "operation": "CREATE", "userInfo": {"username": "jane"},
///         "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}}
/// })).unwrap();
/// assert_eq!(review.request.unwrap().user_info.username.as_deref(), Some("jane"));
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview {
    /// `admission.k8s.io/v1`.
    #[serde(default)]
    pub api_version: String,
    /// `AdmissionReview`.
    #[serde(default)]
    pub kind: String,
    /// What the API server asks (set on the way in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<AdmissionRequest>,
    /// What the webhook answers (set on the way back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<AdmissionResponse>,
}

impl AdmissionReview {
    /// A review carrying only `response`, as a webhook sends it back.
    ///
    /// ```
    /// use idp_policy::admission::{AdmissionResponse, AdmissionReview};
    /// let r = AdmissionReview::answer(AdmissionResponse::allow("42"));
    /// assert_eq!(r.api_version, "admission.k8s.io/v1");
    /// assert!(r.response.unwrap().allowed);
    /// ```
    pub fn answer(response: AdmissionResponse) -> Self {
        Self {
            api_version: API_VERSION.to_owned(),
            kind: KIND.to_owned(),
            request: None,
            response: Some(response),
        }
    }

    /// A review carrying only `request`, as the API server sends it (handy in tests).
    ///
    /// ```
    /// use idp_policy::admission::{AdmissionRequest, AdmissionReview, Operation};
    /// let req = AdmissionRequest::new("1", Operation::Create, serde_json::json!({"apiVersion": "v1", "kind": "Pod"}));
    /// assert!(AdmissionReview::ask(req).request.is_some());
    /// ```
    pub fn ask(request: AdmissionRequest) -> Self {
        Self {
            api_version: API_VERSION.to_owned(),
            kind: KIND.to_owned(),
            request: Some(request),
            response: None,
        }
    }
}

/// Group, version and kind (`metav1.GroupVersionKind`).
///
/// ```
/// let k = idp_policy::admission::GroupVersionKind { group: "apps".into(), version: "v1".into(), kind: "Deployment".into() };
/// assert_eq!(k.kind, "Deployment");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GroupVersionKind {
    /// API group (empty for the core group).
    #[serde(default)]
    pub group: String,
    /// API version.
    #[serde(default)]
    pub version: String,
    /// Kind.
    #[serde(default)]
    pub kind: String,
}

/// Group, version and resource (`metav1.GroupVersionResource`).
///
/// ```
/// let r = idp_policy::admission::GroupVersionResource { group: "".into(), version: "v1".into(), resource: "pods".into() };
/// assert_eq!(r.resource, "pods");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GroupVersionResource {
    /// API group (empty for the core group).
    #[serde(default)]
    pub group: String,
    /// API version.
    #[serde(default)]
    pub version: String,
    /// Resource (plural, lower case).
    #[serde(default)]
    pub resource: String,
}

/// The operation being admitted.
///
/// ```
/// let op: idp_policy::admission::Operation = serde_json::from_str("\"DELETE\"").unwrap();
/// assert_eq!(op, idp_policy::admission::Operation::Delete);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    /// `CREATE`.
    Create,
    /// `UPDATE`.
    Update,
    /// `DELETE` (`object` is null, `oldObject` holds what is deleted).
    Delete,
    /// `CONNECT` (exec, attach, port-forward, proxy).
    Connect,
}

/// Who sends the request (`authentication/v1.UserInfo`).
///
/// ```
/// let u = idp_policy::admission::UserInfo { username: Some("jane".into()), ..Default::default() };
/// assert!(u.groups.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UserInfo {
    /// The user's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A unique id for the user across time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The groups the user belongs to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Extra attributes from the authenticator.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// What the API server asks about one operation on one object.
///
/// ```
/// use idp_policy::admission::{AdmissionRequest, Operation};
/// let r = AdmissionRequest::new("7", Operation::Update, serde_json::json!({"apiVersion": "v1", "kind": "Pod"}))
///     .with_namespace("shop");
/// assert_eq!(r.namespace.as_deref(), Some("shop"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    /// Identifies this request; the response must echo it.
    pub uid: String,
    /// The kind of the object as the webhook sees it (after conversion).
    pub kind: GroupVersionKind,
    /// The resource being requested.
    pub resource: GroupVersionResource,
    /// The subresource (`status`, `scale`, `ephemeralcontainers`…), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_resource: Option<String>,
    /// The kind of the original request, when the API server converted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_kind: Option<GroupVersionKind>,
    /// The resource of the original request, when the API server converted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_resource: Option<GroupVersionResource>,
    /// The subresource of the original request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_sub_resource: Option<String>,
    /// The object's name (may be empty on CREATE with `generateName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The namespace, for namespaced resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The operation.
    pub operation: Operation,
    /// Who asks.
    #[serde(default)]
    pub user_info: UserInfo,
    /// The object after the operation (null on DELETE).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub object: Value,
    /// The object before the operation (UPDATE and DELETE).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub old_object: Value,
    /// Whether the change will not be persisted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// The operation's options (`CreateOptions`, `UpdateOptions`, `DeleteOptions`).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub options: Value,
}

impl AdmissionRequest {
    /// A request for `operation` on `object` (put in `oldObject` for DELETE), with
    /// `kind` taken from the object and an empty resource.
    ///
    /// ```
    /// use idp_policy::admission::{AdmissionRequest, Operation};
    /// let r = AdmissionRequest::new("1", Operation::Delete, serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment"}));
    /// assert!(r.object.is_null());
    /// assert_eq!(r.kind.group, "apps");
    /// ```
    pub fn new(uid: impl Into<String>, operation: Operation, object: Value) -> Self {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let kind = GroupVersionKind {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: object
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        };
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let (object, old_object) = if operation == Operation::Delete {
            (Value::Null, object)
        } else {
            (object, Value::Null)
        };
        Self {
            uid: uid.into(),
            kind,
            resource: GroupVersionResource::default(),
            sub_resource: None,
            request_kind: None,
            request_resource: None,
            request_sub_resource: None,
            name,
            namespace: None,
            operation,
            user_info: UserInfo::default(),
            object,
            old_object,
            dry_run: None,
            options: Value::Null,
        }
    }

    /// Set the namespace.
    ///
    /// ```
    /// # use idp_policy::admission::{AdmissionRequest, Operation};
    /// let r = AdmissionRequest::new("1", Operation::Create, serde_json::json!({})).with_namespace("ns");
    /// assert_eq!(r.namespace.as_deref(), Some("ns"));
    /// ```
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Set the user name.
    ///
    /// ```
    /// # use idp_policy::admission::{AdmissionRequest, Operation};
    /// let r = AdmissionRequest::new("1", Operation::Create, serde_json::json!({})).with_user("jane");
    /// assert_eq!(r.user_info.username.as_deref(), Some("jane"));
    /// ```
    pub fn with_user(mut self, username: impl Into<String>) -> Self {
        self.user_info.username = Some(username.into());
        self
    }

    /// Set the object before the operation (for UPDATE).
    ///
    /// ```
    /// # use idp_policy::admission::{AdmissionRequest, Operation};
    /// let r = AdmissionRequest::new("1", Operation::Update, serde_json::json!({"a": 2})).with_old_object(serde_json::json!({"a": 1}));
    /// assert_eq!(r.old_object["a"], 1);
    /// ```
    pub fn with_old_object(mut self, old: Value) -> Self {
        self.old_object = old;
        self
    }
}

/// `metav1.Status`, the part of a response a user sees when a request is refused.
///
/// ```
/// let s = idp_policy::admission::Status::forbidden("no");
/// assert_eq!(s.code, Some(403));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Status {
    /// `Success` or `Failure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The HTTP status code the API server answers the user with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// A human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A machine-readable reason (`Forbidden`, `BadRequest`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Status {
    /// A failure with `code`, `reason` and `message`.
    ///
    /// ```
    /// let s = idp_policy::admission::Status::failure(400, "BadRequest", "bad");
    /// assert_eq!(s.reason.as_deref(), Some("BadRequest"));
    /// ```
    pub fn failure(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            status: Some("Failure".to_owned()),
            code: Some(code),
            message: Some(message.into()),
            reason: Some(reason.to_owned()),
        }
    }

    /// 403 `Forbidden`: a policy refused the object.
    ///
    /// ```
    /// assert_eq!(idp_policy::admission::Status::forbidden("x").reason.as_deref(), Some("Forbidden"));
    /// ```
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::failure(403, "Forbidden", message)
    }

    /// 400 `BadRequest`: the review itself could not be understood.
    ///
    /// ```
    /// assert_eq!(idp_policy::admission::Status::bad_request("x").code, Some(400));
    /// ```
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::failure(400, "BadRequest", message)
    }
}

/// The only patch type this module produces.
pub const PATCH_TYPE_JSON_PATCH: &str = "JSONPatch";

/// The webhook's answer.
///
/// ```
/// use idp_policy::admission::AdmissionResponse;
/// let r = AdmissionResponse::allow("1").with_warning("careful");
/// assert!(r.allowed);
/// assert_eq!(r.warnings, ["careful"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    /// The request's uid, echoed.
    pub uid: String,
    /// Whether the operation may proceed.
    pub allowed: bool,
    /// Why not (set when `allowed` is false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// A base64-encoded RFC 6902 JSON Patch (mutating webhooks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// `JSONPatch` when `patch` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<String>,
    /// Warnings shown to the client (kubectl prints them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Annotations for the audit record (the API server prefixes each key with the
    /// webhook's name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<String, String>,
}

impl AdmissionResponse {
    /// Allow request `uid`.
    ///
    /// ```
    /// assert!(idp_policy::admission::AdmissionResponse::allow("1").status.is_none());
    /// ```
    pub fn allow(uid: impl Into<String>) -> Self {
        Self {
            uid: uid.into(),
            allowed: true,
            ..Self::default()
        }
    }

    /// Refuse request `uid` with `status`.
    ///
    /// ```
    /// use idp_policy::admission::{AdmissionResponse, Status};
    /// let r = AdmissionResponse::deny("1", Status::forbidden("no"));
    /// assert!(!r.allowed);
    /// ```
    pub fn deny(uid: impl Into<String>, status: Status) -> Self {
        Self {
            uid: uid.into(),
            allowed: false,
            status: Some(status),
            ..Self::default()
        }
    }

    /// Add a warning.
    ///
    /// ```
    /// assert_eq!(idp_policy::admission::AdmissionResponse::allow("1").with_warning("w").warnings.len(), 1);
    /// ```
    pub fn with_warning(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    /// The decoded JSON Patch, when the response carries one.
    ///
    /// ```
    /// use idp_policy::admission::{AdmissionResponse, JsonPatch};
    /// let mut r = AdmissionResponse::allow("1");
    /// r.set_patch(&JsonPatch::default());
    /// assert!(r.patch.is_none(), "an empty patch is not sent");
    /// ```
    pub fn decoded_patch(&self) -> Option<Result<Value, String>> {
        use base64::Engine as _;
        let encoded = self.patch.as_deref()?;
        Some(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("patch is not valid base64: {e}"))
                .and_then(|bytes| {
                    serde_json::from_slice(&bytes)
                        .map_err(|e| format!("patch is not valid JSON: {e}"))
                }),
        )
    }

    /// Attach a JSON Patch (base64 of its JSON, `patchType: JSONPatch`); an empty
    /// patch removes both fields.
    ///
    /// ```
    /// use idp_policy::admission::{AdmissionResponse, JsonPatch};
    /// let patch = JsonPatch::diff(&serde_json::json!({"a": 1}), &serde_json::json!({"a": 2}));
    /// let mut r = AdmissionResponse::allow("1");
    /// r.set_patch(&patch);
    /// assert_eq!(r.patch_type.as_deref(), Some("JSONPatch"));
    /// assert_eq!(r.decoded_patch().unwrap().unwrap(), serde_json::json!([{"op": "replace", "path": "/a", "value": 2}]));
    /// ```
    pub fn set_patch(&mut self, patch: &super::JsonPatch) {
        use base64::Engine as _;
        if patch.is_empty() {
            self.patch = None;
            self.patch_type = None;
        } else {
            let json = patch.to_json();
            self.patch = Some(base64::engine::general_purpose::STANDARD.encode(json.as_bytes()));
            self.patch_type = Some(PATCH_TYPE_JSON_PATCH.to_owned());
        }
    }
}
