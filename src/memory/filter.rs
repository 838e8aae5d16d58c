//! Metadata filters in mem0's shape (`{"key": value}`, `{"key": {"gte": 3}}`, `{"OR": [...]}`), parsed into a tree
//! and evaluated in Rust.
//!
//! Why not push them into LanceDB: metadata is a JSON string column, Lance's JSON functions work on its own JSONB
//! type, and filter keys come straight from users. Evaluating here means no user text ever becomes query syntax;
//! scope columns, which are the selective part, are still filtered inside LanceDB.

use serde_json::{Map, Value};

use super::types::Scope;
use super::MemoryError;

/// Longest accepted metadata key in a filter.
const MAX_KEY_BYTES: usize = 128;
/// Deepest accepted nesting of AND/OR/NOT.
const MAX_DEPTH: usize = 8;

/// A parsed metadata filter.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataFilter {
    /// Matches everything.
    All,
    /// Every child matches.
    And(Vec<MetadataFilter>),
    /// Some child matches.
    Or(Vec<MetadataFilter>),
    /// The child does not match.
    Not(Box<MetadataFilter>),
    /// One key compared with one value.
    Cond { key: String, op: Op, value: Value },
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal (`"key": value` or `{"eq": value}`).
    Eq,
    /// Not equal.
    Ne,
    /// Value is one of a list.
    In,
    /// Value is none of a list.
    Nin,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// String contains (case-sensitive).
    Contains,
    /// String contains (case-insensitive).
    Icontains,
    /// Key is present (mem0's `"key": "*"`).
    Exists,
}

impl MetadataFilter {
    /// Parses a mem0-style filter object; `null` matches everything.
    pub fn parse(value: &Value) -> Result<Self, MemoryError> {
        match value {
            Value::Null => Ok(Self::All),
            Value::Object(map) => parse_object(map, 0),
            _ => Err(invalid("a filter must be a JSON object")),
        }
    }

    /// Whether a memory's metadata matches.
    pub fn matches(&self, metadata: &Map<String, Value>) -> bool {
        match self {
            Self::All => true,
            Self::And(children) => children.iter().all(|c| c.matches(metadata)),
            Self::Or(children) => children.iter().any(|c| c.matches(metadata)),
            Self::Not(child) => !child.matches(metadata),
            Self::Cond { key, op, value } => eval(metadata.get(key), *op, value),
        }
    }

    /// Whether this filter matches everything.
    pub fn is_all(&self) -> bool {
        matches!(self, Self::All)
    }
}

/// The owner ids a mem0 2.x filter carries (`{"user_id": "a", …}` or `{"AND": [{"user_id": "a"}, …]}`, also as
/// `{"user_id": {"eq": "a"}}`), taken out of it, and the metadata filter that remains.
///
/// Only conditions every match must meet are taken (top level, or directly inside a top-level `AND`); an id under
/// `OR` or `NOT` is refused, since a scope is a conjunction.
pub fn split_scope(value: &Value) -> Result<(Scope, MetadataFilter), MemoryError> {
    let mut scope = Scope::default();
    let rest = match value {
        Value::Null => Value::Null,
        Value::Object(map) => Value::Object(take_ids(map, &mut scope, true)?),
        _ => return Err(invalid("a filter must be a JSON object")),
    };
    Ok((scope, MetadataFilter::parse(&rest)?))
}

