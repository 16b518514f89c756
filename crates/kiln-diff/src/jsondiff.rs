//! Field-by-field differences of two JSON documents (index, manifest, config), named by
//! their path (`config.Env[1]`, `config.Labels["org.example"]`).

use std::collections::BTreeSet;

use serde_json::Value;

/// Appends `(path, value-0, value-1)` for every leaf that differs. Arrays of equal length
/// are compared element by element, others as a whole; a key present on one side only
/// gives `None` for the other.
pub fn diff(
    path: &str,
    a: Option<&Value>,
    b: Option<&Value>,
    out: &mut Vec<(String, Option<String>, Option<String>)>,
) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                diff(&child(path, k), x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), Some(p), Some(q), out);
            }
        }
        (a, b) if a != b => out.push((path.to_string(), a.map(render), b.map(render))),
        _ => {}
    }
}

fn child(path: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    match (path.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{}]", Value::String(key.to_string())),
    }
}

/// Strings as themselves, everything else as compact JSON.
pub fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_and_values() {
        let a = json!({"config": {"Env": ["A=1", "B=2"], "Labels": {"org.x": "1"}}, "os": "linux", "gone": 1});
        let b = json!({"config": {"Env": ["A=1", "B=3"], "Labels": {"org.x": "2"}}, "os": "linux", "new": [1]});
        let mut out = Vec::new();
        diff("", Some(&a), Some(&b), &mut out);
        assert_eq!(
            out,
            vec![
                (
                    "config.Env[1]".into(),
                    Some("B=2".into()),
                    Some("B=3".into())
                ),
                (
                    "config.Labels[\"org.x\"]".into(),
                    Some("1".into()),
                    Some("2".into())
                ),
                ("gone".into(), Some("1".into()), None),
                ("new".into(), None, Some("[1]".into())),
            ]
        );
        let mut out = Vec::new();
        diff("h", Some(&json!([1, 2])), Some(&json!([1])), &mut out);
        assert_eq!(
            out,
            vec![("h".into(), Some("[1,2]".into()), Some("[1]".into()))]
        );
    }
}
