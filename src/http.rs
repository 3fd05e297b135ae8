//! The HTTP layer: routes, and the one place where outcomes become status
//! codes and JSON bodies.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::config::WarnCode;
use crate::probe::{Asked, Prober};
use crate::report::Format;
use crate::routes::Route;
use crate::status_page;

/// The routes; with `status_page` (`server.status_page`), the page at `/`,
/// which names `config_file` as the config in force.
pub fn router(prober: Arc<Prober>, status_page: bool, config_file: Option<PathBuf>) -> Router {
    let router = Route::EVERY
        .into_iter()
        .fold(Router::new(), |router, route| {
            router.route(
                route.path(),
                get(move |s: State<Arc<Prober>>, r: Request| health(s, r, route)),
            )
        });
    let router = if status_page {
        let config_file = Arc::new(config_file);
        router.route(
            "/",
            get(move |s: State<Arc<Prober>>, r: Request| page(s, r, config_file.clone())),
        )
    } else {
        router
    };
    router
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

/// The status page, or with `Accept: application/json` its JSON index.
/// Rendered per request from the round probes read: a page view runs no
/// check of its own unless the round is older than `checks.max_age`.
async fn page(
    State(prober): State<Arc<Prober>>,
    request: Request,
    config_file: Arc<Option<PathBuf>>,
) -> Result<Response, HttpError> {
    refuse_oversized(&request)?;
    let round = prober.round().await;
    let mut response = if wants_json(request.headers()) {
        json(StatusCode::OK, status_page::index(&round))
    } else {
        let html = prober
            .with_trend(|trend| status_page::html(&round, trend, config_file.as_ref().as_deref()));
        let mut response = Response::new(Body::from(html));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, TEXT_HTML);
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, PAGE_POLICY);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    headers.insert(header::CACHE_CONTROL, NO_STORE);
    Ok(response)
}

const TEXT_HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
/// Nothing loads from anywhere: inline styles and data: images only.
const PAGE_POLICY: HeaderValue =
    HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// A script asking for JSON by name, and not for HTML (a browser names
/// text/html, and only `*/*` besides).
fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers.get_all(header::ACCEPT);
    let names = |media: &str| {
        accept
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|item| {
                item.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case(media))
            })
    };
    names("application/json") && !names("text/html")
}

