//! Kyverno validate patterns (`validate.pattern` / `anyPattern`): matching a resource
//! against a pattern tree with wildcards, operators and anchors.
//!
//! The language, as documented for kyverno.io/v1 `ClusterPolicy` validate rules:
//!
//! - A map in the pattern requires a map in the resource; every key of the pattern must
//!   hold, keys the pattern does not name are not looked at.
//! - A field named by the pattern but absent from the resource fails, unless the pattern
//!   value is `null` or `""` (these require the field to be absent or to have no value).
//!   `"*"` matches any present, non-null value (empty values included); absent fails.
//! - Strings: `*` matches any run of characters (none included), `?` exactly one, `?*` a
//!   non-empty value. Operators `!` (not), `>`, `<`, `>=`, `<=`, ranges `a-b` (inclusive)
//!   and `a!-b` (outside), alternatives `|` and conjunctions `&` (`|` binds loosest).
//!   Comparisons are numeric on durations (`90m`, `1h30m`), Kubernetes quantities
//!   (`1Gi`, `100m`, `1e3`) and versions (`1.4.1`); equality falls back to a wildcard
//!   match of the value's text. A string pattern also matches a number or a boolean by
//!   its text (`"true"` matches `true`).
//! - Numbers and booleans in the pattern require that number or boolean; a number also
//!   matches a string holding it (`2` matches `"2"`), a boolean does not.
//! - Lists: a pattern list of one map applies that map to every element of the resource
//!   list; a pattern list of one scalar applies it to every element; a list of lists is
//!   matched position by position. A scalar pattern against a resource list applies to
//!   every element.
//! - Anchors on keys: conditional `(key)` (if it does not hold, the enclosing map is not
//!   checked), equality `=(key)` (checked only when present), negation `X(key)` (must be
//!   absent), existence `^(key)` (on a list: every pattern element is matched by at least
//!   one element), global `<(key)` (if it does not hold, the whole rule is skipped).
//!   A key holding `*`/`?` wildcards stands for every resource key it matches.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Number, Value};

/// Deepest nesting of a pattern (and of the resource along the pattern) that is evaluated.
const MAX_DEPTH: usize = 200;

/// Longest string shown in a failure message before it is cut.
const MAX_SHOWN: usize = 120;

/// The outcome of matching one resource against one pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every constraint holds.
    Pass,
    /// A global anchor `<(key)` did not hold: the rule does not apply to this resource.
    Skip {
        /// Which global anchor did not hold, where, and why.
        reason: String,
    },
    /// A constraint failed.
    Fail {
        /// Where, dotted with indexes (`spec.containers[0].securityContext.privileged`); a
        /// key that is not an identifier is quoted (`metadata.annotations["a/b"]`). Empty
        /// for the root.
        path: String,
        /// What was wanted and what was found.
        message: String,
    },
}

