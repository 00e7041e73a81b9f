//! What to do about a pull-request event.

use serde::{Deserialize, Serialize};

use idp_core::EnvironmentName;

/// The outcome of planning one event: make sure a preview exists at the event's head,
/// tear one down, or do nothing (always with a reason a person can read).
///
/// ```
/// use idp_preview::decision::Decision;
/// let d = Decision::Ignore { reason: "draft pull requests get no preview".into() };
/// assert_eq!(serde_json::to_value(&d).unwrap()["action"], "ignore");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Decision {
    /// Create the preview, or update it to the event's head SHA.
    Ensure {
        /// The preview environment's name (a DNS-1123 label, stable across pushes).
        environment: EnvironmentName,
    },
    /// Remove the preview and everything it owns.
    Destroy {
        /// The preview environment's name.
        environment: EnvironmentName,
        /// Why it goes.
        reason: String,
    },
    /// Nothing to do.
    Ignore {
        /// Why nothing happens.
        reason: String,
    },
}

impl Decision {
    /// The environment this decision is about, if any.
    ///
    /// ```
    /// use idp_preview::decision::Decision;
    /// let d = Decision::Ensure { environment: "pr-cart-42".parse().unwrap() };
    /// assert_eq!(d.environment().unwrap().as_str(), "pr-cart-42");
    /// ```
    pub fn environment(&self) -> Option<&EnvironmentName> {
        match self {
            Decision::Ensure { environment } | Decision::Destroy { environment, .. } => {
                Some(environment)
            }
            Decision::Ignore { .. } => None,
        }
    }
}
