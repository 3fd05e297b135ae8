//! The HTTP layer: routes, and the one place where outcomes become status
//! codes and JSON bodies.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
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
        .with_state(prober)
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
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let code = match self {
            HttpError::NotFound => StatusCode::NOT_FOUND,
            HttpError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        };
        let body = serde_json::json!({ "status": "error", "error": self.to_string() });
        json(code, body.to_string())
    }
}
