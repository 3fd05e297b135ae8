//! Body formats: application/health+json on request with the same codes, and
//! Accept q-values choosing the format.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;

async fn get_health_json(app: &crate::support::TestApp, path: &str) -> (u16, String, Value) {
    get_accepting(app, path, "application/health+json").await
}

async fn get_accepting(
    app: &crate::support::TestApp,
    path: &str,
    accept: &str,
) -> (u16, String, Value) {
    let response = reqwest::Client::new()
        .get(format!("http://{}{path}", app.addr))
        .header("accept", accept)
        .send()
        .await
        .expect("GET");
    let status = response.status().as_u16();
    let content_type = content_type(&response);
    let body = serde_json::from_str(&response.text().await.expect("body")).expect("JSON body");
    (status, content_type, body)
}

#[tokio::test]
async fn accept_q_values_choose_the_body_format() {
    let redis = TestRedis::start();
    let app = spawn_app(settings(&redis.url())).await;
    let cases = [
        ("application/health+json", "application/health+json"),
        ("application/health+json;q=0", "application/json"),
        (
            "application/json, application/health+json;q=0.5",
            "application/json",
        ),
        (
            "application/json;q=0.5, application/health+json",
            "application/health+json",
        ),
        (
            "application/health+json, application/json",
            "application/json",
        ),
    ];
    for (accept, expected) in cases {
        let (status, content_type, body) = get_accepting(&app, "/health/redis", accept).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(content_type, expected, "Accept: {accept}");
        let draft = body.get("description").is_some();
        assert_eq!(draft, expected == "application/health+json", "{body}");
    }
}

#[tokio::test]
async fn health_json_on_request_with_the_same_codes() {
    let redis = TestRedis::start();
    redis.fill_to_ratio(0.87);
    let config = settings_with(&redis.url(), "checks.max_age = \"10ms\"");
    let app = spawn_app(config).await;

    let (status, content_type, body) = get_health_json(&app, "/health/redis").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/health+json");
    assert_eq!(body["status"], "warn");
    assert_eq!(body["output"], "memory_high");
    let memory = &body["checks"]["redis:memory"][0];
    assert_eq!(memory["componentType"], "datastore");
    assert_eq!(memory["status"], "warn");
    assert_eq!(memory["observedUnit"], "ratio");
    assert!(memory["observedValue"].as_f64().is_some_and(|r| r > 0.8));
    assert_eq!(memory["output"], "memory_high");
    assert!(memory["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let ping = &body["checks"]["redis:ping"][0];
    assert_eq!(
        (&ping["status"], &ping["observedUnit"]),
        (&"pass".into(), &"ms".into())
    );
    assert!(ping.get("output").is_none());
    assert!(body["checks"].get("redis:hit_rate").is_some());

    let (status, _, body) = get_health_json(&app, "/health/replica").await;
    assert_eq!((status, &body["status"]), (200, &"pass".into()));
    assert!(body["checks"].get("redis:replication").is_some());

    // Plain JSON stays the default.
    let plain = app.get("/health/redis").await;
    assert!(plain.text.starts_with(r#"{"status":"warn""#));

    redis.fill_to_ratio(1.05);
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(2), |a| a.status == 503)
        .await;
    assert_eq!(answer.json["reason"], "memory_pressure");
    let (status, _, body) = get_health_json(&app, "/health/redis").await;
    assert_eq!((status, &body["status"]), (503, &"fail".into()));
    assert_eq!(body["checks"]["redis:memory"][0]["status"], "fail");
}

/// The draft pairs `pass`/`warn` with 2xx and `fail` with 4xx-5xx: the top
/// level follows the code a caller's `?fail_at=` or `?warn_code=` gives,
/// while each check entry keeps its own status.
#[tokio::test]
async fn health_json_top_level_status_follows_the_http_code() {
    let redis = TestRedis::start();
    redis.fill_to_ratio(0.87);
    let config = settings_with(&redis.url(), "checks.max_age = \"10ms\"");
    let app = spawn_app(config).await;

    let (status, _, body) = get_health_json(&app, "/health/redis?fail_at=warn").await;
    assert_eq!((status, &body["status"]), (503, &"fail".into()), "{body}");
    assert_eq!(body["checks"]["redis:memory"][0]["status"], "warn");
    let (status, _, body) = get_health_json(&app, "/health/redis?warn_code=429").await;
    assert_eq!((status, &body["status"]), (429, &"warn".into()), "{body}");

    redis.fill_to_ratio(1.05);
    app.wait_for("/health/redis", Duration::from_secs(3), |a| a.status == 503)
        .await;
    let (status, _, body) = get_health_json(&app, "/health/redis?fail_at=down").await;
    assert_eq!((status, &body["status"]), (200, &"warn".into()), "{body}");
    assert_eq!(body["checks"]["redis:memory"][0]["status"], "fail");
}

/// `/health/alive` answers 200 while Redis answers with an error (here an
/// auth error): its top level says so in both formats, and the ping entry
/// keeps the error.
#[tokio::test]
async fn alive_bodies_agree_with_their_200_when_redis_refuses_the_ping() {
    let redis = TestRedis::with_args(&["--requirepass", "s3cret-pw"]);
    let config = settings_with(&redis.url(), "checks.max_age = \"10ms\"");
    let app = spawn_app(config).await;

    let alive = app.get("/health/alive").await;
    assert_eq!(alive.status, 200, "{}", alive.text);
    assert_eq!(alive.json["status"], "ok", "{}", alive.text);
    assert!(alive.text.contains(r#""reasons":[]"#), "{}", alive.text);
    assert_eq!(alive.json["checks"]["ping"]["status"], "down");
    assert_eq!(alive.json["checks"]["ping"]["reason"], "auth_failed");
    let (status, _, body) = get_health_json(&app, "/health/alive").await;
    assert_eq!((status, &body["status"]), (200, &"pass".into()), "{body}");
    let ping = &body["checks"]["redis:ping"][0];
    assert_eq!(
        (&ping["status"], &ping["output"]),
        (&"fail".into(), &"auth_failed".into())
    );

    // The data routes still fail, in both formats.
    let ready = app.get("/health/redis").await;
    assert!(is_down_with(&ready, "auth_failed"), "{}", ready.text);
    let (status, _, body) = get_health_json(&app, "/health/redis").await;
    assert_eq!((status, &body["status"]), (503, &"fail".into()), "{body}");

    // Unreachable is down on /health/alive too.
    drop(redis);
    let gone = app
        .wait_for("/health/alive", Duration::from_secs(3), |a| a.status == 503)
        .await;
    assert_eq!(gone.json["status"], "down", "{}", gone.text);
    let (status, _, body) = get_health_json(&app, "/health/alive").await;
    assert_eq!((status, &body["status"]), (503, &"fail".into()), "{body}");
}
