//! The HTTP layer: routes, and the one place where outcomes become status
//! codes and JSON bodies.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::config::FailAt;
use crate::probe::Prober;
use crate::report::Route;

pub fn router(prober: Arc<Prober>) -> Router {
    Route::EVERY
        .into_iter()
        .fold(Router::new(), |router, route| {
            router.route(
                route.path(),
                get(move |s: State<Arc<Prober>>, q: RawQuery| health(s, q, route)),
            )
        })
        .route(
            "/livez",
            get(|| async { json(StatusCode::OK, r#"{"status":"ok"}"#) }),
        )
        .fallback(|| async { HttpError::NotFound })
        .method_not_allowed_fallback(|| async { HttpError::MethodNotAllowed })
        .with_state(prober)
}

async fn health(
    State(prober): State<Arc<Prober>>,
    RawQuery(query): RawQuery,
    route: Route,
) -> Result<Response, HttpError> {
    let fail_at = match query {
        Some(query) => requested_fail_at(&query)?,
        None => None,
    };
    let answer = prober.answer(route, fail_at).await;
    let code = if answer.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(json(code, answer.body))
}

/// `?fail_at=` for callers that cannot change the config; other
/// parameters are ignored (cache-busters and the like).
fn requested_fail_at(query: &str) -> Result<Option<FailAt>, HttpError> {
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(key, _)| key == "fail_at")
        .last()
        .map(|(_, value)| value.parse().map_err(HttpError::BadQuery))
        .transpose()
}

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

fn json(code: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, APPLICATION_JSON);
    headers.insert(header::CACHE_CONTROL, NO_STORE);
    response
}

/// Requests the sidecar refuses, each answered with a JSON body.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("fail_at: {0}")]
    BadQuery(String),
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let code = match self {
            HttpError::NotFound => StatusCode::NOT_FOUND,
            HttpError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            HttpError::BadQuery(_) => StatusCode::BAD_REQUEST,
        };
        let body = serde_json::json!({ "status": "error", "error": self.to_string() });
        json(code, body.to_string())
    }
}