/// `pattern` is invalid: an operator with no operand, a comparison with an operand that is
/// not a number, quantity, duration or version, a range whose bounds are not numbers,
/// quantities or durations, a malformed or mutate-only anchor, an existence anchor whose
/// value is not a list of maps, an empty list, a list of several maps or scalars, or a
/// pattern nested too deep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PatternError {
    /// Where in the pattern, dotted as in [`Outcome::Fail`] (keys written as in the pattern,
    /// anchors included).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "invalid pattern: {}", self.message)
        } else {
            write!(f, "invalid pattern at {}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for PatternError {}

/// Check a pattern once, at load time.
pub(crate) fn check(pattern: &Value) -> Result<(), PatternError> {
    let mut trail = Vec::new();
    check_node(pattern, &mut trail, 0)
}

/// Match `resource` against `pattern` (assumed checked; if not, an invalid bit is a Fail
/// with a clear message, never a panic).
pub(crate) fn validate(resource: &Value, pattern: &Value) -> Outcome {
    let mut trail = Vec::new();
    match match_value(Some(resource), pattern, &mut trail, 0) {
        Verdict::Pass | Verdict::Cond(_) => Outcome::Pass,
        Verdict::Global(reason) => Outcome::Skip { reason },
        Verdict::Fail { path, message } => Outcome::Fail { path, message },
    }
}

/// Whether `resource` matches `pattern` outright, as the conditional and global anchors of
/// a mutate rule require. Stricter than [`validate`] in one way: where a conditional anchor
/// inside the pattern leaves nothing checked (a list none of whose elements satisfies the
/// element's conditions), that is not a match, and neither is a global anchor that does
/// not hold. `Err` says why the value does not match.
pub(super) fn holds(resource: &Value, pattern: &Value) -> Result<(), String> {
    let mut trail = Vec::new();
    match match_value(Some(resource), pattern, &mut trail, 0) {
        Verdict::Pass => Ok(()),
        other => Err(other.explain()),
    }
}

// ---------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------

/// One step of a path: a map key or a list index.
#[derive(Debug, Clone, Copy)]
pub(super) enum Seg<'a> {
    /// A map key.
    Key(&'a str),
    /// A list index.
    Index(usize),
}

/// Whether `key` can be written bare in a dotted path.
fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A string as a JSON string literal.
pub(super) fn quoted(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// Renders a path: `a.b[0]["c/d"]`.
fn render(trail: &[Seg<'_>]) -> String {
    render_with(trail, is_identifier)
}

/// Renders a path, writing the keys `bare` accepts after a dot and the others quoted in
/// brackets.
pub(super) fn render_with(trail: &[Seg<'_>], bare: impl Fn(&str) -> bool) -> String {
    let mut out = String::new();
    for seg in trail {
        match seg {
            Seg::Key(key) if bare(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Seg::Key(key) => {
                out.push('[');
                out.push_str(&quoted(key));
                out.push(']');
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// Renders a path for a message, naming the root.
fn render_here(trail: &[Seg<'_>]) -> String {
    if trail.is_empty() {
        "the root".to_owned()
    } else {
        render(trail)
    }
}

/// A short description of a value for messages (never serializes a whole subtree).
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            if s.chars().count() > MAX_SHOWN {
                let cut: String = s.chars().take(MAX_SHOWN).collect();
                format!("{}...", quoted(&cut))
            } else {
                quoted(s)
            }
        }
        Value::Array(items) => format!("a list of {} element(s)", items.len()),
        Value::Object(map) => format!("a map of {} key(s)", map.len()),
    }
}

// ---------------------------------------------------------------------------------------
// Anchors
// ---------------------------------------------------------------------------------------

/// How a pattern key applies to the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    /// `key`: must be present and match.
    Plain,
    /// `(key)`: if present and matching, the peers are checked; otherwise the enclosing
    /// map is not checked.
    Conditional,
    /// `=(key)`: if present, must match.
    Equality,
    /// `X(key)`: must be absent.
    Negation,
    /// `^(key)`: on a list, each pattern element is matched by at least one element.
    Existence,
    /// `<(key)`: if present and not matching, the whole rule is skipped.
    Global,
}

/// Splits an anchored key into its anchor and inner key (one level, no validation).
/// `Ok(None)` for a plain key; `Err` for the mutate-only `+(key)`.
fn split_anchor(key: &str) -> Result<Option<(Anchor, &str)>, String> {
    let Some(body) = key.strip_suffix(')') else {
        return Ok(None);
    };
    if let Some(inner) = body.strip_prefix('(') {
        return Ok(Some((Anchor::Conditional, inner)));
    }
    let mut chars = body.chars();
    let (Some(modifier), Some('(')) = (chars.next(), chars.next()) else {
        return Ok(None);
    };
    let inner = chars.as_str();
    let anchor = match modifier {
        '=' => Anchor::Equality,
        'X' => Anchor::Negation,
        '^' => Anchor::Existence,
        '<' => Anchor::Global,
        '+' => {
            return Err(format!(
                "the add-if-absent anchor {} belongs to mutate patterns, not to validate patterns",
                quoted(key)
            ));
        }
        _ => return Ok(None),
    };
    Ok(Some((anchor, inner)))
}

/// Parses a pattern key into its anchor and the resource key it names.
fn parse_key(key: &str) -> Result<(Anchor, &str), String> {
    match split_anchor(key)? {
        None => Ok((Anchor::Plain, key)),
        Some((_, "")) => Err(format!("anchor {} has an empty key", quoted(key))),
        Some((anchor, inner)) => {
            if matches!(split_anchor(inner), Ok(Some(_)) | Err(_)) {
                return Err(format!(
                    "anchor {} is applied to another anchor: an anchor applies to a plain key",
                    quoted(key)
                ));
            }
            Ok((anchor, inner))
        }
    }
}

/// Whether `s` holds wildcard characters.
fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// Glob match: `*` any run of characters (none included), `?` exactly one character.
/// One pass with a single backtrack point: never exponential.
pub(super) fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Position of the last `*` in the pattern and the text position it resumes from.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

// ---------------------------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------------------------

/// The result of matching one part of the pattern.
#[derive(Debug)]
enum Verdict {
    /// Every constraint holds.
    Pass,
    /// A conditional anchor did not hold: the enclosing map was not checked. Counts as a
    /// pass, except where a condition is being evaluated or a list needs one element to
    /// apply.
    Cond(String),
    /// A global anchor did not hold: the rule is skipped.
    Global(String),
    /// A constraint failed.
    Fail {
        /// Where.
        path: String,
        /// Why.
        message: String,
    },
}

impl Verdict {
    /// Why this part did not pass, with its place.
    fn explain(&self) -> String {
        match self {
            Verdict::Pass => "it holds".to_owned(),
            Verdict::Cond(reason) | Verdict::Global(reason) => reason.clone(),
            Verdict::Fail { path, message } if path.is_empty() => message.clone(),
            Verdict::Fail { path, message } => format!("{path}: {message}"),
        }
    }
}

/// A failure at the current path.
fn fail(trail: &[Seg<'_>], message: impl Into<String>) -> Verdict {
    Verdict::Fail {
        path: render(trail),
        message: message.into(),
    }
}

/// Collects the verdicts of the parts of a map or a list.
#[derive(Default)]
struct Tally {
    /// Whether some part passed outright.
    passed: bool,
    /// The first failure.
    fail: Option<Verdict>,
    /// The first global anchor that did not hold.
    global: Option<Verdict>,
    /// The first conditional anchor that did not hold.
    cond: Option<Verdict>,
}

impl Tally {
    /// Records one verdict.
    fn add(&mut self, verdict: Verdict) {
        let slot = match verdict {
            Verdict::Pass => {
                self.passed = true;
                return;
            }
            Verdict::Fail { .. } => &mut self.fail,
            Verdict::Global(_) => &mut self.global,
            Verdict::Cond(_) => &mut self.cond,
        };
        if slot.is_none() {
            *slot = Some(verdict);
        }
    }

    /// The verdict of a map: a global anchor anywhere skips the rule, then any failure
    /// fails, then a conditional anchor that did not hold is reported upwards.
    fn map_verdict(self) -> Verdict {
        self.global
            .or(self.fail)
            .or(self.cond)
            .unwrap_or(Verdict::Pass)
    }

    /// The verdict of a list: any failing element fails; elements whose conditional or
    /// global anchor did not hold are left out, and if no element is left, that is
    /// reported upwards.
    fn list_verdict(self) -> Verdict {
        if let Some(failure) = self.fail {
            return failure;
        }
        if self.passed {
            return Verdict::Pass;
        }
        self.global.or(self.cond).unwrap_or(Verdict::Pass)
    }
}

/// Matches `res` (`None` when the field is absent) against `pat` at the current path.
fn match_value<'a>(
    res: Option<&'a Value>,
    pat: &'a Value,
    trail: &mut Vec<Seg<'a>>,
    depth: usize,
) -> Verdict {
    if depth > MAX_DEPTH {
        return fail(
            trail,
            format!("nesting deeper than {MAX_DEPTH} levels is not evaluated"),
        );
    }
    match pat {
        Value::Object(pm) => match res {
            Some(Value::Object(rm)) => match_map(rm, pm, trail, depth),
            None | Some(Value::Null) => fail(trail, "field is required (the pattern wants a map)"),
            Some(other) => fail(trail, format!("expected a map, found {}", describe(other))),
        },
        Value::Array(pa) => match res {
            Some(Value::Array(ra)) => match_list(ra, pa, trail, depth),
            None | Some(Value::Null) => fail(trail, "field is required (the pattern wants a list)"),
            Some(other) => fail(trail, format!("expected a list, found {}", describe(other))),
        },
        Value::String(s) if s == "*" => match res {
            Some(value) if !value.is_null() => Verdict::Pass,
            _ => fail(
                trail,
                "field is required (the pattern \"*\" wants any value)",
            ),
        },
        _ => match res {
            Some(Value::Array(items)) => {
                // A single value against a list: every element must match it.
                let mut tally = Tally::default();
                for (i, item) in items.iter().enumerate() {
                    trail.push(Seg::Index(i));
                    tally.add(match_value(Some(item), pat, trail, depth + 1));
                    trail.pop();
                }
                tally.list_verdict()
            }
            _ => match scalar_holds(res, pat) {
                Ok(true) => Verdict::Pass,
                Ok(false) => fail(trail, mismatch(res, pat)),
                Err(message) => fail(trail, format!("invalid pattern: {message}")),
            },
        },
    }
}

/// The message for a value that does not match a single-value pattern.
fn mismatch(res: Option<&Value>, pat: &Value) -> String {
    match res {
        None => format!("field is required (wanted {})", describe(pat)),
        Some(value) => format!("value {} does not match {}", describe(value), describe(pat)),
    }
}

/// One key of a pattern map, resolved against the resource map.
struct Entry<'a> {
    /// The anchor of the pattern key.
    anchor: Anchor,
    /// The resource key it names.
    key: &'a str,
    /// The pattern value.
    pattern: &'a Value,
}

/// Resolves the keys of a pattern map: anchors parsed, wildcard keys expanded to the
/// resource keys they match (kept literally when none matches).
fn entries<'a>(
    rm: &'a Map<String, Value>,
    pm: &'a Map<String, Value>,
) -> Result<Vec<Entry<'a>>, (&'a str, String)> {
    let mut out = Vec::with_capacity(pm.len());
    for (raw, pattern) in pm {
        let (anchor, key) = parse_key(raw).map_err(|message| (raw.as_str(), message))?;
        if has_wildcard(key) && !rm.contains_key(key) {
            let before = out.len();
            for resource_key in rm.keys().filter(|k| wildcard(key, k)) {
                out.push(Entry {
                    anchor,
                    key: resource_key,
                    pattern,
                });
            }
            if out.len() > before {
                continue;
            }
        }
        out.push(Entry {
            anchor,
            key,
            pattern,
        });
    }
    Ok(out)
}

/// Matches a resource map against a pattern map.
fn match_map<'a>(
    rm: &'a Map<String, Value>,
    pm: &'a Map<String, Value>,
    trail: &mut Vec<Seg<'a>>,
    depth: usize,
) -> Verdict {
    let entries = match entries(rm, pm) {
        Ok(entries) => entries,
        Err((raw, message)) => {
            trail.push(Seg::Key(raw));
            let verdict = fail(trail, format!("invalid pattern: {message}"));
            trail.pop();
            return verdict;
        }
    };

    // Global anchors first: one that does not hold skips the rule, whatever else fails.
    for entry in entries.iter().filter(|e| e.anchor == Anchor::Global) {
        let Some(value) = rm.get(entry.key) else {
            continue;
        };
        trail.push(Seg::Key(entry.key));
        let verdict = match_value(Some(value), entry.pattern, trail, depth + 1);
        let here = render_here(trail);
        trail.pop();
        if !matches!(verdict, Verdict::Pass) {
            return Verdict::Global(format!(
                "global anchor <({}) does not hold at {here}: {}",
                entry.key,
                verdict.explain()
            ));
        }
    }

    // Conditional anchors: one that does not hold leaves this map unchecked.
    for entry in entries.iter().filter(|e| e.anchor == Anchor::Conditional) {
        trail.push(Seg::Key(entry.key));
        let here = render_here(trail);
        let verdict = match rm.get(entry.key) {
            None => Some(format!(
                "conditional anchor ({}) does not hold: {here} is absent",
                entry.key
            )),
            Some(value) => match match_value(Some(value), entry.pattern, trail, depth + 1) {
                Verdict::Pass => None,
                other => Some(format!(
                    "conditional anchor ({}) does not hold: {}",
                    entry.key,
                    other.explain()
                )),
            },
        };
        trail.pop();
        if let Some(reason) = verdict {
            return Verdict::Cond(reason);
        }
    }

    let mut tally = Tally::default();
    for entry in &entries {
        let value = rm.get(entry.key);
        trail.push(Seg::Key(entry.key));
        let verdict = match entry.anchor {
            Anchor::Global | Anchor::Conditional => Verdict::Pass,
            Anchor::Plain => match_value(value, entry.pattern, trail, depth + 1),
            Anchor::Equality => match value {
                None => Verdict::Pass,
                Some(value) => match_value(Some(value), entry.pattern, trail, depth + 1),
            },
            Anchor::Negation => match value {
                None => Verdict::Pass,
                Some(_) => fail(
                    trail,
                    format!("field is not allowed (negation anchor X({}))", entry.key),
                ),
            },
            Anchor::Existence => match value {
                None => Verdict::Pass,
                Some(value) => match_existence(value, entry.key, entry.pattern, trail, depth),
            },
        };
        trail.pop();
        tally.add(verdict);
    }
    tally.map_verdict()
}

/// Matches an existence anchor `^(key)` whose resource value is present; the current
/// path ends with the key.
fn match_existence<'a>(
    value: &'a Value,
    key: &str,
    pattern: &'a Value,
    trail: &mut Vec<Seg<'a>>,
    depth: usize,
) -> Verdict {
    let Value::Array(elements) = pattern else {
        return fail(
            trail,
            format!("invalid pattern: existence anchor ^({key}) needs a list of maps"),
        );
    };
    if elements.is_empty() || !elements.iter().all(Value::is_object) {
        return fail(
            trail,
            format!("invalid pattern: existence anchor ^({key}) needs a non-empty list of maps"),
        );
    }
    let Value::Array(items) = value else {
        return fail(
            trail,
            format!(
                "existence anchor ^({key}) applies to a list, found {}",
                describe(value)
            ),
        );
    };
    for (j, element) in elements.iter().enumerate() {
        let mut first_miss: Option<String> = None;
        let mut found = false;
        for (i, item) in items.iter().enumerate() {
            trail.push(Seg::Index(i));
            let verdict = match_value(Some(item), element, trail, depth + 2);
            trail.pop();
            if matches!(verdict, Verdict::Pass) {
                found = true;
                break;
            }
            if first_miss.is_none() {
                first_miss = Some(verdict.explain());
            }
        }
        if !found {
            let which = if elements.len() > 1 {
                format!("element {j} of the pattern of ^({key})")
            } else {
                format!("the pattern of ^({key})")
            };
            let detail = first_miss.map_or_else(
                || "the list is empty".to_owned(),
                |miss| format!("first mismatch: {miss}"),
            );
            return fail(
                trail,
                format!(
                    "no element of the list ({} element(s)) matches {which}; {detail}",
                    items.len()
                ),
            );
        }
    }
    Verdict::Pass
}

/// Matches a resource list against a pattern list.
fn match_list<'a>(
    ra: &'a [Value],
    pa: &'a [Value],
    trail: &mut Vec<Seg<'a>>,
    depth: usize,
) -> Verdict {
    let Some(first) = pa.first() else {
        return fail(trail, "invalid pattern: an empty list matches nothing");
    };
    let mut tally = Tally::default();
    if first.is_array() {
        // Lists of lists are matched position by position.
        if ra.len() < pa.len() {
            return fail(
                trail,
                format!(
                    "the list has {} element(s), the pattern wants at least {}",
                    ra.len(),
                    pa.len()
                ),
            );
        }
        for (i, (item, element)) in ra.iter().zip(pa).enumerate() {
            trail.push(Seg::Index(i));
            tally.add(match_value(Some(item), element, trail, depth + 1));
            trail.pop();
        }
    } else {
        if pa.len() > 1 {
            return fail(
                trail,
                format!(
                    "invalid pattern: a list pattern has one element, applied to every element \
                     (found {}; use ^(key) to require at least one match)",
                    pa.len()
                ),
            );
        }
        for (i, item) in ra.iter().enumerate() {
            trail.push(Seg::Index(i));
            tally.add(match_value(Some(item), first, trail, depth + 1));
            trail.pop();
        }
    }
    tally.list_verdict()
}

// ---------------------------------------------------------------------------------------
// Single values
// ---------------------------------------------------------------------------------------

/// Whether a value (`None` when absent or null) matches a single-value pattern.
/// `Err` when the pattern is invalid.
fn scalar_holds(res: Option<&Value>, pat: &Value) -> Result<bool, String> {
    let value = res.filter(|v| !v.is_null());
    Ok(match pat {
        // "No value": absent, null, or the zero value of a scalar.
        Value::Null => match value {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => !b,
            Some(Value::Number(n)) => number_is_zero(n),
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Array(_) | Value::Object(_)) => false,
        },
        Value::Bool(b) => value.and_then(Value::as_bool) == Some(*b),
        Value::Number(n) => value.is_some_and(|v| number_matches(n, v)),
        Value::String(s) => return string_holds(value, s),
        Value::Array(_) | Value::Object(_) => {
            return Err("a list or a map is not a single value".to_owned());
        }
    })
}

