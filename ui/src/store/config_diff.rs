//! The compare view's config diff: configs flattened to `a.b.c = value` and the keys where runs
//! differ.

use std::collections::{BTreeMap, BTreeSet};

/// Flattens a TOML document to `a.b.c = value` pairs (arrays and values as TOML text).
pub fn flatten_toml(text: &str) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(v) = text.parse::<toml::Table>() {
        walk("", &toml::Value::Table(v), &mut out);
    }
    out
}

/// The keys whose values differ between the configs (missing counts as different), with
/// every config's value (`None` where absent).
pub fn config_diff(configs: &[&str]) -> Vec<(String, Vec<Option<String>>)> {
    let flat: Vec<BTreeMap<String, String>> = configs.iter().map(|c| flatten_toml(c)).collect();
    let keys: BTreeSet<&String> = flat.iter().flat_map(|f| f.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let vals: Vec<Option<String>> = flat.iter().map(|f| f.get(k).cloned()).collect();
            (vals.iter().any(|v| v != &vals[0])).then(|| (k.clone(), vals))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_diff_shows_only_differing_keys() {
        let a = "name = \"a\"\nsteps = 100\n[model]\nbase = 32\nmults = [1, 2]\n[methods]\ncoral = 0.1\n";
        let b = "name = \"b\"\nsteps = 100\n[model]\nbase = 32\nmults = [1, 2, 2]\n";
        let d = config_diff(&[a, b]);
        let keys: Vec<&str> = d.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["methods.coral", "model.mults", "name"]);
        assert_eq!(d[0].1, vec![Some("0.1".to_string()), None]);
        assert_eq!(d[1].1, vec![Some("[1, 2]".to_string()), Some("[1, 2, 2]".to_string())]);
        // Identical configs differ nowhere; three runs differ where any one does.
        assert!(config_diff(&[a, a]).is_empty());
        assert_eq!(config_diff(&[a, a, b]).len(), 3);
    }
}
