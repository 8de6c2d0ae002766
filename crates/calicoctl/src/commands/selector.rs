//! `calicoctl selector check|match`: the selector language on the command line.

use std::collections::HashMap;

use anyhow::{anyhow, Context, Result};

/// Prints the canonical form and UID of a selector, as text or JSON.
pub fn check(expr: &str, json: bool) -> Result<String> {
    let sel = parse(expr)?;
    Ok(if json {
        let quote = |s: &str| serde_json::Value::from(s).to_string();
        format!(
            "{{\"canonical\": {}, \"id\": {}}}\n",
            quote(sel.canonical()),
            quote(sel.uid())
        )
    } else {
        format!("canonical: {}\nid: {}\n", sel.canonical(), sel.uid())
    })
}

/// Prints `true` or `false`: whether the selector matches the labels (a JSON object).
pub fn matches(expr: &str, labels_json: &str) -> Result<String> {
    let sel = parse(expr)?;
    let labels: HashMap<String, String> = serde_json::from_str(labels_json).with_context(|| {
        format!(
            "invalid --labels {labels_json:?}: expected a JSON object of string values, \
             e.g. '{{\"role\": \"db\"}}'"
        )
    })?;
    Ok(format!("{}\n", sel.matches(&labels)))
}

fn parse(expr: &str) -> Result<calico_selector::Selector> {
    calico_selector::parse(expr).map_err(|e| anyhow!("invalid selector {expr:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_prints_canonical_and_id() {
        assert_eq!(
            check("all()", false).unwrap(),
            "canonical: all()\nid: s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug\n"
        );
        assert_eq!(
            check("all()", true).unwrap(),
            "{\"canonical\": \"all()\", \"id\": \"s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug\"}\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&check("a=='b'", true).unwrap()).unwrap();
        assert_eq!(json["canonical"], "a == \"b\"");
    }

    #[test]
    fn match_reads_labels_as_json() {
        assert_eq!(
            matches("role == 'db'", r#"{"role":"db"}"#).unwrap(),
            "true\n"
        );
        assert_eq!(matches("role == 'db'", "{}").unwrap(), "false\n");
        assert!(matches("role == 'db'", r#"{"role": 1}"#).is_err());
        assert!(matches("role ==", "{}").is_err());
    }
}
