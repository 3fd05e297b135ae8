//! What a new user meets in the first hour: query parameters and variable
//! names with a typo fail loudly, the README's Consul and readiness URLs
//! agree, the logs say what is checked, and the default listener takes
//! IPv6 and IPv4.

use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn a_near_miss_of_a_query_parameter_is_a_400_naming_the_right_one() {
    let redis = TestRedis::start();
    let app = spawn_app(settings(&redis.url())).await;
    for (query, known) in [
        ("failat=critical", "fail_at"),
        ("Fail_At=critical", "fail_at"),
        ("FAIL-AT=warn", "fail_at"),
        ("warn-code=429", "warn_code"),
        ("warncode=429", "warn_code"),
    ] {
        let answer = app.get(&format!("/health/redis?{query}")).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.text);
        assert_eq!(answer.json["status"], "error", "{query}");
        let error = answer.json["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(&format!("did you mean {known}?")),
            "{query}: {error}"
        );
    }
    for query in [
        "warn_code=503",
        "warn_code=abc",
        "warn_code=",
        "warn_code=404",
    ] {
        let answer = app.get(&format!("/health/redis?{query}")).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.text);
        assert!(
            answer.json["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("warn_code: must be a 2xx code or 429")),
            "{query}: {}",
            answer.text
        );
    }
    // Cache busters and other names stay ignored.
    for query in ["_=1701", "t=5&cachebuster=x", "fail=1", "warn_code=204&_=2"] {
        let answer = app.get(&format!("/health/redis?{query}")).await;
        assert_eq!(answer.status, 200, "{query}: {}", answer.text);
    }
}

/// A README section: the text from its `## title` to the next `## `.
fn readme_section(title: &str) -> String {
    let readme = include_str!("../../README.md");
    let heading = format!("\n## {title}\n");
    let start = readme
        .find(&heading)
        .unwrap_or_else(|| panic!("README has no section {title:?}"));
    let rest = &readme[start + heading.len()..];
    rest[..rest.find("\n## ").unwrap_or(rest.len())].to_owned()
}

/// The fenced blocks of `lang` in `text`.
fn fenced(text: &str, lang: &str) -> Vec<String> {
    let open = format!("```{lang}\n");
    text.split(&open)
        .skip(1)
        .filter_map(|block| block.split("```").next().map(str::to_owned))
        .collect()
}

/// The README's Consul setup (every TOML block of its section, and its
/// check URL) beside its Kubernetes readiness URL: a node in warn is a
/// warning in Consul, 429, and stays ready for the kubelet (200-399).
#[tokio::test]
async fn the_readmes_readiness_url_never_answers_429_with_the_consul_example() {
    let consul = readme_section("Consul");
    let config = fenced(&consul, "toml").join("\n");
    let check: serde_json::Value = serde_json::from_str(&fenced(&consul, "json")[0])
        .expect("the README's Consul check is JSON");
    let consul_url = check["service"]["check"]["http"]
        .as_str()
        .expect("a check URL");
    let consul_path = &consul_url[consul_url.find("/health").expect("a health path")..];
    let readiness = "/health/redis?fail_at=critical";
    assert!(
        include_str!("../../README.md").contains(&format!("path: \"{readiness}\"")),
        "the README's readiness probe is no longer {readiness}"
    );

    let redis = TestRedis::start();
    redis.fill_to_ratio(0.87);
    let extra = format!("checks.max_age = \"10ms\"\n{config}");
    let app = spawn_app(settings_with(&redis.url(), &extra)).await;
    let warned = app.get(consul_path).await;
    assert_eq!(warned.status, 429, "{consul_path}: {}", warned.text);
    assert_eq!(warned.json["reason"], "memory_high");
    let ready = app.get(readiness).await;
    assert_eq!(ready.status, 200, "{readiness}: {}", ready.text);
    assert_eq!(ready.json["reason"], "memory_high");
}