/// Whether a number is zero.
fn number_is_zero(n: &Number) -> bool {
    n.as_f64()
        .is_some_and(|f| f.partial_cmp(&0.0) == Some(Ordering::Equal))
}

/// Whether a resource value equals a number of the pattern (a numeric string counts).
fn number_matches(pattern: &Number, value: &Value) -> bool {
    let pattern_int = pattern
        .as_i64()
        .map(i128::from)
        .or_else(|| pattern.as_u64().map(i128::from));
    match value {
        Value::Number(n) => {
            let value_int = n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from));
            match (pattern_int, value_int) {
                (Some(a), Some(b)) => a == b,
                _ => floats_equal(pattern.as_f64(), n.as_f64()),
            }
        }
        Value::String(s) => match pattern_int {
            Some(a) => s.parse::<i128>().is_ok_and(|b| a == b),
            None => floats_equal(pattern.as_f64(), s.parse::<f64>().ok()),
        },
        _ => false,
    }
}

/// Exact equality of two floats, when both are there.
fn floats_equal(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.partial_cmp(&b) == Some(Ordering::Equal),
        _ => false,
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// Equal (no operator).
    Eq,
    /// `!`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

impl Op {
    /// Whether this operator orders values (rather than testing equality).
    fn orders(self) -> bool {
        matches!(self, Op::Gt | Op::Ge | Op::Lt | Op::Le)
    }

    /// Whether `value <op> operand` holds, given how value compares to operand.
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Eq => ordering == Ordering::Equal,
            Op::Ne => ordering != Ordering::Equal,
            Op::Gt => ordering == Ordering::Greater,
            Op::Ge => ordering != Ordering::Less,
            Op::Lt => ordering == Ordering::Less,
            Op::Le => ordering != Ordering::Greater,
        }
    }

    /// The operator as written.
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "",
            Op::Ne => "!",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }
}

/// One condition of a string pattern (a part between `|` and `&`).
#[derive(Debug, Clone, Copy)]
enum Condition<'p> {
    /// `""`: absent, null or empty.
    Empty,
    /// An operator and its operand.
    Compare(Op, &'p str),
    /// `lo-hi` (inclusive) or, when `outside`, `lo!-hi`.
    Range {
        /// The lower bound.
        lo: &'p str,
        /// The upper bound.
        hi: &'p str,
        /// `!-`: the value must be outside the range.
        outside: bool,
    },
}

/// Parses one condition (already trimmed). `Err` when it is invalid.
fn parse_condition(cond: &str) -> Result<Condition<'_>, String> {
    if cond.is_empty() {
        return Ok(Condition::Empty);
    }
    let (op, operand) = if let Some(rest) = cond.strip_prefix(">=") {
        (Op::Ge, rest)
    } else if let Some(rest) = cond.strip_prefix("<=") {
        (Op::Le, rest)
    } else if let Some(rest) = cond.strip_prefix('>') {
        (Op::Gt, rest)
    } else if let Some(rest) = cond.strip_prefix('<') {
        (Op::Lt, rest)
    } else if let Some(rest) = cond.strip_prefix('!') {
        (Op::Ne, rest)
    } else if let Some(range) = parse_range(cond)? {
        return Ok(range);
    } else {
        (Op::Eq, cond)
    };
    let operand = operand.trim();
    if operand.is_empty() {
        return Err(format!(
            "operator {} in {} has no operand",
            op.symbol(),
            quoted(cond)
        ));
    }
    if op.orders()
        && parse_duration(operand).is_none()
        && Quantity::parse(operand).is_none()
        && Version::parse(operand).is_none()
    {
        return Err(format!(
            "the operand of {} in {} is not a number, quantity, duration or version",
            op.symbol(),
            quoted(cond)
        ));
    }
    Ok(Condition::Compare(op, operand))
}

/// Parses `lo-hi` / `lo!-hi` (both bounds starting with a digit, a single `-`); `Ok(None)`
/// when `cond` is not a range. `Err` when a bound is not a number, quantity or duration.
fn parse_range(cond: &str) -> Result<Option<Condition<'_>>, String> {
    let mut dashes = cond.match_indices('-');
    let Some((at, _)) = dashes.next() else {
        return Ok(None);
    };
    if dashes.next().is_some() {
        return Ok(None);
    }
    let (left, right) = (&cond[..at], &cond[at + 1..]);
    let (lo, outside) = match left.strip_suffix('!') {
        Some(lo) => (lo, true),
        None => (left, false),
    };
    let starts_with_digit = |s: &str| s.bytes().next().is_some_and(|b| b.is_ascii_digit());
    if !starts_with_digit(lo) || !starts_with_digit(right) {
        return Ok(None);
    }
    for bound in [lo, right] {
        if parse_duration(bound).is_none() && Quantity::parse(bound).is_none() {
            return Err(format!(
                "range bound {} in {} is not a number, quantity or duration",
                quoted(bound),
                quoted(cond)
            ));
        }
    }
    Ok(Some(Condition::Range {
        lo,
        hi: right,
        outside,
    }))
}

/// The conditions of a string pattern: alternatives (`|`) of conjunctions (`&`).
fn alternatives(pattern: &str) -> impl Iterator<Item = impl Iterator<Item = &str>> {
    pattern.split('|').map(|alt| alt.split('&').map(str::trim))
}