/// Reads the query and Accept header in place: a probe copies no headers.
async fn health(
    State(prober): State<Arc<Prober>>,
    request: Request,
    route: Route,
) -> Result<Response, HttpError> {
    let started = Instant::now();
    let asked = match refuse_oversized(&request)
        .and_then(|()| request.uri().query().map_or(Ok(Asked::default()), asked_by))
    {
        Ok(asked) => asked,
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
    let answer = prober.answer(route, asked, format).await;
    let code = answer.code();
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

const HEALTH_JSON_TYPE: &[u8] = b"application/health+json";

/// Plain JSON stays the default; only a caller naming health+json, with a
/// q-value above plain JSON's (`application/json`, else `application/*`,
/// else `*/*`), gets it. Plain JSON wins a tie; `q=0` means "not acceptable".
///
/// On every probe: headers that do not name health+json (none, `*/*`) cost
/// one scan, and none is copied.
fn accepts_health_json(headers: &HeaderMap) -> bool {
    let accept = headers.get_all(header::ACCEPT);
    accept
        .iter()
        .any(|value| names_health_json(value.as_bytes()))
        && prefers_health_json(accept)
}

/// The q-values of an Accept that names health+json: a call of its own, so
/// the common case above stays small enough to inline.
#[inline(never)]
fn prefers_health_json(accept: header::GetAll<'_, HeaderValue>) -> bool {
    let mut health = Preference::default();
    let mut json = Preference::default();
    for range in accept
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
    {
        let mut parts = range.split(|b| *b == b';');
        let media = parts.next().map_or(&[][..], |m| m.trim_ascii());
        let Some(q) = parts.try_fold(MAX_Q, |q, param| match split_param(param) {
            Some((name, value)) if name.eq_ignore_ascii_case(b"q") => parse_q(value),
            _ => Some(q),
        }) else {
            continue;
        };
        let specificity = if media == b"*/*" {
            1
        } else if media.eq_ignore_ascii_case(b"application/*") {
            2
        } else {
            3
        };
        if specificity < 3 || media.eq_ignore_ascii_case(HEALTH_JSON_TYPE) {
            health.offer(specificity, q);
        }
        if specificity < 3 || media.eq_ignore_ascii_case(b"application/json") {
            json.offer(specificity, q);
        }
    }
    health.q > json.q
}

/// Whether an Accept value may name health+json (any case): a `+` between
/// `health` and `json`. Only such values are parsed in full.
fn names_health_json(value: &[u8]) -> bool {
    value
        .iter()
        .enumerate()
        .filter(|(_, byte)| **byte == b'+')
        .any(|(at, _)| {
            at.checked_sub(6)
                .is_some_and(|from| value[from..at].eq_ignore_ascii_case(b"health"))
                && value
                    .get(at + 1..at + 5)
                    .is_some_and(|json| json.eq_ignore_ascii_case(b"json"))
        })
}

/// q-values in thousandths: 1 is 1000.
const MAX_Q: u16 = 1000;

/// A media type's q-value, from the most specific range that matches it.
#[derive(Default)]
struct Preference {
    specificity: u8,
    q: u16,
}

impl Preference {
    fn offer(&mut self, specificity: u8, q: u16) {
        if specificity > self.specificity {
            *self = Self { specificity, q };
        }
    }
}

fn split_param(param: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = param.iter().position(|b| *b == b'=')?;
    Some((param[..at].trim_ascii(), param[at + 1..].trim_ascii()))
}

/// `0`, `0.5`, `1.000`...: at most three decimals, at most 1. Anything
/// else is malformed (`None`), and its range is ignored.
fn parse_q(value: &[u8]) -> Option<u16> {
    let (whole, fraction) = match value.iter().position(|b| *b == b'.') {
        Some(dot) => (&value[..dot], &value[dot + 1..]),
        None => (value, &[][..]),
    };
    let whole = match whole {
        b"0" => 0,
        b"1" => MAX_Q,
        _ => return None,
    };
    if fraction.len() > 3 || !fraction.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let thousandths = fraction
        .iter()
        .chain(std::iter::repeat(&b'0'))
        .take(3)
        .fold(0, |n, digit| n * 10 + u16::from(digit - b'0'));
    let q = whole + thousandths;
    (q <= MAX_Q).then_some(q)
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

/// The query parameters a probe may pass.
const PARAMETERS: [&str; 2] = ["fail_at", "warn_code"];

/// `?fail_at=` and `?warn_code=`, for callers that cannot change the config
/// (the last of each wins, every one is validated). A near miss of either
/// (`failat`, `Fail_At`, `warn-code`) is refused, as ignoring it would
/// quietly answer by another level; other parameters are ignored
/// (cache-busters and the like).
fn asked_by(query: &str) -> Result<Asked, HttpError> {
    let mut asked = Asked::default();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "fail_at" => {
                asked.fail_at = Some(value.parse().map_err(|e| HttpError::BadQuery {
                    parameter: "fail_at",
                    message: e,
                })?);
            }
            "warn_code" => {
                let code = value
                    .parse::<u64>()
                    .map_err(|_| "must be a 2xx code or 429".to_owned())
                    .and_then(WarnCode::try_from)
                    .map_err(|message| HttpError::BadQuery {
                        parameter: "warn_code",
                        message,
                    })?;
                asked.warn_code = Some(code);
            }
            other => {
                if let Some(known) = PARAMETERS.into_iter().find(|known| near_miss(other, known)) {
                    return Err(HttpError::MisspelledQuery {
                        given: other.to_owned(),
                        known,
                    });
                }
            }
        }
    }
    Ok(asked)
}

/// Whether `given` is `known` but for case, `-` and `_`.
fn near_miss(given: &str, known: &str) -> bool {
    let folded = |text: &str| {
        text.chars()
            .filter(|c| *c != '-' && *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    // Only names of about the right length are folded: a probe's own
    // parameters cost nothing here.
    given.len() <= known.len() + 4 && folded(given) == folded(known)
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
    #[error("{parameter}: {message}")]
    BadQuery {
        parameter: &'static str,
        message: String,
    },
    #[error("unknown query parameter {given:?}: did you mean {known}?")]
    MisspelledQuery { given: String, known: &'static str },
    #[error("metrics could not be rendered")]
    Metrics,
    #[error("URI too long")]
    UriTooLong,
    #[error("request headers too large")]
    HeadersTooLarge,
}

impl HttpError {
    const BAD_QUERY: StatusCode = StatusCode::BAD_REQUEST;
    const URI_TOO_LONG: StatusCode = StatusCode::URI_TOO_LONG;
    const HEADERS_TOO_LARGE: StatusCode = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;

    fn code(&self) -> StatusCode {
        match self {
            HttpError::NotFound => StatusCode::NOT_FOUND,
            HttpError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            HttpError::BadQuery { .. } | HttpError::MisspelledQuery { .. } => Self::BAD_QUERY,
            HttpError::Metrics => StatusCode::INTERNAL_SERVER_ERROR,
            HttpError::UriTooLong => Self::URI_TOO_LONG,
            HttpError::HeadersTooLarge => Self::HEADERS_TOO_LARGE,
        }
    }
}

/// Every code a health route answers a probe with, from the mappings here:
/// the verdict's (200, 503, and 429, the one `warn_code` outside 2xx) and
/// the refusals of a probe's own request. /metrics keeps a counter handle
/// for each; another 2xx `warn_code` is counted on a slower path.
pub const PROBE_CODES: [StatusCode; 6] = [
    StatusCode::OK,
    StatusCode::SERVICE_UNAVAILABLE,
    StatusCode::TOO_MANY_REQUESTS,
    HttpError::BAD_QUERY,
    HttpError::URI_TOO_LONG,
    HttpError::HEADERS_TOO_LARGE,
];

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let code = self.code();
        let body = serde_json::json!({ "status": "error", "error": self.to_string() });
        json(code, body.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health_json_for(values: &[&str]) -> bool {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        }
        accepts_health_json(&headers)
    }

    #[test]
    fn plain_json_unless_health_json_is_named() {
        assert!(!health_json_for(&[]));
        assert!(!health_json_for(&["*/*"]));
        assert!(!health_json_for(&["application/json"]));
        assert!(!health_json_for(&[
            "text/html,application/xhtml+xml,*/*;q=0.8"
        ]));
        assert!(health_json_for(&["application/health+json"]));
        assert!(health_json_for(&["Application/Health+JSON"]));
        assert!(health_json_for(&["text/plain", "application/health+json"]));
    }

    #[test]
    fn q_zero_is_not_acceptable() {
        assert!(!health_json_for(&["application/health+json;q=0"]));
        assert!(!health_json_for(&["application/health+json ; Q = 0.000"]));
        assert!(!health_json_for(&["*/*, application/health+json;q=0"]));
    }

    #[test]
    fn the_higher_q_wins_and_plain_json_wins_a_tie() {
        assert!(!health_json_for(&[
            "application/json, application/health+json;q=0.5"
        ]));
        assert!(health_json_for(&[
            "application/json;q=0.4, application/health+json;q=0.5"
        ]));
        assert!(!health_json_for(&[
            "application/health+json, application/json"
        ]));
        assert!(!health_json_for(&[
            "application/health+json;q=0.5, */*;q=0.5"
        ]));
        assert!(health_json_for(&[
            "application/health+json;q=0.5, */*;q=0.1"
        ]));
        // The most specific range decides: application/* outranks */*.
        assert!(health_json_for(&[
            "application/health+json;q=0.5, application/*;q=0.2, */*"
        ]));
        assert!(!health_json_for(&[
            "application/health+json;q=0.9, application/*"
        ]));
    }

    #[test]
    fn near_misses_of_a_parameter_are_refused_others_ignored() {
        for given in ["failat", "Fail_At", "FAIL-AT", "fail__at"] {
            assert!(near_miss(given, "fail_at"), "{given}");
        }
        for given in ["warn-code", "warncode", "WARN_CODE"] {
            assert!(near_miss(given, "warn_code"), "{given}");
        }
        for given in ["fail", "cache_buster", "fail_at_x", "_", ""] {
            assert!(!near_miss(given, "fail_at"), "{given}");
        }
        assert!(matches!(
            asked_by("Fail_At=critical"),
            Err(HttpError::MisspelledQuery {
                known: "fail_at",
                ..
            })
        ));
        assert!(asked_by("t=1&x-fail=2").is_ok());
    }

    #[test]
    fn a_malformed_q_ignores_its_range() {
        for q in ["2", "0.5000", "-1", "abc", "", "1.5", "0.5x"] {
            let value = format!("application/health+json;q={q}");
            assert!(!health_json_for(&[&value]), "{q}");
        }
        assert_eq!(parse_q(b"1.000"), Some(1000));
        assert_eq!(parse_q(b"0.25"), Some(250));
        assert_eq!(parse_q(b"1."), Some(1000));
    }
}
