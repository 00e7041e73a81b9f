//! A cost bound for CEL expressions, checked before an expression runs.
//!
//! Kubernetes meters CEL at runtime: every expression may spend at most
//! [`PER_CALL_LIMIT`] (1,000,000) cost units, and one evaluation of a policy for one
//! binding and one param at most [`RUNTIME_BUDGET`] (10,000,000); match conditions share
//! [`MATCH_CONDITIONS_BUDGET`] (2,500,000). One unit is roughly 50–100 ns of work.
//!
//! The `cel` interpreter under kube-cel has no cost meter and cannot be interrupted, so we
//! **estimate** the cost of an expression over the actual input before running it, and
//! refuse to run one whose estimate is over the limit. The estimate follows the shape of
//! Kubernetes' cost model (identifiers and field selections 1, function calls 1,
//! comprehensions charge their body once per element, string scans 0.1 per character,
//! list scans 1 per element) with sizes taken from the input:
//!
//! - a field path from a bound variable (`object.spec.containers`, `params.allowed`, or
//!   `variables.containers` once that variable has been evaluated) has the size of the
//!   actual value there;
//! - a list literal has its element count;
//! - anything else (iteration variables, results of functions) has the size of the
//!   largest list, map or string anywhere in the input.
//!
//! The bound is conservative: nested comprehensions multiply, so `a.all(x, b.all(y, ...))`
//! costs `|a| × |b| × body`. An expression within the bound always finishes quickly; one
//! over it is reported as a cost error, never run.

use kube_cel::cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};
use serde_json::Value;

/// Kubernetes' per-expression runtime cost limit (`PerCallLimit`).
///
/// ```
/// assert_eq!(idp_policy::cel::cost::PER_CALL_LIMIT, 1_000_000);
/// ```
pub const PER_CALL_LIMIT: u64 = 1_000_000;

/// Kubernetes' budget for one evaluation of a policy, per binding and param
/// (`RuntimeCELCostBudget`).
///
/// ```
/// assert_eq!(idp_policy::cel::cost::RUNTIME_BUDGET, 10_000_000);
/// ```
pub const RUNTIME_BUDGET: u64 = 10_000_000;

/// Kubernetes' budget for the match conditions of one binding
/// (`RuntimeCELCostBudgetMatchConditions`).
///
/// ```
/// assert_eq!(idp_policy::cel::cost::MATCH_CONDITIONS_BUDGET, 2_500_000);
/// ```
pub const MATCH_CONDITIONS_BUDGET: u64 = 2_500_000;

/// The named values an expression sees, for sizing field paths.
#[derive(Debug, Default)]
pub(crate) struct Bindings<'a> {
    pub(crate) values: Vec<(&'a str, &'a Value)>,
    /// The size of the largest list, map or string in any bound value.
    pub(crate) max_size: f64,
}

impl<'a> Bindings<'a> {
    pub(crate) fn new(values: Vec<(&'a str, &'a Value)>) -> Self {
        let max_size = values
            .iter()
            .map(|(_, v)| largest(v, 0))
            .fold(1.0, f64::max);
        Self { values, max_size }
    }
}

fn size_of(value: &Value) -> f64 {
    match value {
        Value::Array(a) => a.len() as f64,
        Value::Object(m) => m.len() as f64,
        Value::String(s) => s.len() as f64,
        _ => 1.0,
    }
}

fn largest(value: &Value, depth: usize) -> f64 {
    if depth > 256 {
        return size_of(value);
    }
    let children = match value {
        Value::Array(a) => a.iter().map(|v| largest(v, depth + 1)).fold(0.0, f64::max),
        Value::Object(m) => m
            .values()
            .map(|v| largest(v, depth + 1))
            .fold(0.0, f64::max),
        _ => 0.0,
    };
    size_of(value).max(children)
}

/// The actual value at a field path from a bound variable (`object.spec.replicas`).
fn resolve<'v>(expr: &IdedExpr, bindings: &Bindings<'v>) -> Option<&'v Value> {
    match &expr.expr {
        Expr::Ident(name) => bindings
            .values
            .iter()
            .find(|(n, _)| *n == name.as_str())
            .map(|(_, v)| *v),
        Expr::Select(select) if !select.test => {
            resolve(&select.operand, bindings)?.get(&select.field)
        }
        _ => None,
    }
}

/// Functions that scan a string argument or target.
const STRING_SCANS: &[&str] = &[
    "matches",
    "contains",
    "startsWith",
    "endsWith",
    "find",
    "findAll",
    "split",
    "replace",
    "lowerAscii",
    "upperAscii",
    "trim",
    "indexOf",
    "lastIndexOf",
    "substring",
    "join",
    "format",
    "quantity",
    "isQuantity",
    "url",
    "isURL",
    "ip",
    "isIP",
    "cidr",
    "isCIDR",
];