/// Whether a value (`None` when absent or null) matches a string pattern.
fn string_holds(value: Option<&Value>, pattern: &str) -> Result<bool, String> {
    if let Some(Value::String(s)) = value
        && s == pattern
    {
        return Ok(true);
    }
    for conjunction in alternatives(pattern) {
        let mut all = true;
        for cond in conjunction {
            if !condition_holds(value, parse_condition(cond)?) {
                all = false;
                break;
            }
        }
        if all {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether a value (`None` when absent or null) meets one condition.
fn condition_holds(value: Option<&Value>, condition: Condition<'_>) -> bool {
    let Some(value) = value else {
        // Absent fields match only the "no value" pattern.
        return matches!(condition, Condition::Empty);
    };
    match condition {
        Condition::Empty => value.as_str() == Some(""),
        Condition::Compare(op, operand) => compare(value, op, operand),
        Condition::Range { lo, hi, outside } => {
            if outside {
                compare(value, Op::Lt, lo) || compare(value, Op::Gt, hi)
            } else {
                compare(value, Op::Ge, lo) && compare(value, Op::Le, hi)
            }
        }
    }
}

/// Whether `value <op> operand` holds: numerically on durations, quantities and (for
/// ordering) versions, else by a wildcard match of the value's text (equality only).
pub(super) fn compare(value: &Value, op: Op, operand: &str) -> bool {
    let text = match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    if let Some(text) = &text {
        if let (Some(a), Some(b)) = (parse_duration(text), parse_duration(operand)) {
            return op.holds(a.cmp(&b));
        }
        if let (Some(a), Some(b)) = (Quantity::parse(text), Quantity::parse(operand)) {
            return op.holds(a.compare(&b));
        }
        if op.orders() {
            if let (Some(a), Some(b)) = (Version::parse(text), Version::parse(operand)) {
                return op.holds(a.compare(&b));
            }
            return false;
        }
    }
    let shown = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null | Value::Array(_) | Value::Object(_) => return false,
    };
    match op {
        Op::Eq => wildcard(operand, &shown),
        Op::Ne => !wildcard(operand, &shown),
        Op::Gt | Op::Ge | Op::Lt | Op::Le => false,
    }
}

// ---------------------------------------------------------------------------------------
// Durations, quantities, versions
// ---------------------------------------------------------------------------------------

/// Splits a leading run of ASCII digits off `s`.
fn split_digits(s: &str) -> (&str, &str) {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    s.split_at(n)
}

/// Splits a leading sign off `s`: whether it is negative, and the rest.
fn split_sign(s: &str) -> (bool, &str) {
    if let Some(rest) = s.strip_prefix('-') {
        (true, rest)
    } else {
        (false, s.strip_prefix('+').unwrap_or(s))
    }
}

/// Parses a Go-style duration (`300ms`, `1.5h`, `2h45m`, `0`) into nanoseconds.
pub(super) fn parse_duration(s: &str) -> Option<i128> {
    let (negative, mut rest) = split_sign(s);
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let (int_digits, after) = split_digits(rest);
        let (frac_digits, after) = match after.strip_prefix('.') {
            Some(after) => split_digits(after),
            None => ("", after),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return None;
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let whole: i128 = if int_digits.is_empty() {
            0
        } else {
            int_digits.parse().ok()?
        };
        let mut part = whole.checked_mul(scale)?;
        if !frac_digits.is_empty() {
            // Digits beyond nanosecond precision do not change the result.
            let kept = &frac_digits[..frac_digits.len().min(20)];
            let fraction: i128 = kept.parse().ok()?;
            let denominator = 10_i128.checked_pow(u32::try_from(kept.len()).ok()?)?;
            part = part.checked_add(fraction.checked_mul(scale)? / denominator)?;
        }
        total = total.checked_add(part)?;
        rest = after;
    }
    Some(if negative { -total } else { total })
}

/// A Kubernetes quantity (`1Gi`, `100m`, `1.5`, `2e3`), kept exact:
/// `digits × 10^exp10 × 2^exp2`.
#[derive(Debug, Clone)]
struct Quantity {
    /// Whether it is below zero.
    negative: bool,
    /// The decimal digits of the mantissa, most significant first.
    digits: Vec<u8>,
    /// The power of ten applied.
    exp10: i32,
    /// The power of two applied (binary suffixes).
    exp2: i32,
}

/// Most mantissa digits a quantity may have.
const MAX_QUANTITY_DIGITS: usize = 64;

/// Largest power of ten a quantity may carry.
const MAX_QUANTITY_EXP: i32 = 1_000;

impl Quantity {
    /// Parses a quantity: `[+-]digits[.digits]` then a suffix (`Ki`..`Ei`, `n`, `u`, `m`,
    /// `k`, `M`..`E`, or `e`/`E` and an exponent).
    fn parse(s: &str) -> Option<Self> {
        let (negative, rest) = split_sign(s);
        let (int_digits, rest) = split_digits(rest);
        let (frac_digits, suffix) = match rest.strip_prefix('.') {
            Some(rest) => split_digits(rest),
            None => ("", rest),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return None;
        }
        if int_digits.len() + frac_digits.len() > MAX_QUANTITY_DIGITS {
            return None;
        }
        let (exp10, exp2) = match suffix {
            "" => (0, 0),
            "n" => (-9, 0),
            "u" => (-6, 0),
            "m" => (-3, 0),
            "k" => (3, 0),
            "M" => (6, 0),
            "G" => (9, 0),
            "T" => (12, 0),
            "P" => (15, 0),
            "E" => (18, 0),
            "Ki" => (0, 10),
            "Mi" => (0, 20),
            "Gi" => (0, 30),
            "Ti" => (0, 40),
            "Pi" => (0, 50),
            "Ei" => (0, 60),
            other => {
                let exponent = other.strip_prefix(['e', 'E'])?;
                let (_, digits) = split_sign(exponent);
                if digits.is_empty()
                    || digits.len() > 5
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                (exponent.parse::<i32>().ok()?, 0)
            }
        };
        if exp10.abs() > MAX_QUANTITY_EXP {
            return None;
        }
        let digits = int_digits
            .bytes()
            .chain(frac_digits.bytes())
            .map(|b| b - b'0')
            .collect();
        Some(Quantity {
            negative,
            digits,
            exp10: exp10 - i32::try_from(frac_digits.len()).ok()?,
            exp2,
        })
    }

    /// Whether it is zero.
    fn is_zero(&self) -> bool {
        self.digits.iter().all(|&d| d == 0)
    }

    /// -1, 0 or 1.
    fn sign(&self) -> i8 {
        match (self.is_zero(), self.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }

    /// Roughly the base-10 logarithm of the absolute value (non-zero quantities only).
    fn magnitude(&self) -> f64 {
        let significant = self.digits.iter().skip_while(|&&d| d == 0).count();
        (significant as f64 - 1.0)
            + f64::from(self.exp10)
            + f64::from(self.exp2) * std::f64::consts::LOG10_2
    }

    /// Exact comparison.
    fn compare(&self, other: &Self) -> Ordering {
        let (a, b) = (self.sign(), other.sign());
        if a != b || a == 0 {
            return a.cmp(&b);
        }
        // Far apart in size: decided without exact arithmetic (which costs one big-integer
        // multiplication per power of ten between the exponents).
        let (ma, mb) = (self.magnitude(), other.magnitude());
        if (ma - mb).abs() > 2.0 {
            let magnitude = if ma < mb {
                Ordering::Less
            } else {
                Ordering::Greater
            };
            return if a < 0 {
                magnitude.reverse()
            } else {
                magnitude
            };
        }
        let exp10 = self.exp10.min(other.exp10);
        let exp2 = self.exp2.min(other.exp2);
        let x = self.scaled(self.exp10 - exp10, self.exp2 - exp2);
        let y = other.scaled(other.exp10 - exp10, other.exp2 - exp2);
        let magnitude = compare_big(&x, &y);
        if a < 0 {
            magnitude.reverse()
        } else {
            magnitude
        }
    }

    /// The mantissa times `10^pow10 × 2^pow2` as a big integer (little-endian limbs).
    fn scaled(&self, pow10: i32, pow2: i32) -> Vec<u32> {
        let mut n = Vec::new();
        for &d in &self.digits {
            mul_add(&mut n, 10, u32::from(d));
        }
        for _ in 0..pow10 {
            mul_add(&mut n, 10, 0);
        }
        for _ in 0..pow2 {
            mul_add(&mut n, 2, 0);
        }
        n
    }
}

/// `n = n × m + add` on a little-endian big integer.
fn mul_add(n: &mut Vec<u32>, m: u32, add: u32) {
    let mut carry = u64::from(add);
    for limb in n.iter_mut() {
        let v = u64::from(*limb) * u64::from(m) + carry;
        *limb = v as u32;
        carry = v >> 32;
    }
    if carry > 0 {
        n.push(carry as u32);
    }
}

/// Compares two little-endian big integers.
fn compare_big(a: &[u32], b: &[u32]) -> Ordering {
    let significant = |n: &[u32]| n.len() - n.iter().rev().take_while(|&&l| l == 0).count();
    let (la, lb) = (significant(a), significant(b));
    la.cmp(&lb)
        .then_with(|| a[..la].iter().rev().cmp(b[..lb].iter().rev()))
}

/// A semantic version `major.minor.patch[-pre][+build]`.
#[derive(Debug, Clone)]
struct Version<'s> {
    /// Major, minor, patch.
    core: [u64; 3],
    /// The pre-release identifiers (empty for a release).
    pre: Vec<&'s str>,
}

impl<'s> Version<'s> {
    /// Parses a semantic version; build metadata is ignored.
    fn parse(s: &'s str) -> Option<Self> {
        let s = s.split_once('+').map_or(s, |(head, _)| head);
        let (core, pre) = match s.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (s, None),
        };
        let mut parts = core.split('.');
        let mut numbers = [0_u64; 3];
        for slot in &mut numbers {
            let part = parts.next()?;
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *slot = part.parse().ok()?;
        }
        if parts.next().is_some() {
            return None;
        }
        let pre = match pre {
            None => Vec::new(),
            Some(pre) => {
                let ids: Vec<&str> = pre.split('.').collect();
                if ids.iter().any(|id| {
                    id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                }) {
                    return None;
                }
                ids
            }
        };
        Some(Version { core: numbers, pre })
    }

    /// Semantic-version precedence.
    fn compare(&self, other: &Self) -> Ordering {
        self.core
            .cmp(&other.core)
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&other.pre) {
                        let ordering = compare_identifier(a, b);
                        if ordering != Ordering::Equal {
                            return ordering;
                        }
                    }
                    self.pre.len().cmp(&other.pre.len())
                }
            })
    }
}

