//! Reload diffs: which keys a new config changes, and which of them a running
//! process cannot take.

use std::collections::BTreeMap;

use secrecy::ExposeSecret;

use super::Settings;

impl Settings {
    /// The keys whose values differ from `other`'s, dotted
    /// (`checks.memory.warn_ratio`), for a reload's log line: names only,
    /// never a value. A new password in `redis.url` shows as `redis.url`.
    pub fn changed_keys(&self, other: &Settings) -> Vec<String> {
        let (mine, theirs) = (flatten(self), flatten(other));
        let mut keys: Vec<String> = mine
            .iter()
            .filter(|(key, value)| theirs.get(*key) != Some(value))
            .map(|(key, _)| key.clone())
            .chain(
                theirs
                    .keys()
                    .filter(|key| !mine.contains_key(*key))
                    .cloned(),
            )
            .collect();
        let password = |s: &Settings| {
            s.redis
                .url
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_owned())
        };
        if password(self) != password(other) && !keys.iter().any(|k| k == "redis.url") {
            keys.push("redis.url".to_owned());
        }
        keys.sort();
        keys
    }
}

/// Keys a running process cannot change: the listener, connection limits
/// and the log format are set up once, at start.
pub fn needs_restart(key: &str) -> bool {
    key.starts_with("server.") || key == "log.format"
}

/// Keys the Redis connection is dialled for (address, credentials, TLS)
/// or that decide what it sends (SLOWLOG, CLUSTER INFO, SENTINEL
/// CKQUORUM): a reload changing one dials afresh, any other keeps it.
pub fn needs_redial(key: &str) -> bool {
    ["redis.", "sentinel.", "checks.slowlog.", "checks.cluster."]
        .iter()
        .any(|prefix| key.starts_with(prefix))
}

impl Settings {
    /// Puts back the running values of the keys [`needs_restart`] names: the
    /// one place a reloaded config is made to match what cannot change.
    pub fn keep_restart_only(&mut self, running: &Settings) {
        self.server = running.server.clone();
        self.log.format = running.log.format;
    }
}

/// Every leaf of the settings as `dotted.key -> value`, as the config dump
/// shows them (the URL's password redacted). JSON, not TOML, so no integer
/// is out of range.
fn flatten(settings: &Settings) -> BTreeMap<String, serde_json::Value> {
    fn walk(
        prefix: &str,
        value: serde_json::Value,
        into: &mut BTreeMap<String, serde_json::Value>,
    ) {
        match value {
            serde_json::Value::Object(table) => {
                for (key, value) in table {
                    let key = if prefix.is_empty() {
                        key
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&key, value, into);
                }
            }
            leaf => {
                into.insert(prefix.to_owned(), leaf);
            }
        }
    }
    let mut leaves = BTreeMap::new();
    if let Ok(value) = serde_json::to_value(settings) {
        walk("", value, &mut leaves);
    }
    leaves
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Ratio, RedisUrl};
    use std::num::NonZeroU32;

    #[test]
    fn changed_keys_name_each_leaf_and_never_a_value() {
        let before = Settings::default();
        let mut after = Settings::default();
        after.checks.memory.warn_ratio = Ratio::of(0.5);
        after.server.max_connections = NonZeroU32::MIN;
        after.redis.url =
            RedisUrl::try_from("redis://:hunter2@127.0.0.1:6379".to_owned()).expect("valid url");
        let changed = before.changed_keys(&after);
        assert_eq!(
            changed,
            [
                "checks.memory.warn_ratio",
                "redis.url",
                "server.max_connections"
            ]
        );
        assert!(!changed.concat().contains("hunter2"));
        assert!(before.changed_keys(&Settings::default()).is_empty());
        // A new password alone, redacted alike in both dumps, still shows.
        let mut rotated = Settings::default();
        rotated.redis.url =
            RedisUrl::try_from("redis://:hunter3@127.0.0.1:6379".to_owned()).expect("valid url");
        assert_eq!(
            after.changed_keys(&rotated),
            [
                "checks.memory.warn_ratio",
                "redis.url",
                "server.max_connections"
            ]
        );
        let mut same = Settings::default();
        same.redis.url =
            RedisUrl::try_from("redis://:hunter2@127.0.0.1:6379".to_owned()).expect("valid url");
        assert_eq!(same.changed_keys(&rotated), ["redis.url"]);
        assert!(needs_restart("server.max_connections"));
        assert!(needs_restart("log.format"));
        assert!(!needs_restart("log.level"));
        assert!(!needs_restart("checks.memory.warn_ratio"));
    }
}
