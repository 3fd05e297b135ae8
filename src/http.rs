//! The HTTP layer: routes, and the one place where outcomes become status
//! codes and JSON bodies.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::probe::Prober;
use crate::report::Route;

pub fn router(prober: Arc<Prober>) -> Router {
    Router::new()
        .route(
            Route::Redis.path(),
            get(|s: State<Arc<Prober>>| health(s, Route::Redis)),
        )
        .route(
            Route::Replica.path(),
            get(|s: State<Arc<Prober>>| health(s, Route::Replica)),
        )
        .route(
            Route::Primary.path(),
            get(|s: State<Arc<Prober>>| health(s, Route::Primary)),
        )
        .route(
            Route::All.path(),
            get(|s: State<Arc<Prober>>| health(s, Route::All)),
        )
        .route(
            "/livez",
            get(|| async { json(StatusCode::OK, r#"{"status":"ok"}"#) }),
        )
        .fallback(|| async { HttpError::NotFound })
        .method_not_allowed_fallback(|| async { HttpError::MethodNotAllowed })
        .layer(middleware::from_fn(refuse_oversized))
        .with_state(prober)
}

/// Longest path and query accepted; a probe's is a few dozen bytes.
pub const MAX_URI_BYTES: usize = 2048;
/// Most header bytes accepted (names and values).
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// Refuses heads that no probe sends, with a JSON body. Heads beyond
/// [`crate::server::MAX_HEAD_BYTES`] never get here: hyper refuses them.
async fn refuse_oversized(request: Request, next: Next) -> Response {
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if uri > MAX_URI_BYTES {
        return HttpError::UriTooLong.into_response();
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers > MAX_HEADER_BYTES {
        return HttpError::HeadersTooLarge.into_response();
    }
    next.run(request).await
}

async fn health(State(prober): State<Arc<Prober>>, route: Route) -> Response {
    let answer = prober.answer(route).await;
    let code = if answer.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(code, answer.body)
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
    #[error("URI too long")]
    UriTooLong,
    #[error("request headers too large")]
    HeadersTooLarge,
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let code = match self {
            HttpError::NotFound => StatusCode::NOT_FOUND,
            HttpError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            HttpError::UriTooLong => StatusCode::URI_TOO_LONG,
            HttpError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        };
        let body = serde_json::json!({ "status": "error", "error": self.to_string() });
        json(code, body.to_string())
    }
}
