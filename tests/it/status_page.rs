//! The status page at `/`: its headers and JSON index over real HTTP, the
//! switch that turns it off, escaping of what Redis and the config say, and
//! the page as headless Chromium renders it in three states of a real Redis.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::sentinel::SentinelNode;
use crate::support::*;

async fn get_page(app: &TestApp, accept: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let response = reqwest::Client::new()
        .get(format!("http://{}/", app.addr))
        .header("accept", accept)
        .send()
        .await
        .expect("GET /");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

/// Every health route, as the page lists them.
const ROUTES: [&str; 8] = [
    "/health/redis",
    "/health/replica",
    "/health/primary",
    "/health",
    "/health/alive",
    "/health/sentinel",
    "/health/sentinel/ready",
    "/health/queues",
];

/// What a browser sends for a page.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

#[tokio::test]
async fn the_page_is_html_with_safe_headers_and_json_for_scripts() {
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let app = spawn_app(settings(&redis.url())).await;

    let (status, headers, html) = get_page(&app, BROWSER_ACCEPT).await;
    assert_eq!(status, 200);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    assert_eq!(
        header("content-security-policy"),
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("cache-control"), "no-store");
    assert!(html.len() < 32 * 1024, "{} bytes", html.len());
    for path in ROUTES {
        assert!(
            html.contains(&format!("<a href=\"{path}\">")),
            "{path} not linked"
        );
    }
    let version = redis.info_field("redis_version").expect("redis_version");
    assert!(html.contains(&format!("Redis {version}")), "{html}");
    assert!(html.contains(&format!("127.0.0.1:{}", redis.addr().port())));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );

    // A script gets the index; each route's code there is what the route answers.
    let (status, headers, index) = get_page(&app, "application/json").await;
    assert_eq!(status, 200);
    assert_eq!(content_type_of(&headers), "application/json");
    let index: Value = serde_json::from_str(&index).expect("JSON index");
    let routes = index["routes"].as_array().expect("routes");
    assert_eq!(routes.len(), ROUTES.len(), "{index}");
    for route in routes {
        let path = route["path"].as_str().expect("path");
        let answer = app.get(path).await;
        assert_eq!(route["code"], answer.status, "{path}: {index}");
        assert_eq!(route["status"], answer.json["status"], "{path}: {index}");
    }
    assert_eq!(index["status"], app.get("/health").await.json["status"]);
}