/// Functions that scan a list.
const LIST_SCANS: &[&str] = &[
    "@in",
    "sum",
    "min",
    "max",
    "isSorted",
    "indexOf",
    "lastIndexOf",
    "slice",
    "flatten",
    "sort",
    "distinct",
    "reverse",
    "_==_",
    "_!=_",
    "_+_",
];

/// `(cost, size)` of an expression: the estimated cost to evaluate it and the
/// estimated size of its value (elements or characters).
pub(crate) fn estimate(expr: &IdedExpr, bindings: &Bindings<'_>) -> (f64, f64) {
    estimate_at(expr, bindings, 0)
}

fn estimate_at(expr: &IdedExpr, bindings: &Bindings<'_>, depth: usize) -> (f64, f64) {
    let unknown = bindings.max_size;
    if depth > 512 {
        return (f64::INFINITY, unknown);
    }
    let d = depth + 1;
    match &expr.expr {
        Expr::Literal(LiteralValue::String(s)) => (0.0, s.inner().len() as f64),
        Expr::Unspecified | Expr::Literal(_) => (0.0, 1.0),
        Expr::Ident(_) | Expr::Select(_) => {
            let steps = path_len(expr) as f64;
            let size = resolve(expr, bindings).map_or(unknown, size_of);
            let operand_cost = match &expr.expr {
                Expr::Select(s) if resolve(expr, bindings).is_none() => {
                    estimate_at(&s.operand, bindings, d).0
                }
                _ => 0.0,
            };
            (steps + operand_cost, size)
        }
        Expr::List(list) => {
            let cost: f64 = list
                .elements
                .iter()
                .map(|e| estimate_at(e, bindings, d).0)
                .sum();
            (cost + 1.0, list.elements.len() as f64)
        }
        Expr::Map(map) => {
            let mut cost = 1.0;
            for entry in &map.entries {
                if let EntryExpr::MapEntry(e) = &entry.expr {
                    cost +=
                        estimate_at(&e.key, bindings, d).0 + estimate_at(&e.value, bindings, d).0;
                }
            }
            (cost, map.entries.len() as f64)
        }
        Expr::Struct(s) => {
            let mut cost = 1.0;
            for entry in &s.entries {
                if let EntryExpr::StructField(f) = &entry.expr {
                    cost += estimate_at(&f.value, bindings, d).0;
                }
            }
            (cost, s.entries.len() as f64)
        }
        Expr::Call(call) => {
            let mut cost = 1.0;
            let mut widest: f64 = 1.0;
            let mut total_size: f64 = 0.0;
            for part in call.target.iter().map(|t| &**t).chain(call.args.iter()) {
                let (c, s) = estimate_at(part, bindings, d);
                cost += c;
                widest = widest.max(s);
                total_size += s;
            }
            let name = call.func_name.as_str();
            if STRING_SCANS.contains(&name) {
                cost += (widest * 0.1).ceil();
            }
            if LIST_SCANS.contains(&name) {
                cost += widest;
            }
            let size = match name {
                "_+_" => total_size,
                "size" | "_<_" | "_<=_" | "_>_" | "_>=_" | "_==_" | "_!=_" | "_&&_" | "_||_"
                | "!_" | "@in" => 1.0,
                _ => widest,
            };
            (cost, size)
        }
        Expr::Comprehension(c) => {
            let (range_cost, range_size) = estimate_at(&c.iter_range, bindings, d);
            let (init_cost, _) = estimate_at(&c.accu_init, bindings, d);
            let (cond_cost, _) = estimate_at(&c.loop_cond, bindings, d);
            let (step_cost, _) = estimate_at(&c.loop_step, bindings, d);
            let (result_cost, _) = estimate_at(&c.result, bindings, d);
            let per_element = 1.0 + cond_cost + step_cost;
            (
                range_cost + init_cost + result_cost + range_size * per_element,
                range_size,
            )
        }
    }
}

fn path_len(expr: &IdedExpr) -> usize {
    match &expr.expr {
        Expr::Select(s) => 1 + path_len(&s.operand),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cost(expr: &str, object: &Value) -> f64 {
        let program = kube_cel::cel::Program::compile(expr).unwrap();
        let bindings = Bindings::new(vec![("object", object)]);
        estimate(program.expression(), &bindings).0
    }

    #[test]
    fn comprehensions_multiply_by_actual_sizes() {
        let small = json!({"items": [1, 2, 3]});
        let big = json!({"items": (0..1000).collect::<Vec<_>>()});
        let one = cost("object.items.all(x, x > 0)", &big);
        let nested = cost(
            "object.items.all(x, object.items.all(y, x != y || x == y))",
            &big,
        );
        assert!(one > 1000.0 && one < 10_000.0, "{one}");
        assert!(nested > 1_000_000.0, "{nested}");
        assert!(cost("object.items.all(x, object.items.all(y, true))", &small) < 100.0);
    }
}
