//! Backstage-style filter strings: `kind=component,spec.type=service`.
//!
//! One string is an AND-group of `key=value` (equals, case-insensitive) and `key`
//! (exists) conditions separated by commas; several strings are ORed, as with repeated
//! `filter=` parameters in Backstage's catalog API.
//!
//! ```
//! use idp_catalog::filter::parse_filters;
//! let q = parse_filters(&["kind=component,spec.type=service", "kind=api,metadata.annotations.backstage.io/techdocs-ref"]).unwrap();
//! assert_eq!(q.filter.len(), 2);
//! assert_eq!(q.filter[1][1].key, "metadata.annotations.backstage.io/techdocs-ref");
//! assert!(q.filter[1][1].values.is_empty());
//! ```

use idp_core::Result;
use idp_core::ports::{EntityQuery, FilterCondition};

/// Parse one AND-group; the same key given twice accepts either value
/// (`kind=component,kind=api`).
///
/// ```
/// let g = idp_catalog::filter::parse_filter("kind=component,kind=api").unwrap();
/// assert_eq!(g.len(), 1);
/// assert_eq!(g[0].values, vec!["component", "api"]);
/// ```
pub fn parse_filter(text: &str) -> Result<Vec<FilterCondition>> {
    let mut out: Vec<FilterCondition> = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (key, value) = match part.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (part, None),
        };
        if key.is_empty() {
            return Err(idp_core::Error::invalid_input(format!(
                "filter {text:?} has a condition without a key; write key=value or key"
            )));
        }
        match out
            .iter_mut()
            .find(|c| c.key.eq_ignore_ascii_case(key) && !c.values.is_empty())
        {
            Some(existing) if value.is_some() => {
                existing.values.push(value.unwrap_or_default().to_owned());
            }
            _ => out.push(match value {
                Some(v) => FilterCondition::equals(key, v),
                None => FilterCondition::exists(key),
            }),
        }
    }
    Ok(out)
}

/// Parse several filter strings into a query (ORed).
///
/// ```
/// let q = idp_catalog::filter::parse_filters(&["kind=group"]).unwrap();
/// assert_eq!(q.filter[0][0].values, vec!["group"]);
/// ```
pub fn parse_filters<S: AsRef<str>>(filters: &[S]) -> Result<EntityQuery> {
    let mut q = EntityQuery::new();
    for f in filters {
        let group = parse_filter(f.as_ref())?;
        if !group.is_empty() {
            q = q.any_of(group);
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_key_is_an_error() {
        assert!(parse_filter("=x").is_err());
        assert!(parse_filter("").unwrap().is_empty());
    }
}