/// Compares two pre-release identifiers: numeric ones by value and below alphanumeric
/// ones, alphanumeric ones by ASCII order.
fn compare_identifier(a: &str, b: &str) -> Ordering {
    let numeric = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    match (numeric(a), numeric(b)) {
        (true, true) => {
            let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
            a.len().cmp(&b.len()).then_with(|| a.cmp(b))
        }
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

// ---------------------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------------------

/// A pattern error at the current path.
fn pattern_error(trail: &[Seg<'_>], message: impl Into<String>) -> PatternError {
    PatternError {
        field: render(trail),
        message: message.into(),
    }
}

/// Checks one node of a pattern.
fn check_node<'a>(
    pat: &'a Value,
    trail: &mut Vec<Seg<'a>>,
    depth: usize,
) -> Result<(), PatternError> {
    if depth > MAX_DEPTH {
        return Err(pattern_error(
            trail,
            format!("the pattern is nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    match pat {
        Value::Object(map) => {
            for (raw, value) in map {
                trail.push(Seg::Key(raw));
                let result = check_entry(raw, value, trail, depth);
                trail.pop();
                result?;
            }
            Ok(())
        }
        Value::Array(items) => {
            let Some(first) = items.first() else {
                return Err(pattern_error(
                    trail,
                    "an empty list matches nothing: give one element",
                ));
            };
            if !first.is_array() && items.len() > 1 {
                return Err(pattern_error(
                    trail,
                    format!(
                        "a list pattern has one element, applied to every element of the list \
                         (found {}; use ^(key) to require at least one match)",
                        items.len()
                    ),
                ));
            }
            check_items(items, trail, depth)
        }
        Value::String(s) => check_string(s).map_err(|message| pattern_error(trail, message)),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

/// Checks each element of a pattern list.
fn check_items<'a>(
    items: &'a [Value],
    trail: &mut Vec<Seg<'a>>,
    depth: usize,
) -> Result<(), PatternError> {
    for (i, item) in items.iter().enumerate() {
        trail.push(Seg::Index(i));
        let result = check_node(item, trail, depth + 1);
        trail.pop();
        result?;
    }
    Ok(())
}

/// Checks one key of a pattern map and its value; the current path ends with the key.
fn check_entry<'a>(
    raw: &str,
    value: &'a Value,
    trail: &mut Vec<Seg<'a>>,
    depth: usize,
) -> Result<(), PatternError> {
    let (anchor, key) = parse_key(raw).map_err(|message| pattern_error(trail, message))?;
    match anchor {
        // The value of a negation anchor is not evaluated.
        Anchor::Negation => Ok(()),
        Anchor::Existence => match value {
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
                check_items(items, trail, depth)
            }
            _ => Err(pattern_error(
                trail,
                format!("existence anchor ^({key}) needs a non-empty list of maps"),
            )),
        },
        Anchor::Plain | Anchor::Conditional | Anchor::Equality | Anchor::Global => {
            check_node(value, trail, depth + 1)
        }
    }
}

/// Checks a string pattern: every condition must parse.
fn check_string(pattern: &str) -> Result<(), String> {
    // Variables are filled in before the pattern is matched; it is checked then.
    if pattern.contains("{{") {
        return Ok(());
    }
    for conjunction in alternatives(pattern) {
        for cond in conjunction {
            parse_condition(cond)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn fails_at(outcome: &Outcome, want_path: &str) -> String {
        match outcome {
            Outcome::Fail { path, message } => {
                assert_eq!(path, want_path, "message: {message}");
                message.clone()
            }
            other => panic!("expected a failure at {want_path}, got {other:?}"),
        }
    }

    fn passes(resource: &Value, pattern: &Value) -> bool {
        assert_eq!(check(pattern), Ok(()), "pattern {pattern} should be valid");
        match validate(resource, pattern) {
            Outcome::Pass => true,
            Outcome::Fail { .. } => false,
            Outcome::Skip { reason } => panic!("unexpected skip: {reason}"),
        }
    }

    /// A single value against a single-value pattern, as a field of a map.
    fn value_matches(value: Value, pattern: &str) -> bool {
        let mut resource = Map::new();
        resource.insert("f".to_owned(), value);
        passes(&Value::Object(resource), &json!({ "f": pattern }))
    }

    #[test]
    fn plain_fields_must_equal_and_paths_name_the_place() {
        let pattern = json!({"metadata": {"labels": {"purpose": "production"}}});
        let good = json!({"kind": "Namespace", "metadata": {"name": "a", "labels": {"purpose": "production"}}});
        assert_eq!(validate(&good, &pattern), Outcome::Pass);
        let bad = json!({"metadata": {"labels": {"purpose": "development"}}});
        let message = fails_at(&validate(&bad, &pattern), "metadata.labels.purpose");
        assert_eq!(
            message,
            r#"value "development" does not match "production""#
        );
    }

    #[test]
    fn missing_fields_fail_and_undefined_fields_are_ignored() {
        let pattern = json!({"metadata": {"labels": {"purpose": "production"}}});
        let no_labels = json!({"metadata": {"name": "a"}});
        let message = fails_at(&validate(&no_labels, &pattern), "metadata.labels");
        assert!(message.contains("field is required"), "{message}");
        let no_key = json!({"metadata": {"labels": {}}});
        let message = fails_at(&validate(&no_key, &pattern), "metadata.labels.purpose");
        assert!(message.contains("field is required"), "{message}");
        // Fields the pattern does not name are wildcards.
        let extra = json!({"metadata": {"labels": {"purpose": "production", "x": "y"}, "uid": 1}, "spec": {}});
        assert!(passes(&extra, &pattern));
    }

    #[test]
    fn star_matches_any_present_value_but_not_absent_or_null() {
        let pattern = json!({"spec": {"name": "*"}});
        assert!(passes(&json!({"spec": {"name": ""}}), &pattern));
        assert!(passes(&json!({"spec": {"name": "x"}}), &pattern));
        assert!(passes(&json!({"spec": {"name": {"a": 1}}}), &pattern));
        assert!(!passes(&json!({"spec": {"name": null}}), &pattern));
        let message = fails_at(&validate(&json!({"spec": {}}), &pattern), "spec.name");
        assert!(message.contains("field is required"), "{message}");
        // Inside a string.
        assert!(value_matches(json!("nginx:latest"), "*:latest"));
        assert!(value_matches(
            json!("corp.reg.com/team/app:1"),
            "corp.reg.com/*"
        ));
        assert!(!value_matches(json!("other.io/app"), "corp.reg.com/*"));
        assert!(value_matches(json!("ab"), "a*b"));
        assert!(value_matches(json!("a*b"), "a*b"));
    }

    #[test]
    fn question_mark_matches_one_character_and_question_star_needs_a_value() {
        assert!(value_matches(json!("a"), "?"));
        assert!(!value_matches(json!(""), "?"));
        assert!(!value_matches(json!("ab"), "?"));
        assert!(value_matches(json!("v1"), "v?"));
        assert!(value_matches(json!("x"), "?*"));
        assert!(value_matches(json!("a long value"), "?*"));
        assert!(!value_matches(json!(""), "?*"));
        assert!(!passes(&json!({}), &json!({"f": "?*"})));
        assert!(!passes(&json!({"f": null}), &json!({"f": "?*"})));
    }

    #[test]
    fn null_and_empty_string_want_no_value() {
        let null = json!({"f": null});
        for ok in [
            json!({}),
            json!({"f": null}),
            json!({"f": ""}),
            json!({"f": 0}),
            json!({"f": false}),
        ] {
            assert!(passes(&ok, &null), "{ok}");
        }
        for bad in [
            json!({"f": "x"}),
            json!({"f": 1}),
            json!({"f": true}),
            json!({"f": {"a": 1}}),
        ] {
            assert!(!passes(&bad, &null), "{bad}");
        }
        let empty = json!({"f": ""});
        for ok in [json!({}), json!({"f": null}), json!({"f": ""})] {
            assert!(passes(&ok, &empty), "{ok}");
        }
        for bad in [json!({"f": "x"}), json!({"f": 0}), json!({"f": {}})] {
            assert!(!passes(&bad, &empty), "{bad}");
        }
    }

    #[test]
    fn not_operator_negates() {
        assert!(value_matches(json!("Always"), "!IfNotPresent"));
        assert!(!value_matches(json!("IfNotPresent"), "!IfNotPresent"));
        assert!(value_matches(json!("nginx:1.25"), "!*:latest"));
        assert!(!value_matches(json!("nginx:latest"), "!*:latest"));
        assert!(value_matches(json!(3), "!2"));
        assert!(!value_matches(json!("1024Mi"), "!1Gi"));
        // An absent field is not "not equal": it is missing.
        assert!(!passes(&json!({}), &json!({"f": "!x"})));
    }

    #[test]
    fn ordering_operators_compare_numbers() {
        let pattern = json!({"spec": {"replicas": ">=2"}});
        assert!(passes(&json!({"spec": {"replicas": 2}}), &pattern));
        assert!(passes(&json!({"spec": {"replicas": 3}}), &pattern));
        let message = fails_at(
            &validate(&json!({"spec": {"replicas": 1}}), &pattern),
            "spec.replicas",
        );
        assert_eq!(message, r#"value 1 does not match ">=2""#);
        assert!(value_matches(json!(5), ">4"));
        assert!(!value_matches(json!(4), ">4"));
        assert!(value_matches(json!(4), "<=4"));
        assert!(!value_matches(json!(5), "<=4"));
        assert!(value_matches(json!(3.5), "<4"));
        assert!(value_matches(json!("10"), ">9"));
        assert!(value_matches(json!(-3), "<-2"));
        // Ordering never holds on text that is not a number.
        assert!(!value_matches(json!("abc"), ">1"));
        assert!(!value_matches(json!(true), ">0"));
    }

    #[test]
    fn or_operator_accepts_any_alternative() {
        assert!(value_matches(json!("Always"), "Always|IfNotPresent"));
        assert!(value_matches(
            json!("IfNotPresent"),
            "Always | IfNotPresent"
        ));
        assert!(!value_matches(json!("Never"), "Always|IfNotPresent"));
        assert!(value_matches(json!(1), "<2|>10"));
        assert!(value_matches(json!(11), "<2|>10"));
        assert!(!value_matches(json!(5), "<2|>10"));
    }

    #[test]
    fn and_operator_needs_every_part() {
        assert!(value_matches(json!(3), ">1 & <5"));
        assert!(!value_matches(json!(5), ">1&<5"));
        assert!(value_matches(json!("prod-a"), "prod-*&!*-test"));
        assert!(!value_matches(json!("prod-test"), "prod-*&!*-test"));
        // `|` binds loosest.
        assert!(value_matches(json!(20), ">1&<5|>10&<30"));
        assert!(!value_matches(json!(7), ">1&<5|>10&<30"));
    }

    #[test]
    fn ranges_are_inclusive_and_can_be_negated() {
        for (n, inside) in [(0, false), (1, true), (5, true), (10, true), (11, false)] {
            assert_eq!(value_matches(json!(n), "1-10"), inside, "{n}");
            assert_eq!(value_matches(json!(n), "1!-10"), !inside, "{n}");
        }
        assert!(value_matches(json!(1.5), "1.2-1.8"));
        assert!(value_matches(json!("1536Mi"), "1Gi-2Gi"));
        assert!(!value_matches(json!("3Gi"), "1Gi-2Gi"));
        assert!(value_matches(json!("3Gi"), "1Gi!-2Gi"));
        assert!(value_matches(json!("90m"), "1h-2h"));
        // Not a number at all: neither inside nor outside.
        assert!(!value_matches(json!("abc"), "1-10"));
        assert!(!value_matches(json!("abc"), "1!-10"));
        // A hyphen in a word is a literal.
        assert!(value_matches(json!("my-app"), "my-app"));
        assert!(value_matches(json!("1.21-alpine"), "1.21-alpine"));
    }

    #[test]
    fn quantities_compare_by_value() {
        assert!(value_matches(json!("512Mi"), "<=1Gi"));
        assert!(value_matches(json!("1Gi"), "<=1Gi"));
        assert!(value_matches(json!("1024Mi"), "<=1Gi"));
        assert!(!value_matches(json!("2Gi"), "<=1Gi"));
        assert!(!value_matches(json!("1073741825"), "<=1Gi"));
        assert!(value_matches(json!("200m"), ">100m"));
        assert!(value_matches(json!("0.5"), ">100m"));
        assert!(value_matches(json!(1), ">100m"));
        assert!(!value_matches(json!("50m"), ">100m"));
        assert!(value_matches(json!("1024Mi"), "1Gi"));
        assert!(value_matches(json!("1000"), "1k"));
        assert!(value_matches(json!("1e3"), "1k"));
        assert!(value_matches(json!("1.5"), "1500m"));
        assert!(value_matches(json!("1G"), "<1Gi"));
        assert!(value_matches(json!("-1"), "<0"));
        assert!(value_matches(json!("100n"), "<1u"));
        assert!(value_matches(json!("1e1000"), ">1e-1000"));
        assert!(value_matches(json!("-1e1000"), "<-1e-1000"));
        assert!(value_matches(json!("0.000001"), "1u"));
        assert!(value_matches(json!("1000000000000000000001"), ">1E"));
        assert!(value_matches(json!("1152921504606846976"), "1Ei"));
        assert!(!value_matches(json!("1152921504606846975"), ">=1Ei"));
    }

    #[test]
    fn durations_compare_by_length() {
        assert!(value_matches(json!("90m"), ">=1h"));
        assert!(!value_matches(json!("30m"), ">=1h"));
        assert!(value_matches(json!("1h30m"), ">1h"));
        assert!(value_matches(json!("11h59m59s"), "<12h"));
        assert!(!value_matches(json!("12h"), "<12h"));
        assert!(value_matches(json!("1.5h"), "90m"));
        assert!(value_matches(json!("500ms"), "<1s"));
        assert!(value_matches(json!("10us"), ">=10000ns"));
    }

    #[test]
    fn versions_compare_by_precedence() {
        assert!(value_matches(json!("1.10.0"), ">1.4.1"));
        assert!(!value_matches(json!("1.4.0"), ">1.4.1"));
        assert!(value_matches(json!("1.4.1"), ">=1.4.1"));
        assert!(value_matches(json!("1.0.0-rc.1"), "<1.0.0"));
        assert!(value_matches(json!("1.0.0-alpha"), "<1.0.0-alpha.1"));
    }

    #[test]
    fn numbers_strings_and_booleans() {
        // A number pattern matches the number, however written, or a numeric string.
        assert!(passes(&json!({"f": 2}), &json!({"f": 2})));
        assert!(passes(&json!({"f": 2.0}), &json!({"f": 2})));
        assert!(passes(&json!({"f": "2"}), &json!({"f": 2})));
        assert!(!passes(&json!({"f": 2.5}), &json!({"f": 2})));
        assert!(passes(&json!({"f": "1.5"}), &json!({"f": 1.5})));
        assert!(passes(&json!({"f": 2}), &json!({"f": 2.0})));
        assert!(!passes(&json!({"f": "two"}), &json!({"f": 2})));
        // A string pattern matches a number or boolean by its text.
        assert!(value_matches(json!(2), "2"));
        assert!(value_matches(json!(false), "false"));
        assert!(!value_matches(json!(true), "false"));
        // A boolean pattern wants a boolean.
        assert!(passes(&json!({"f": false}), &json!({"f": false})));
        assert!(!passes(&json!({"f": "false"}), &json!({"f": false})));
        let message = fails_at(&validate(&json!({"f": true}), &json!({"f": false})), "f");
        assert_eq!(message, "value true does not match false");
        // A map where a single value is wanted.
        assert!(!passes(&json!({"f": {"a": 1}}), &json!({"f": "x"})));
        assert!(!passes(&json!({"f": "x"}), &json!({"f": {"a": "x"}})));
    }

    #[test]
    fn list_of_maps_applies_to_every_element() {
        let pattern = json!({"spec": {"containers": [{"name": "*", "image": "!*:latest"}]}});
        let good = json!({"spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}]}});
        assert!(passes(&good, &pattern));
        let bad = json!({"spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:latest"}]}});
        let message = fails_at(&validate(&bad, &pattern), "spec.containers[1].image");
        assert!(message.contains("b:latest"), "{message}");
        assert!(passes(&json!({"spec": {"containers": []}}), &pattern));
        let message = fails_at(
            &validate(&json!({"spec": {"containers": {}}}), &pattern),
            "spec.containers",
        );
        assert!(message.contains("expected a list"), "{message}");
        let pattern =
            json!({"spec": {"containers": [{"securityContext": {"privileged": "false"}}]}});
        let bad = json!({"spec": {"containers": [{"securityContext": {"privileged": true}}]}});
        let message = fails_at(
            &validate(&bad, &pattern),
            "spec.containers[0].securityContext.privileged",
        );
        assert_eq!(message, r#"value true does not match "false""#);
    }

    #[test]
    fn list_of_scalars_and_scalar_against_list() {
        let pattern = json!({"args": ["--*"]});
        assert!(passes(&json!({"args": ["--a", "--b"]}), &pattern));
        let message = fails_at(
            &validate(&json!({"args": ["--a", "b"]}), &pattern),
            "args[1]",
        );
        assert!(message.contains("\"b\""), "{message}");
        // A single value against a list applies to every element.
        let pattern = json!({"args": "!*privileged*"});
        assert!(passes(&json!({"args": ["a", "b"]}), &pattern));
        assert!(!passes(&json!({"args": ["a", "--privileged"]}), &pattern));
        // Lists of lists are matched by position.
        let pattern = json!({"m": [["a"], ["b*"]]});
        assert!(passes(&json!({"m": [["a"], ["bc"], ["z"]]}), &pattern));
        assert!(!passes(&json!({"m": [["a"]]}), &pattern));
    }

    #[test]
    fn conditional_anchor_guards_its_peers() {
        let pattern = json!({"spec": {"containers": [{"(image)": "*:latest", "imagePullPolicy": "!IfNotPresent"}]}});
        let latest_ok = json!({"spec": {"containers": [{"image": "nginx:latest", "imagePullPolicy": "Always"}]}});
        assert!(passes(&latest_ok, &pattern));
        let latest_bad = json!({"spec": {"containers": [
            {"image": "a:1", "imagePullPolicy": "IfNotPresent"},
            {"image": "nginx:latest", "imagePullPolicy": "IfNotPresent"}
        ]}});
        fails_at(
            &validate(&latest_bad, &pattern),
            "spec.containers[1].imagePullPolicy",
        );
        let pinned = json!({"spec": {"containers": [{"image": "nginx:1", "imagePullPolicy": "IfNotPresent"}]}});
        assert!(passes(&pinned, &pattern));
        // Condition key absent: the block is not checked.
        assert!(passes(
            &json!({"spec": {"containers": [{"imagePullPolicy": "IfNotPresent"}]}}),
            &pattern
        ));
        // A condition that does not hold leaves sibling blocks checked.
        let pattern = json!({"a": {"(k)": "v", "x": "1"}, "b": "2"});
        assert!(passes(&json!({"a": {"k": "other"}, "b": "2"}), &pattern));
        fails_at(
            &validate(&json!({"a": {"k": "other"}, "b": "3"}), &pattern),
            "b",
        );
    }

    #[test]
    fn conditional_anchors_nest_through_lists() {
        let pattern = json!({
            "metadata": {"labels": {"allow-docker": "true"}},
            "(spec)": {"(volumes)": [{"(hostPath)": {"path": "/var/run/docker.sock"}}]}
        });
        let docker = json!({"metadata": {"labels": {}}, "spec": {"volumes": [
            {"name": "a", "emptyDir": {}},
            {"name": "b", "hostPath": {"path": "/var/run/docker.sock"}}
        ]}});
        let message = fails_at(
            &validate(&docker, &pattern),
            r#"metadata.labels["allow-docker"]"#,
        );
        assert!(message.contains("field is required"), "{message}");
        let mut allowed = docker.clone();
        allowed["metadata"]["labels"]["allow-docker"] = json!("true");
        assert!(passes(&allowed, &pattern));
        let other_path = json!({"metadata": {"labels": {}}, "spec": {"volumes": [
            {"name": "b", "hostPath": {"path": "/tmp"}}
        ]}});
        assert!(passes(&other_path, &pattern));
        let no_host_path =
            json!({"metadata": {}, "spec": {"volumes": [{"name": "a", "emptyDir": {}}]}});
        assert!(passes(&no_host_path, &pattern));
        assert!(passes(&json!({"metadata": {}, "spec": {}}), &pattern));
    }

    #[test]
    fn equality_anchor_checks_only_when_present() {
        let pattern = json!({"=(spec)": {"=(volumes)": [{"=(hostPath)": {"path": "!/var/run/docker.sock"}}]}});
        assert!(passes(&json!({}), &pattern));
        assert!(passes(&json!({"spec": {}}), &pattern));
        assert!(passes(
            &json!({"spec": {"volumes": [{"emptyDir": {}}]}}),
            &pattern
        ));
        assert!(passes(
            &json!({"spec": {"volumes": [{"hostPath": {"path": "/tmp"}}]}}),
            &pattern
        ));
        let bad = json!({"spec": {"volumes": [{"emptyDir": {}}, {"hostPath": {"path": "/var/run/docker.sock"}}]}});
        fails_at(&validate(&bad, &pattern), "spec.volumes[1].hostPath.path");
        let pattern = json!({"spec": {"=(hostNetwork)": false}});
        assert!(passes(&json!({"spec": {}}), &pattern));
        assert!(passes(&json!({"spec": {"hostNetwork": false}}), &pattern));
        assert!(!passes(&json!({"spec": {"hostNetwork": true}}), &pattern));
    }

    #[test]
    fn negation_anchor_forbids_the_key() {
        let pattern = json!({"spec": {"volumes": [{"X(hostPath)": "null"}]}});
        assert!(passes(
            &json!({"spec": {"volumes": [{"emptyDir": {}}]}}),
            &pattern
        ));
        let bad = json!({"spec": {"volumes": [{"emptyDir": {}}, {"hostPath": {"path": "/"}}]}});
        let message = fails_at(&validate(&bad, &pattern), "spec.volumes[1].hostPath");
        assert!(message.contains("not allowed"), "{message}");
        // Present with any value, even null, is forbidden.
        assert!(!passes(
            &json!({"spec": {"volumes": [{"hostPath": null}]}}),
            &pattern
        ));
        // A wildcard key forbids every key it matches.
        let pattern = json!({"metadata": {"=(annotations)": {"X(fluxcd.io/*)": "*?"}}});
        assert!(passes(
            &json!({"metadata": {"annotations": {"a": "b"}}}),
            &pattern
        ));
        assert!(passes(&json!({"metadata": {}}), &pattern));
        let bad = json!({"metadata": {"annotations": {"fluxcd.io/automated": "true"}}});
        fails_at(
            &validate(&bad, &pattern),
            r#"metadata.annotations["fluxcd.io/automated"]"#,
        );
    }

    #[test]
    fn global_anchor_skips_the_rule() {
        let pattern = json!({"spec": {
            "containers": [{"name": "*", "<(image)": "corp.reg.com/*"}],
            "imagePullSecrets": [{"name": "my-registry-secret"}]
        }});
        let corp_bad = json!({"spec": {
            "containers": [{"name": "web", "image": "corp.reg.com/nginx"}],
            "imagePullSecrets": [{"name": "other-secret"}]
        }});
        fails_at(
            &validate(&corp_bad, &pattern),
            "spec.imagePullSecrets[0].name",
        );
        let corp_good = json!({"spec": {
            "containers": [{"name": "web", "image": "corp.reg.com/nginx"}, {"name": "side", "image": "docker.io/busybox"}],
            "imagePullSecrets": [{"name": "my-registry-secret"}]
        }});
        assert_eq!(validate(&corp_good, &pattern), Outcome::Pass);
        let elsewhere = json!({"spec": {
            "containers": [{"name": "web", "image": "docker.io/nginx"}],
            "imagePullSecrets": [{"name": "other-secret"}]
        }});
        match validate(&elsewhere, &pattern) {
            Outcome::Skip { reason } => {
                assert!(reason.contains("<(image)"), "{reason}");
                assert!(reason.contains("spec.containers[0].image"), "{reason}");
            }
            other => panic!("expected a skip, got {other:?}"),
        }
        // Only a global anchor skips; a conditional one passes.
        let conditional = json!({"(kind)": "Pod", "spec": "x"});
        assert_eq!(
            validate(&json!({"kind": "Service"}), &conditional),
            Outcome::Pass
        );
    }

    #[test]
    fn existence_anchor_needs_one_matching_element() {
        let pattern = json!({"spec": {"^(containers)": [{"image": "nginx:latest"}]}});
        let one =
            json!({"spec": {"containers": [{"image": "busybox"}, {"image": "nginx:latest"}]}});
        assert!(passes(&one, &pattern));
        let none = json!({"spec": {"containers": [{"image": "busybox"}, {"image": "nginx:1"}]}});
        let message = fails_at(&validate(&none, &pattern), "spec.containers");
        assert!(message.contains("no element"), "{message}");
        assert!(!passes(&json!({"spec": {"containers": []}}), &pattern));
        // As in Kyverno, an absent list is not checked.
        assert!(passes(&json!({"spec": {}}), &pattern));
        let message = fails_at(
            &validate(&json!({"spec": {"containers": "x"}}), &pattern),
            "spec.containers",
        );
        assert!(message.contains("applies to a list"), "{message}");
        // Several pattern elements: each needs its own match.
        let pattern = json!({"^(ports)": [{"port": 80}, {"port": 443}]});
        assert!(passes(
            &json!({"ports": [{"port": 443}, {"port": 80}]}),
            &pattern
        ));
        assert!(!passes(&json!({"ports": [{"port": 80}]}), &pattern));
    }

    #[test]
    fn wildcard_keys_stand_for_matching_keys() {
        let pattern = json!({"metadata": {"labels": {"app.kubernetes.io/*": "?*"}}});
        assert!(passes(
            &json!({"metadata": {"labels": {"app.kubernetes.io/name": "x"}}}),
            &pattern
        ));
        let message = fails_at(
            &validate(
                &json!({"metadata": {"labels": {"app.kubernetes.io/name": ""}}}),
                &pattern,
            ),
            r#"metadata.labels["app.kubernetes.io/name"]"#,
        );
        assert!(message.contains("does not match"), "{message}");
        let message = fails_at(
            &validate(&json!({"metadata": {"labels": {}}}), &pattern),
            r#"metadata.labels["app.kubernetes.io/*"]"#,
        );
        assert!(message.contains("field is required"), "{message}");
    }

    #[test]
    fn paths_quote_keys_that_are_not_identifiers() {
        assert_eq!(
            render(&[
                Seg::Key("metadata"),
                Seg::Key("annotations"),
                Seg::Key("a/b")
            ]),
            r#"metadata.annotations["a/b"]"#
        );
        assert_eq!(
            render(&[Seg::Key("a-b"), Seg::Index(2), Seg::Key("c_1")]),
            r#"["a-b"][2].c_1"#
        );
        assert_eq!(render(&[]), "");
        let outcome = validate(&json!("x"), &json!("y"));
        assert_eq!(fails_at(&outcome, ""), r#"value "x" does not match "y""#);
    }

    #[test]
    fn check_accepts_documented_patterns() {
        let patterns = [
            json!({"metadata": {"labels": {"purpose": "production"}}}),
            json!({"spec": {"containers": [{"name": "*", "resources": {"limits": {"memory": "?*"}, "requests": {"memory": "?*", "cpu": "?*"}}}]}}),
            json!({"spec": {"replicas": ">=2"}}),
            json!({"(spec)": {"(volumes)": [{"(hostPath)": {"path": "/var/run/docker.sock"}}]}}),
            json!({"=(spec)": {"=(volumes)": [{"=(hostPath)": {"path": "!/var/run/docker.sock"}}]}}),
            json!({"spec": {"^(containers)": [{"image": "nginx:latest"}]}}),
            json!({"spec": {"containers": [{"name": "*", "<(image)": "corp.reg.com/*"}]}}),
            json!({"spec": {"volumes": [{"X(hostPath)": "null"}]}}),
            json!({"a": "1-10", "b": "1Gi!-2Gi", "c": "<=1Gi & >100m", "d": "", "e": null, "f": "a|b|", "g": 1.5, "h": true}),
        ];
        for pattern in &patterns {
            assert_eq!(check(pattern), Ok(()), "{pattern}");
        }
    }

    #[test]
    fn check_rejects_invalid_patterns() {
        let cases = [
            (
                json!({"spec": {"replicas": ">="}}),
                "spec.replicas",
                "no operand",
            ),
            (json!({"a": "!"}), "a", "no operand"),
            (json!({"a": "x | <"}), "a", "no operand"),
            (json!({"a": ">abc"}), "a", "not a number"),
            (json!({"a": "1x-2y"}), "a", "range bound"),
            (json!({"a": []}), "a", "empty list"),
            (json!({"a": [{"b": 1}, {"c": 2}]}), "a", "one element"),
            (json!({"a": ["x", "y"]}), "a", "one element"),
            (json!({"^(a)": {"b": 1}}), r#"["^(a)"]"#, "existence anchor"),
            (json!({"^(a)": ["x"]}), r#"["^(a)"]"#, "existence anchor"),
            (json!({"b": {"=()": 1}}), r#"b["=()"]"#, "empty key"),
            (json!({"+(a)": 1}), r#"["+(a)"]"#, "mutate"),
            (json!({"=((a))": 1}), r#"["=((a))"]"#, "another anchor"),
            (json!({"l": [{"m": ">"}]}), "l[0].m", "no operand"),
        ];
        for (pattern, field, needle) in cases {
            let err = check(&pattern).expect_err(&pattern.to_string());
            assert_eq!(err.field, field, "{pattern}: {err}");
            assert!(err.message.contains(needle), "{pattern}: {err}");
        }
    }

    #[test]
    fn invalid_patterns_fail_in_validate_without_panicking() {
        let outcome = validate(&json!({"a": 1}), &json!({"a": ">"}));
        assert!(fails_at(&outcome, "a").contains("invalid pattern"));
        let outcome = validate(&json!({"a": [1]}), &json!({"a": []}));
        assert!(fails_at(&outcome, "a").contains("invalid pattern"));
        let outcome = validate(&json!({"a": [1]}), &json!({"^(a)": "x"}));
        assert!(fails_at(&outcome, "a").contains("invalid pattern"));
        let outcome = validate(&json!({"a": 1}), &json!({"+(a)": 1}));
        assert!(fails_at(&outcome, r#"["+(a)"]"#).contains("invalid pattern"));
    }

    #[test]
    fn depth_is_bounded() {
        let mut pattern = json!("x");
        let mut resource = json!("x");
        for _ in 0..(MAX_DEPTH + 10) {
            pattern = json!({ "a": pattern });
            resource = json!({ "a": resource });
        }
        let outcome = validate(&resource, &pattern);
        let Outcome::Fail { message, .. } = outcome else {
            panic!("expected a failure, got {outcome:?}");
        };
        assert!(message.contains("deeper"), "{message}");
        let err = check(&pattern).expect_err("too deep");
        assert!(err.message.contains("deeper"), "{err}");
        // Just under the limit is evaluated.
        let mut pattern = json!("x");
        let mut resource = json!("x");
        for _ in 0..(MAX_DEPTH - 1) {
            pattern = json!({ "a": pattern });
            resource = json!({ "a": resource });
        }
        assert_eq!(check(&pattern), Ok(()));
        assert_eq!(validate(&resource, &pattern), Outcome::Pass);
    }

    /// Nests `leaf` `levels` deep, alternating maps and lists, without recursion.
    fn nest(levels: usize, leaf: Value) -> Value {
        let mut value = leaf;
        for level in 0..levels {
            value = if level % 2 == 0 {
                Value::Array(vec![value])
            } else {
                let mut map = Map::new();
                map.insert("k".to_owned(), value);
                Value::Object(map)
            };
        }
        value
    }

    #[test]
    fn very_deep_values_return_instead_of_overflowing() {
        // Building and dropping serde_json values recurses, so this runs on a big stack;
        // the matcher itself stops at MAX_DEPTH.
        let worker = std::thread::Builder::new()
            .stack_size(256 * 1024 * 1024)
            .spawn(|| {
                let pattern = nest(10_000, json!("x"));
                let resource = nest(10_000, json!("x"));
                let shallow = nest(3, json!("x"));
                let deep_pattern = validate(&shallow, &pattern);
                let deep_both = validate(&resource, &pattern);
                let deep_resource = validate(&resource, &json!({"k": [{"k": "*"}]}));
                let checked = check(&pattern);
                (deep_pattern, deep_both, deep_resource, checked)
            })
            .expect("spawn");
        let (deep_pattern, deep_both, deep_resource, checked) = worker.join().expect("no overflow");
        assert!(matches!(deep_pattern, Outcome::Fail { .. }));
        let Outcome::Fail { message, .. } = deep_both else {
            panic!("expected a failure, got {deep_both:?}");
        };
        assert!(message.contains("deeper"), "{message}");
        assert_eq!(deep_resource, Outcome::Pass);
        assert!(checked.is_err());
    }

    #[test]
    fn quantity_and_duration_parsers() {
        assert!(Quantity::parse("1Gi").is_some());
        assert!(Quantity::parse(".5").is_some());
        assert!(Quantity::parse("5.").is_some());
        assert!(Quantity::parse("1e999999").is_none());
        assert!(Quantity::parse("abc").is_none());
        assert!(Quantity::parse("").is_none());
        assert!(Quantity::parse("1Gb").is_none());
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("-1.5s"), Some(-1_500_000_000));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("1"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(
            parse_duration("99999999999999999999999999999999999999h"),
            None
        );
    }

    /// Any JSON value, with strings and keys drawn to hit the pattern syntax.
    fn arb_json() -> impl Strategy<Value = Value> {
        let text = prop_oneof![
            "[ -~]{0,10}",
            prop::sample::select(vec![
                "*", "?", "?*", "!a", ">1", "<=1Gi", ">100m", "1-5", "!1-5", "1!-5", "a|b",
                ">1&<5", "", "!", ">=", "1h", "1.2.3", "1e5", "-", "|", "&", "null", "true",
                "1x-2y",
            ])
            .prop_map(str::to_owned),
        ];
        let key = prop_oneof![
            "[a-c]{1,2}",
            prop::sample::select(vec![
                "(a)", "=(a)", "X(a)", "^(a)", "<(a)", "+(a)", "()", "=()", "a*", "?", "((a))",
            ])
            .prop_map(str::to_owned),
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            text.prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 48, 4, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..4)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    /// JSON without operator or wildcard characters, and with lists of one element (a
    /// list pattern has one element, applied to every element).
    fn arb_plain_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (-1.0e12..1.0e12_f64).prop_map(Value::from),
            "[a-zA-Z0-9 ._/:]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 48, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(|v| Value::Array(vec![v])),
                prop::collection::btree_map("[a-zA-Z][a-zA-Z0-9._/]{0,8}", inner, 0..4)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn validate_and_check_never_panic(resource in arb_json(), pattern in arb_json()) {
            let _ = check(&pattern);
            let _ = validate(&resource, &pattern);
            let _ = validate(&pattern, &resource);
        }

        #[test]
        fn a_plain_value_matches_itself(value in arb_plain_json()) {
            prop_assert_eq!(check(&value), Ok(()));
            prop_assert_eq!(validate(&value, &value), Outcome::Pass);
        }

        #[test]
        fn string_conditions_never_panic(value in "[ -~]{0,16}", pattern in "[ -~!<>=|&*?0-9mGiKh.-]{0,16}") {
            let _ = check(&json!(pattern));
            let _ = validate(&json!(value), &json!(pattern));
        }
    }
}
