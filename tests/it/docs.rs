//! docs/configuration.md, the key reference, against config/default.toml,
//! the commented file of every default: a key one of them names and the
//! other does not, or a default they disagree on, fails.

use std::collections::BTreeMap;

const REFERENCE: &str = include_str!("../../docs/configuration.md");
const DEFAULTS: &str = include_str!("../../config/default.toml");

/// Every key set in default.toml (commented lines are not), with its value
/// as written there.
fn shipped_defaults() -> BTreeMap<String, String> {
    let mut section = String::new();
    let mut keys = BTreeMap::new();
    for line in DEFAULTS.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((key, value)) = line.split_once(" = ").filter(|_| !line.starts_with('#'))
        {
            let value = value.split(" #").next().unwrap_or(value).trim();
            keys.insert(format!("{section}.{}", key.trim()), value.to_owned());
        }
    }
    keys
}

/// The reference's rows that start with a key: (the key cell without its
/// backticks, e.g. `checks.<name>.enabled for memory, ...`, the default cell).
fn reference_rows() -> Vec<(String, String)> {
    REFERENCE
        .lines()
        .filter_map(|line| {
            let mut cells = line.strip_prefix("| `")?.split(" | ");
            let key = cells.next()?.replacen('`', "", 2);
            let default = cells.next()?.to_owned();
            Some((key, default))
        })
        .collect()
}

/// The row that documents `key`: its own, or a pattern row such as
/// `checks.<name>.enabled` for memory, hit_rate, ... that lists its part.
fn row_for<'a>(rows: &'a [(String, String)], key: &str) -> Option<&'a (String, String)> {
    rows.iter().find(|(k, _)| k == key).or_else(|| {
        let parts: Vec<&str> = key.split('.').collect();
        rows.iter().find(|(k, _)| {
            let (pattern, names) = k.split_once(" for ").unwrap_or((k, ""));
            let pattern: Vec<&str> = pattern.split('.').collect();
            pattern.len() == parts.len()
                && pattern.iter().zip(&parts).all(|(p, part)| {
                    p == part || (p.starts_with('<') && names.split([',', ' ']).any(|n| n == *part))
                })
        })
    })
}

#[test]
fn every_shipped_default_has_its_row_and_value_in_the_reference() {
    let rows = reference_rows();
    assert!(rows.len() > 20, "docs/configuration.md: no key rows found");
    for (key, value) in shipped_defaults() {
        let (_, default) = row_for(&rows, &key)
            .unwrap_or_else(|| panic!("docs/configuration.md has no row for {key}"));
        assert!(
            default.starts_with(&format!("`{value}`")),
            "docs/configuration.md: {key} defaults to {default}, config/default.toml says {value}"
        );
    }
}

#[test]
fn every_key_in_the_reference_is_in_the_shipped_file() {
    let shipped = shipped_defaults();
    for (key, default) in reference_rows() {
        if key.contains('<') || key.contains(',') || default.starts_with("unset") {
            continue; // pattern rows, range rows and keys with no default
        }
        assert!(
            shipped.contains_key(&key)
                || DEFAULTS.contains(&format!("# {}", key.rsplit('.').next().unwrap_or(&key))),
            "docs/configuration.md documents {key}, which config/default.toml does not hold"
        );
    }
}

/// The README's keyword for uptime monitors that only match a substring:
/// `"reasons":[]` is in an ok body of `/health` and in no warning's, while
/// `{"status":"ok"` is in both (every check object starts with it).
#[tokio::test]
async fn the_uptime_keyword_tells_ok_from_warn() {
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains("`\"reasons\":[]`"),
        "README names no substring keyword"
    );
    let redis = crate::support::TestRedis::with_args(&["--maxmemory", "100mb"]);
    let app = crate::support::spawn_app(crate::support::settings_with(
        &redis.url(),
        "checks.max_age = \"100ms\"",
    ))
    .await;
    let ok = app.get("/health").await;
    assert_eq!(
        (ok.status, ok.json["status"].as_str()),
        (200, Some("ok")),
        "{}",
        ok.text
    );
    assert!(ok.text.contains(r#""reasons":[]"#), "{}", ok.text);

    redis.fill_to_ratio(0.87);
    let warn = app
        .wait_for("/health", std::time::Duration::from_secs(2), |a| {
            a.json["status"] == "warn"
        })
        .await;
    assert_eq!(warn.status, 200, "{}", warn.text);
    assert!(!warn.text.contains(r#""reasons":[]"#), "{}", warn.text);
    assert!(warn.text.contains(r#"{"status":"ok""#), "{}", warn.text);
}
