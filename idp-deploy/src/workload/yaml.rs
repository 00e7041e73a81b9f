//! Reading our YAML inputs (Score files, environment profiles, static outputs) with
//! serde-saphyr, in the same error style as `idp_core::manifest`: `file:line:column: what`.

use std::path::Path;

use idp_core::{Error, Result};
use serde::de::DeserializeOwned;

/// Largest input accepted, in bytes (a Score file or a profile is a few kilobytes).
pub(crate) const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;

/// Parse `text` as one YAML (or JSON) document of type `T`.
///
/// `what` names the kind of file for the message ("Score file", "environment profile").
pub(crate) fn parse<T: DeserializeOwned>(text: &str, file: Option<&Path>, what: &str) -> Result<T> {
    let place = file.map_or_else(|| "<input>".to_owned(), |f| f.display().to_string());
    if text.len() > MAX_INPUT_BYTES {
        return Err(Error::invalid_input(format!(
            "{place}:1: the {what} is {} bytes, more than the limit of {MAX_INPUT_BYTES} bytes",
            text.len()
        )));
    }
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = 64;
    budget.flow_nesting_limit = 64;
    budget.max_aliases = 1_000;
    budget.max_documents = 1;
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = 100_000;
    serde_saphyr::from_str_with_options::<T>(text, options).map_err(|e| {
        let (line, column) = e
            .location()
            .map_or((0, 0), |l| (l.line() as usize, l.column() as usize));
        let mut message = e.to_string();
        let suffix = format!(" at line {line}, column {column}");
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_owned();
        }
        let at = match (line, column) {
            (0, _) => format!("{place}:1"),
            (line, 0) => format!("{place}:{line}"),
            (line, column) => format!("{place}:{line}:{column}"),
        };
        Error::invalid_input(format!("{at}: invalid {what}: {message}")).with_source(e)
    })
}

/// Read a file to a string, with the path in the error.
pub(crate) fn read(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::from(e).context(format!("cannot read the {what} {}", path.display())))
}

/// The 1-based line of the first line of `text` where `needle` appears as a mapping key
/// (`needle:` at the start of the line, after `- `, or inside a flow mapping after `{` or
/// `,`), for problems found after parsing; 1 when not found.
pub(crate) fn line_of_key(text: &str, needle: &str) -> usize {
    let keys = [
        format!("{needle}:"),
        format!("\"{needle}\":"),
        format!("'{needle}':"),
    ];
    text.lines()
        .position(|line| {
            keys.iter().any(|key| {
                line.match_indices(key.as_str()).any(|(at, _)| {
                    let before = line[..at].trim_end();
                    before.is_empty() || before.ends_with(['{', ',', '-'])
                })
            })
        })
        .map_or(1, |i| i + 1)
}

/// Whether `s` is an RFC 1123 label of 2 to 63 characters, as Score requires for workload,
/// container, port and resource names.
pub(crate) fn is_score_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    (2..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}
