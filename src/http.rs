//! The HTTP layer: routes, and the one place where outcomes become status
//! codes and JSON bodies.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
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
            get(|| async { json(StatusCode::OK, r#"{"status":"ok"}"#.to_owned()) }),
        )
        .fallback(|| async { HttpError::NotFound })
        .method_not_allowed_fallback(|| async { HttpError::MethodNotAllowed })
        .with_state(prober)
}

async fn health(State(prober): State<Arc<Prober>>, route: Route) -> Response {
    let round = prober.current().await;
    let report = round.report(route);
    let code = if report.healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(code, report.body(round.at.elapsed()))
}

fn json(code: StatusCode, body: String) -> Response {
    (
        code,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
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