fn take_ids(map: &Map<String, Value>, scope: &mut Scope, top: bool) -> Result<Map<String, Value>, MemoryError> {
    let mut rest = Map::new();
    for (key, value) in map {
        let slot = match key.as_str() {
            "user_id" => Some(&mut scope.user_id),
            "agent_id" => Some(&mut scope.agent_id),
            "run_id" => Some(&mut scope.run_id),
            _ => None,
        };
        match (slot, key.as_str()) {
            (Some(slot), _) => {
                let id = match value {
                    Value::String(s) => s.clone(),
                    Value::Object(op) if op.len() == 1 && op.get("eq").is_some_and(Value::is_string) => {
                        op["eq"].as_str().unwrap_or_default().to_string()
                    }
                    _ => return Err(invalid(format!("{key} must be a string (or {{\"eq\": string}})"))),
                };
                if slot.as_ref().is_some_and(|have| *have != id) {
                    return Err(invalid(format!("{key} is given twice with different values")));
                }
                *slot = Some(id);
            }
            (None, "AND") if top => {
                let items = value.as_array().ok_or_else(|| invalid("AND takes a list of filters"))?;
                let mut kept = Vec::new();
                for item in items {
                    let Value::Object(m) = item else { return Err(invalid("AND takes a list of filter objects")) };
                    let left = take_ids(m, scope, false)?;
                    if !left.is_empty() {
                        kept.push(Value::Object(left));
                    }
                }
                if !kept.is_empty() {
                    rest.insert(key.clone(), Value::Array(kept));
                }
            }
            (None, "OR" | "NOT") if mentions_ids(value) => {
                return Err(invalid("user_id, agent_id and run_id cannot be used under OR or NOT"));
            }
            _ => {
                rest.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(rest)
}

fn mentions_ids(value: &Value) -> bool {
    match value {
        Value::Object(m) => {
            m.iter().any(|(k, v)| matches!(k.as_str(), "user_id" | "agent_id" | "run_id") || mentions_ids(v))
        }
        Value::Array(items) => items.iter().any(mentions_ids),
        _ => false,
    }
}

fn invalid(msg: impl Into<String>) -> MemoryError {
    MemoryError::Invalid(format!("invalid metadata filter: {}", msg.into()))
}

fn parse_object(map: &Map<String, Value>, depth: usize) -> Result<MetadataFilter, MemoryError> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!("nested deeper than {MAX_DEPTH} levels")));
    }
    let mut parts = Vec::with_capacity(map.len());
    for (key, value) in map {
        parts.push(match key.as_str() {
            "AND" | "OR" => {
                let items = value.as_array().ok_or_else(|| invalid(format!("{key} takes a list of filters")))?;
                let children = items
                    .iter()
                    .map(|v| match v {
                        Value::Object(m) => parse_object(m, depth + 1),
                        _ => Err(invalid(format!("{key} takes a list of filter objects"))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if key == "AND" {
                    MetadataFilter::And(children)
                } else {
                    MetadataFilter::Or(children)
                }
            }
            "NOT" => match value {
                Value::Object(m) => MetadataFilter::Not(Box::new(parse_object(m, depth + 1)?)),
                _ => return Err(invalid("NOT takes a filter object")),
            },
            _ => parse_condition(key, value)?,
        });
    }
    Ok(match parts.len() {
        0 => MetadataFilter::All,
        1 => parts.remove(0),
        _ => MetadataFilter::And(parts),
    })
}

fn parse_condition(key: &str, value: &Value) -> Result<MetadataFilter, MemoryError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(invalid(format!("keys must be 1 to {MAX_KEY_BYTES} bytes")));
    }
    let cond = |op, value: &Value| MetadataFilter::Cond { key: key.to_string(), op, value: value.clone() };
    match value {
        Value::String(s) if s == "*" => Ok(cond(Op::Exists, &Value::Null)),
        Value::Object(ops) => {
            let mut parts = Vec::with_capacity(ops.len());
            for (name, operand) in ops {
                let op = match name.as_str() {
                    "eq" => Op::Eq,
                    "ne" => Op::Ne,
                    "in" => Op::In,
                    "nin" => Op::Nin,
                    "gt" => Op::Gt,
                    "gte" => Op::Gte,
                    "lt" => Op::Lt,
                    "lte" => Op::Lte,
                    "contains" => Op::Contains,
                    "icontains" => Op::Icontains,
                    other => return Err(invalid(format!("unknown operator {other:?} on key {key:?}"))),
                };
                if matches!(op, Op::In | Op::Nin) && !operand.is_array() {
                    return Err(invalid(format!("{name} on key {key:?} takes a list")));
                }
                if matches!(op, Op::Contains | Op::Icontains) && !operand.is_string() {
                    return Err(invalid(format!("{name} on key {key:?} takes a string")));
                }
                parts.push(cond(op, operand));
            }
            match parts.len() {
                0 => Err(invalid(format!("no operator given for key {key:?}"))),
                1 => Ok(parts.remove(0)),
                _ => Ok(MetadataFilter::And(parts)),
            }
        }
        _ => Ok(cond(Op::Eq, value)),
    }
}

