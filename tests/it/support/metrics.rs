//! Reading /metrics: one scrape and one reader for the value of one series.

use super::{TestApp, TestBinary, content_type};

/// `GET /metrics` from a sidecar in this process, asserting 200: the
/// content type and the text.
pub async fn scrape_with_type(app: &TestApp) -> (String, String) {
    let response = reqwest::get(format!("http://{}/metrics", app.addr))
        .await
        .expect("scrape");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = content_type(&response);
    (content_type, response.text().await.expect("metrics text"))
}

/// `GET /metrics` from a sidecar in this process, asserting 200.
pub async fn scrape(app: &TestApp) -> String {
    scrape_with_type(app).await.1
}

/// `GET /metrics` from the real binary.
pub async fn scrape_binary(app: &TestBinary) -> String {
    app.get("/metrics").await.1
}

/// The value of one series in a Prometheus text: `name` with exactly
/// `labels` as they are written between the braces (`""` for none), e.g.
/// `value(text, "redis_health_check_status", r#"check="memory""#)`.
pub fn value(text: &str, name: &str, labels: &str) -> Option<f64> {
    let series = if labels.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{labels}}}")
    };
    text.lines()
        .find_map(|line| line.strip_prefix(series.as_str())?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}
