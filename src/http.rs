//! The HTTP layer: routes, and the one place where outcomes become status
//! codes and JSON bodies.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::config::FailAt;
use crate::probe::Prober;
use crate::report::{Format, Route};

pub fn router(prober: Arc<Prober>) -> Router {
    Route::EVERY
        .into_iter()
        .fold(Router::new(), |router, route| {
            router.route(
                route.path(),
                get(move |s: State<Arc<Prober>>, r: Request| health(s, r, route)),
            )
        })
        .route("/metrics", get(metrics))
        .route("/livez", get(livez))
        .fallback(|request: Request| async move {
            // CONNECT names a host, not a path, so no route matches it.
            let unmatched = if request.method() == Method::CONNECT {
                HttpError::MethodNotAllowed
            } else {
                HttpError::NotFound
            };
            refuse_oversized(&request).err().unwrap_or(unmatched)
        })
        .method_not_allowed_fallback(|request: Request| async move {
            refuse_oversized(&request)
                .err()
                .unwrap_or(HttpError::MethodNotAllowed)
        })
        .with_state(prober)
}

/// Longest path and query accepted; a probe's is a few dozen bytes.
const MAX_URI_BYTES: usize = 2048;
/// Most header bytes accepted (names and values).
const MAX_HEADER_BYTES: usize = 8 * 1024;

/// Refuses heads that no probe sends, with a JSON body. Heads beyond
/// [`crate::server::MAX_HEAD_BYTES`] never get here: hyper refuses them.
///
/// Each handler calls it first rather than a middleware wrapping them all:
/// axum's `from_fn` middleware boxes a future per request, which cost about
/// a tenth of the probe rate in the benchmark.
fn refuse_oversized(request: &Request) -> Result<(), HttpError> {
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if uri > MAX_URI_BYTES {
        return Err(HttpError::UriTooLong);
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers > MAX_HEADER_BYTES {
        return Err(HttpError::HeadersTooLarge);
    }
    Ok(())
}

/// The sidecar itself answers: nothing about Redis.
async fn livez(request: Request) -> Result<Response, HttpError> {
    refuse_oversized(&request)?;
    Ok(json(StatusCode::OK, r#"{"status":"ok"}"#))
}

/// Reads the query and Accept header in place: a probe copies no headers.
async fn health(
    State(prober): State<Arc<Prober>>,
    request: Request,
    route: Route,
) -> Result<Response, HttpError> {
    let started = Instant::now();
    let fail_at = match refuse_oversized(&request)
        .and_then(|()| request.uri().query().map(requested_fail_at).transpose())
    {
        Ok(fail_at) => fail_at.flatten(),
        Err(error) => {
            prober
                .metrics()
                .probe_answered(route, error.code(), started.elapsed());
            return Err(error);
        }
    };
    let format = if accepts_health_json(request.headers()) {
        Format::HealthJson
    } else {
        Format::Json
    };
    let answer = prober.answer(route, fail_at, format).await;
    let code = if answer.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    prober
        .metrics()
        .probe_answered(route, code, started.elapsed());
    let mut response = json(code, answer.body);
    if format == Format::HealthJson {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HEALTH_JSON);
    }
    Ok(response)
}

const HEALTH_JSON: HeaderValue = HeaderValue::from_static("application/health+json");

/// Plain JSON stays the default; only a caller naming health+json gets it.
fn accepts_health_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("application/health+json"))
}

const PROMETHEUS_TEXT: HeaderValue =
    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");

/// Served from the latest check: a scrape sends Redis nothing.
async fn metrics(
    State(prober): State<Arc<Prober>>,
    request: Request,
) -> Result<Response, HttpError> {
    refuse_oversized(&request)?;
    let text = prober.metrics().render().map_err(|_| HttpError::Metrics)?;
    let mut response = Response::new(Body::from(text));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, PROMETHEUS_TEXT);
    Ok(response)
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
    #[error("metrics could not be rendered")]
    Metrics,
    #[error("URI too long")]
    UriTooLong,
    #[error("request headers too large")]
    HeadersTooLarge,
}

impl HttpError {
    fn code(&self) -> StatusCode {
        match self {
            HttpError::NotFound => StatusCode::NOT_FOUND,
            HttpError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            HttpError::BadQuery(_) => StatusCode::BAD_REQUEST,
            HttpError::Metrics => StatusCode::INTERNAL_SERVER_ERROR,
            HttpError::UriTooLong => StatusCode::URI_TOO_LONG,
            HttpError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let code = self.code();
        let body = serde_json::json!({ "status": "error", "error": self.to_string() });
        json(code, body.to_string())
    }
}