fn content_type_of(headers: &reqwest::header::HeaderMap) -> &str {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn queue_lengths_are_drawn_from_the_samples() {
    let redis = TestRedis::start();
    redis.cmd(&["RPUSH", "jobs", "a", "b", "c"]);
    let queues = "checks.sample_interval = \"200ms\"\n\
        [[queues]]\nname = \"jobs\"\nkind = \"list\"\nkey = \"jobs\"\n";
    let app = spawn_app(settings_with(&redis.url(), queues)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, html) = get_page(&app, BROWSER_ACCEPT).await;
        if html.contains("Queue jobs length: now 3, lowest 3, highest 3") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no queue line: {html}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn status_page_false_makes_root_the_404_it_was() {
    let redis = TestRedis::start();
    let app = spawn_app(settings_with(&redis.url(), "server.status_page = false")).await;
    let answer = app.get("/").await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    assert_eq!(answer.json["error"], "not found");
    assert_eq!(app.get("/health/alive").await.status, 200);
}

const SCRIPT: &str = "<script>alert(1)</script>";

#[tokio::test]
async fn what_redis_and_the_config_say_is_shown_as_text() {
    // A master name from Sentinel itself, and one from the config that it
    // does not monitor.
    let primary = TestRedis::start();
    let sentinel = SentinelNode::start(primary.addr().port(), 1);
    assert_eq!(
        sentinel.cmd(&[
            "SENTINEL",
            "MONITOR",
            SCRIPT,
            "127.0.0.1",
            &primary.addr().port().to_string(),
            "1"
        ]),
        "OK"
    );
    let config =
        "sentinel.masters = [\"<script>alert(1)</script>\", \"<img/src=x/onerror=alert(2)>\"]";
    let app = spawn_app(settings_with(&sentinel.url(), config)).await;
    let (_, _, html) = get_page(&app, BROWSER_ACCEPT).await;
    assert!(html.contains("sentinel_unknown_master"), "{html}");
    assert_shown_as_text(&html);
    let page = browse(&app, "sentinel-escaped", 900).await;
    assert_eq!(page["scripts"], 0, "{page}");
    assert_eq!(page["errors"], Value::Array(vec![]), "{page}");
    let text = page["text"].as_str().unwrap_or_default();
    assert!(text.contains(SCRIPT), "{text}");
    assert!(text.contains("<img/src=x/onerror=alert(2)>"), "{text}");

    // An error naming a socket path.
    let url = format!("unix:///tmp/{SCRIPT}.sock");
    let app = spawn_app(settings(&url)).await;
    let (_, _, html) = get_page(&app, BROWSER_ACCEPT).await;
    assert!(html.contains("No such file or directory"), "{html}");
    assert_shown_as_text(&html);
}

fn assert_shown_as_text(html: &str) {
    assert!(
        !html.contains("<script") && !html.contains("<img"),
        "{html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
}

/// The page as a person sees it, in three states of one Redis: healthy; a
/// warning and a critical reason; Redis down. Each state's screenshot is
/// saved under target/status-page/, the healthy one also at a phone's width.
#[tokio::test]
async fn chromium_renders_each_state_in_words_with_nothing_from_elsewhere() {
    let mut redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let sampled = "checks.sample_interval = \"1s\"";
    let app = spawn_app(settings_with(&redis.url(), sampled)).await;
    // The same Redis judged against a memory limit below its RSS.
    let tight = spawn_app(settings_with(
        &redis.url(),
        &format!(
            "{sampled}\nchecks.headroom.limit_bytes = \"1Mi\"\nchecks.memory.warn_no_maxmemory = true"
        ),
    ))
    .await;
    let version = redis.info_field("redis_version").expect("redis_version");

    // Healthy, once the sampler has drawn a few points.
    wait_for_index(&app, |index| index["status"] == "ok").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sample_count(&get_page(&app, BROWSER_ACCEPT).await.2) < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "fewer than three samples after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (name, width) in [("healthy", 900), ("healthy-phone", 390)] {
        let page = browse(&app, name, width).await;
        assert_clean(&page);
        assert_eq!(page["badges"][0], "OK", "{page}");
        assert!(
            page["title"].as_str().unwrap_or_default().starts_with("OK"),
            "{page}"
        );
        let text = page["text"].as_str().unwrap_or_default();
        for words in [
            format!("Redis {version}"),
            "primary".into(),
            "/health/primary".into(),
        ] {
            assert!(text.contains(&words), "{words} not on the page: {text}");
        }
        assert_eq!(page["reasons"], Value::Array(vec![]), "{page}");
        assert_eq!(page["sparklines"], 5, "{page}");
        // Memory, RSS, latency and clients have figures; the hit rate needs lookups.
        assert!(page["lines"].as_u64() >= Some(4), "{page}");
        assert!(
            page["overflow"].as_i64() <= Some(0),
            "wider than the screen: {page}"
        );
    }

    // A warning and a critical reason.
    redis.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    tight
        .wait_for("/health", Duration::from_secs(10), |answer| {
            answer.json["reasons"] == serde_json::json!(["oom_risk", "no_maxmemory"])
        })
        .await;
    let page = browse(&tight, "warn-and-critical", 900).await;
    assert_clean(&page);
    assert_eq!(page["badges"][0], "CRITICAL", "{page}");
    let reasons = page["reasons"].as_array().cloned().unwrap_or_default();
    for reason in ["oom_risk", "no_maxmemory"] {
        assert!(reasons.contains(&Value::from(reason)), "{reason}: {page}");
    }
    let text = page["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("WARN memory") && text.contains("CRITICAL headroom"),
        "{text}"
    );
    assert!(text.contains("the kernel's OOM killer is next"), "{text}");

    // Redis down.
    redis.kill();
    wait_for_index(&app, |index| index["status"] == "down").await;
    let page = browse(&app, "down", 900).await;
    assert_clean(&page);
    assert_eq!(page["badges"][0], "DOWN", "{page}");
    assert_eq!(page["reasons"], Value::from(vec!["unreachable"]), "{page}");
    let text = page["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("Redis could not be asked: Connection refused"),
        "{text}"
    );
    assert!(text.contains("Status changes"), "{text}");
    assert!(
        text.contains("OK\n→\nDOWN") || text.contains("OK → DOWN"),
        "{text}"
    );
}

/// No console error, and the HTTP answer as a browser got it.
fn assert_clean(page: &Value) {
    assert_eq!(page["status"], 200, "{page}");
    assert_eq!(page["errors"], Value::Array(vec![]), "{page}");
    assert_eq!(page["scripts"], 0, "{page}");
}

async fn wait_for_index(app: &TestApp, done: impl Fn(&Value) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, _, text) = get_page(app, "application/json").await;
        let index: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if done(&index) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the index never got there: {index}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// "N samples over ..." on the page.
fn sample_count(html: &str) -> usize {
    html.split_once(" samples over ")
        .and_then(|(before, _)| before.rsplit('>').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Loads `/` from `app` in headless Chromium at `width` CSS pixels, saving
/// target/status-page/`name`.png, and returns what `browse.js` saw.
async fn browse(app: &TestApp, name: &str, width: u32) -> Value {
    let chromium = tool("chromium", "apt-get install chromium");
    let node = tool("node", "apt-get install nodejs");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let modules = root.join("target/test-browser/node_modules");
    assert!(
        modules.join("playwright-core").is_dir(),
        "playwright-core not found in {}: run .ci/install-test-tools",
        modules.display()
    );
    let shots = root.join("target/status-page");
    std::fs::create_dir_all(&shots).expect("screenshot directory");
    let screenshot: PathBuf = shots.join(format!("{name}.png"));
    // Async: the sidecar serves on this test's runtime meanwhile.
    let output = tokio::process::Command::new(node)
        .arg(root.join("tests/it/support/browse.js"))
        .arg(format!("http://{}/", app.addr))
        .arg(&screenshot)
        .arg(width.to_string())
        .env("NODE_PATH", &modules)
        .env("CHROMIUM", chromium)
        .output()
        .await
        .expect("run node");
    assert!(
        output.status.success(),
        "browse.js failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let page: Value = serde_json::from_slice(&output.stdout).expect("browse.js JSON");
    let metadata = std::fs::metadata(&screenshot).expect("screenshot saved");
    assert!(metadata.len() > 1000, "empty screenshot");
    // Nothing was asked of any host but the sidecar.
    let own = format!("http://{}/", app.addr);
    for request in page["requests"].as_array().into_iter().flatten() {
        let url = request.as_str().unwrap_or_default();
        assert!(url.starts_with(&own), "a request left for {url}");
    }
    page
}
