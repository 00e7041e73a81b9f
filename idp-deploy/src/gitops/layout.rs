//! Where a component's manifests live in the GitOps repository.

use idp_core::{EntityRef, EnvironmentName, Error, Result};

/// A folder template such as `envs/{env}/{component}`: each component gets one folder
/// per environment, and the deployer owns that folder's content entirely.
///
/// Placeholders:
///
/// - `{env}`: the environment name (`prod`);
/// - `{component}`: the component's name (`cart` for `component:default/cart`);
/// - `{namespace}`: the component's **catalog** namespace (`default`).
///
/// The template must contain `{env}` and `{component}` (otherwise two components or two
/// environments would share a folder and overwrite each other) and render to a relative
/// path without `.` or `..` segments.
///
/// ```
/// use idp_deploy::gitops::Layout;
/// let layout = Layout::default();
/// let folder = layout.folder(&"component:default/cart".parse()?, &"prod".parse()?)?;
/// assert_eq!(folder, "envs/prod/cart");
///
/// let custom = Layout::new("clusters/{env}/{namespace}/{component}/")?;
/// assert_eq!(custom.folder(&"component:shop/cart".parse()?, &"dev".parse()?)?, "clusters/dev/shop/cart");
/// assert!(Layout::new("envs/{env}").is_err());
/// # Ok::<(), idp_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    template: String,
}

impl Default for Layout {
    /// `envs/{env}/{component}`.
    fn default() -> Self {
        Self {
            template: Self::DEFAULT.to_owned(),
        }
    }
}

impl Layout {
    /// The default template.
    pub const DEFAULT: &'static str = "envs/{env}/{component}";

    /// A layout from a template (see the type docs for the rules).
    ///
    /// ```
    /// let err = idp_deploy::gitops::Layout::new("envs/{environment}/{component}").unwrap_err();
    /// assert!(err.to_string().contains("{environment}"));
    /// ```
    pub fn new(template: impl Into<String>) -> Result<Self> {
        let template = template.into();
        let mut rest = template.as_str();
        while let Some(open) = rest.find('{') {
            let after = &rest[open..];
            let Some(close) = after.find('}') else {
                return Err(Error::invalid_input(format!(
                    "layout template {template:?}: unclosed '{{'; placeholders are {{env}}, {{component}} and {{namespace}}"
                )));
            };
            let placeholder = &after[..=close];
            if !matches!(placeholder, "{env}" | "{component}" | "{namespace}") {
                return Err(Error::invalid_input(format!(
                    "layout template {template:?}: unknown placeholder {placeholder}; use {{env}}, {{component}} or {{namespace}}"
                )));
            }
            rest = &after[close + 1..];
        }
        for needed in ["{env}", "{component}"] {
            if !template.contains(needed) {
                return Err(Error::invalid_input(format!(
                    "layout template {template:?} has no {needed}: every component needs its own folder per environment (for example \"{}\")",
                    Self::DEFAULT
                )));
            }
        }
        let layout = Self { template };
        // Render once with sample values to reject absolute paths, `..` and the like.
        layout.render("env", "component", "namespace")?;
        Ok(layout)
    }

    /// The template as given.
    ///
    /// ```
    /// assert_eq!(idp_deploy::gitops::Layout::default().template(), "envs/{env}/{component}");
    /// ```
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The folder (relative to the repository root, no trailing `/`) of `component` in
    /// `environment`.
    ///
    /// ```
    /// let f = idp_deploy::gitops::Layout::default().folder(&"component:default/a".parse()?, &"dev".parse()?)?;
    /// assert_eq!(f, "envs/dev/a");
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn folder(&self, component: &EntityRef, environment: &EnvironmentName) -> Result<String> {
        self.render(
            environment.as_str(),
            component.name(),
            component.namespace(),
        )
    }

    fn render(&self, env: &str, component: &str, namespace: &str) -> Result<String> {
        for (what, value) in [
            ("environment", env),
            ("component name", component),
            ("namespace", namespace),
        ] {
            if value.is_empty() || value == "." || value == ".." || value.contains(['/', '\\']) {
                return Err(Error::invalid_input(format!(
                    "the {what} {value:?} cannot be a folder name in the GitOps repository (no '/', '\\', '.' or '..')"
                )));
            }
        }
        let rendered = self
            .template
            .replace("{env}", env)
            .replace("{component}", component)
            .replace("{namespace}", namespace);
        let trimmed = rendered.trim_end_matches('/');
        if trimmed.starts_with('/') || trimmed.contains('\\') {
            return Err(Error::invalid_input(format!(
                "layout template {:?} gives {rendered:?}: the folder must be a relative path with '/' separators",
                self.template
            )));
        }
        for part in trimmed.split('/') {
            if part.is_empty() || part == "." || part == ".." {
                return Err(Error::invalid_input(format!(
                    "layout template {:?} gives {rendered:?}: empty, '.' or '..' path segments are not allowed",
                    self.template
                )));
            }
        }
        Ok(trimmed.to_owned())
    }
}

impl std::str::FromStr for Layout {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_escapes() {
        assert!(Layout::new("/abs/{env}/{component}").is_err());
        assert!(Layout::new("../{env}/{component}").is_err());
        assert!(Layout::new("a//{env}/{component}").is_err());
        assert!(Layout::new("{env}/{component}").is_ok());
    }
}