fn eval(actual: Option<&Value>, op: Op, expected: &Value) -> bool {
    let Some(actual) = actual else {
        // A missing key is "not equal" and "not in" anything, and matches nothing else.
        return matches!(op, Op::Ne | Op::Nin);
    };
    match op {
        Op::Exists => true,
        Op::Eq => actual == expected,
        Op::Ne => actual != expected,
        Op::In => expected.as_array().is_some_and(|list| list.contains(actual)),
        Op::Nin => expected.as_array().is_some_and(|list| !list.contains(actual)),
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => match compare(actual, expected) {
            Some(ord) => match op {
                Op::Gt => ord.is_gt(),
                Op::Gte => ord.is_ge(),
                Op::Lt => ord.is_lt(),
                _ => ord.is_le(),
            },
            None => false,
        },
        Op::Contains => matches!((actual, expected), (Value::String(a), Value::String(e)) if a.contains(e.as_str())),
        Op::Icontains => matches!((actual, expected),
            (Value::String(a), Value::String(e)) if a.to_lowercase().contains(&e.to_lowercase())),
    }
}

/// Orders two numbers or two strings; other pairs do not compare.
fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn equality_operators_and_logic() {
        let m = meta(json!({"property": "Hudson 360", "bedrooms": 2, "pets": ["cat"]}));
        let f = |v: Value| MetadataFilter::parse(&v).unwrap().matches(&m);
        assert!(f(json!({"property": "Hudson 360"})));
        assert!(!f(json!({"property": "21 West End"})));
        assert!(f(json!({"bedrooms": {"gte": 2, "lt": 3}})));
        assert!(f(json!({"bedrooms": {"in": [1, 2]}})));
        assert!(f(json!({"property": {"icontains": "hudson"}})));
        assert!(f(json!({"OR": [{"bedrooms": 3}, {"property": "*"}]})));
        assert!(f(json!({"NOT": {"bedrooms": 3}})));
        assert!(f(json!({"missing": {"ne": 1}})));
        assert!(!f(json!({"missing": 1})));
        assert!(f(json!(null)));
    }

    #[test]
    fn owner_ids_come_out_of_mem0_2_filters() {
        let (scope, rest) = split_scope(&json!({"user_id": "alice", "category": "pets"})).unwrap();
        assert_eq!(scope, Scope::user("alice"));
        assert_eq!(rest, MetadataFilter::parse(&json!({"category": "pets"})).unwrap());
        let (scope, rest) =
            split_scope(&json!({"AND": [{"user_id": {"eq": "alice"}}, {"run_id": "call-1"}, {"n": {"gte": 2}}]}))
                .unwrap();
        assert_eq!(scope, Scope::user("alice").with_run("call-1"));
        assert_eq!(rest, MetadataFilter::parse(&json!({"AND": [{"n": {"gte": 2}}]})).unwrap());
        assert!(split_scope(&json!({"OR": [{"user_id": "a"}, {"user_id": "b"}]})).is_err());
        assert!(split_scope(&json!({"user_id": "a", "AND": [{"user_id": "b"}]})).is_err());
        assert!(split_scope(&json!({"user_id": 7})).is_err());
        assert_eq!(split_scope(&json!(null)).unwrap(), (Scope::default(), MetadataFilter::All));
    }

    #[test]
    fn hostile_keys_are_plain_lookups_and_bad_shapes_are_errors() {
        let m = meta(json!({"a": 1}));
        let hostile = json!({"a' OR '1'='1": "x", "); DROP TABLE memories; --": 1});
        assert!(!MetadataFilter::parse(&hostile).unwrap().matches(&m));
        assert!(MetadataFilter::parse(&json!([1, 2])).is_err());
        assert!(MetadataFilter::parse(&json!({"a": {"regex": ".*"}})).is_err());
        assert!(MetadataFilter::parse(&json!({"a": {"in": 3}})).is_err());
        assert!(MetadataFilter::parse(&json!({"": 1})).is_err());
        let mut deep = json!({"a": 1});
        for _ in 0..20 {
            deep = json!({ "NOT": deep });
        }
        assert!(MetadataFilter::parse(&deep).is_err());
    }
}
