//! The status page at `/`, for people: the node, every route and check of
//! the cached round, and the sampled past drawn as sparklines.
//!
//! Rendered on the server per request from the round probes read and the
//! sampler's [`Trend`], so it costs the probes nothing and needs no
//! JavaScript, font or asset from elsewhere (it works air-gapped). Every
//! string from Redis or the config goes through [`escape`].

use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::checks::CheckResult;
use crate::config::FailAt;
use crate::probe::{Asked, answer_from};
use crate::report::{Format, Round};
use crate::routes::Route;
use crate::trend::{Change, Point, Trend};
use crate::verdict::Status;

/// A route's HTTP code for this round, as a probe without a query gets it.
fn code(round: &Round, route: Route) -> u16 {
    answer_from(round, route, Asked::default(), Format::Json)
        .code()
        .as_u16()
}

/// Whether `route` is for the kind of process this round found (a Sentinel
/// or a data node); a route for the other kind is listed last.
fn for_this_node(round: &Round, route: Route) -> bool {
    let sentinel = round
        .outcome
        .as_ref()
        .is_ok_and(|o| o.snapshot.sentinel.is_some());
    round.outcome.is_err() || route.wrong_kind(sentinel).is_none()
}

/// `/` with `Accept: application/json`: the routes and their state now.
pub fn index(round: &Round) -> String {
    let routes: Vec<Value> = Route::EVERY
        .into_iter()
        .map(|route| {
            let report = round.report(route);
            json!({
                "path": route.path(),
                "status": report.status,
                "reason": report.reason,
                "code": code(round, route),
                "fail_at": route.configured_fail_at(&round.settings.routes).map(FailAt::get),
            })
        })
        .collect();
    json!({
        "status": round.report(Route::All).status,
        "checked_at": rfc3339(round.checked_at),
        "routes": routes,
    })
    .to_string()
}

/// The whole page.
pub fn html(round: &Round, trend: &Trend, config_file: Option<&Path>) -> String {
    let mut page = String::with_capacity(16 * 1024);
    // Writing to a String cannot fail.
    let _ = write_page(&mut page, round, trend, config_file);
    page
}

fn write_page(
    out: &mut String,
    round: &Round,
    trend: &Trend,
    config_file: Option<&Path>,
) -> std::fmt::Result {
    let settings = &round.settings;
    let overall = round.report(Route::All);
    let address = format!("{:?}", settings.redis.url);
    let refresh = settings.checks.sample_interval.get().as_secs().max(1);
    write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{refresh}\">\
         <title>{} · redis-health · {}</title><style>{STYLE}</style></head><body>",
        overall.status.as_str().to_uppercase(),
        escape(&address),
    )?;

    // The node.
    let snapshot = round.outcome.as_ref().ok().map(|o| &o.snapshot);
    let role = match snapshot {
        Some(s) if s.sentinel.is_some() => "sentinel",
        Some(s) => s.role.map_or("unknown", |r| match r {
            crate::info::Role::Master => "primary",
            crate::info::Role::Replica => "replica",
        }),
        None => "unknown (Redis did not answer)",
    };
    write!(
        out,
        "<header><h1>{} redis-health</h1><dl>\
         <dt>Redis</dt><dd>{}</dd><dt>Role</dt><dd>{role}</dd><dt>Server</dt><dd>{}</dd>\
         <dt>Checked</dt><dd>{} ({} ago)</dd><dt>Config</dt><dd>{}</dd>\
         <dt>Sidecar</dt><dd>redis-health {}</dd></dl>",
        badge(overall.status),
        escape(&address),
        escape(
            snapshot
                .and_then(|s| s.server.as_deref())
                .unwrap_or("unknown")
        ),
        rfc3339(round.checked_at),
        seconds(round.at.elapsed()),
        escape(&config_file.map_or_else(
            || "none (defaults and REDIS_HEALTH_* variables)".to_owned(),
            |p| p.display().to_string()
        )),
        env!("CARGO_PKG_VERSION"),
    )?;
    if let Err(error) = &round.outcome {
        write!(
            out,
            "<p class=\"error\"><strong>Redis could not be asked:</strong> {}</p>",
            escape(&error.to_string())
        )?;
    }
    out.push_str("</header>");

    // The routes: this node's kind first, worst first.
    let mut routes = Route::EVERY.to_vec();
    routes.sort_by_key(|route| {
        (
            !for_this_node(round, *route),
            std::cmp::Reverse(round.report(*route).status),
        )
    });
    out.push_str(
        "<section><h2>Routes</h2><div class=\"scroll\"><table><thead><tr><th>Route</th>\
         <th>Status</th><th>HTTP now</th><th>Fails at</th><th>Reason</th></tr></thead><tbody>",
    );
    for route in routes {
        let report = round.report(route);
        let fail_at = match (route, route.configured_fail_at(&settings.routes)) {
            (_, Some(fail_at)) => fail_at.get().as_str(),
            (Route::Alive, None) => "no answer at all",
            (_, None) => "the Sentinel itself failing",
        };
        let note = if for_this_node(round, route) {
            ""
        } else {
            " <small>(for the other kind of process)</small>"
        };
        write!(
            out,
            "<tr><td><a href=\"{path}\">{path}</a>{note}</td><td>{}</td><td>{}</td><td>{fail_at}</td><td>{}</td></tr>",
            badge(report.status),
            code(round, route),
            report.reason.map_or("", |r| r.as_str()),
            path = route.path(),
        )?;
    }
    out.push_str("</tbody></table></div></section>");

    // The checks of /health, worst first.
    let mut results = round.results(Route::All);
    results.sort_by_key(|(_, result)| std::cmp::Reverse(result.status()));
    out.push_str("<section><h2>Checks</h2><div class=\"checks\">");
    for (name, result) in &results {
        write_check(out, name, result)?;
    }
    out.push_str("</div></section>");

    // The sampled past.
    let points = trend.points();
    let span = match (points.front(), points.back()) {
        (Some(first), Some(last)) => last.at.duration_since(first.at).unwrap_or_default(),
        _ => Duration::ZERO,
    };
    write!(
        out,
        "<section><h2>Recent past</h2><p class=\"muted\">{} samples over {}, one per {}.</p>",
        points.len(),
        seconds(span),
        seconds(settings.checks.sample_interval.get()),
    )?;
    let rss_limit = points.iter().filter_map(|p| p.limit_bytes).max();
    for series in &SERIES {
        let values: Vec<Option<f64>> = points.iter().map(series.value).collect();
        let limit = rss_limit.filter(|_| series.limit);
        write_sparkline(out, series.title, series.format, series.top, &values, limit)?;
    }
    // The longest queues now; the page stays small however many there are.
    let mut queues: Vec<_> = trend.queues().iter().collect();
    queues.sort_by_key(|(_, lengths)| std::cmp::Reverse(lengths.back().copied().flatten()));
    for (name, lengths) in queues.iter().take(QUEUES_DRAWN) {
        let values: Vec<Option<f64>> = lengths.iter().map(|l| l.map(|n| n as f64)).collect();
        let title = format!("Queue {} length", escape(name));
        write_sparkline(out, &title, count, None, &values, None)?;
    }
    if queues.len() > QUEUES_DRAWN {
        write!(
            out,
            "<p class=\"muted\">{} more queues: see <a href=\"/health/queues\">/health/queues</a>.</p>",
            queues.len() - QUEUES_DRAWN
        )?;
    }
    out.push_str("</section>");

    // Status changes, newest first; routes that changed alike at one
    // sample on one line.
    out.push_str("<section><h2>Status changes</h2>");
    if trend.changes().is_empty() {
        out.push_str("<p class=\"muted\">None since the sidecar started.</p>");
    } else {
        out.push_str("<ul class=\"changes\">");
        let mut changes: Vec<_> = trend.changes().iter().rev().collect();
        while let Some(first) = changes.first().copied() {
            let alike = |c: &&Change| (c.at, c.from, c.to) == (first.at, first.from, first.to);
            let paths: Vec<String> = changes
                .iter()
                .filter(|c| alike(c))
                .map(|c| format!("<a href=\"{path}\">{path}</a>", path = c.route.path()))
                .collect();
            changes.retain(|c| !alike(c));
            write!(
                out,
                "<li>{} {} → {}: {}</li>",
                rfc3339(first.at),
                badge(first.from),
                badge(first.to),
                paths.join(", "),
            )?;
        }
        out.push_str("</ul>");
    }
    out.push_str(
        "</section><footer>Probes read JSON: <a href=\"/health\">/health</a>, \
         <a href=\"/metrics\">/metrics</a>. This page refreshes itself.</footer></body></html>",
    );
    Ok(())
}

fn write_check(out: &mut String, name: &str, result: &CheckResult) -> std::fmt::Result {
    write!(
        out,
        "<article class=\"check\"><h3>{} {}</h3>",
        badge(result.status()),
        escape(name)
    )?;
    if let Some(why) = result.skipped_because() {
        write!(
            out,
            "<p class=\"muted\">Skipped: {}</p></article>",
            escape(why)
        )?;
        return Ok(());
    }
    if !result.reasons.is_empty() {
        out.push_str("<ul class=\"reasons\">");
        for reason in &result.reasons {
            write!(
                out,
                "<li><code>{}</code> ({}): {}</li>",
                reason.as_str(),
                reason.status().as_str(),
                escape(reason.meaning())
            )?;
        }
        out.push_str("</ul>");
    }
    if !result.observed.is_empty() {
        out.push_str("<dl class=\"figures\">");
        for (key, value) in &result.observed {
            let shown = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            write!(out, "<dt>{}</dt><dd>{}</dd>", escape(key), escape(&shown))?;
        }
        out.push_str("</dl>");
    }
    out.push_str("</article>");
    Ok(())
}

/// One figure drawn over the ring.
struct Series {
    title: &'static str,
    value: fn(&Point) -> Option<f64>,
    format: fn(f64) -> String,
    /// A fixed top of the scale (ratios), else the largest value seen.
    top: Option<f64>,
    /// Drawn against the memory limit, shown as a line at its height.
    limit: bool,
}

const SERIES: [Series; 5] = [
    Series {
        title: "Hit rate (over checks.window)",
        value: |p| p.hit_ratio,
        format: percent,
        top: Some(1.0),
        limit: false,
    },
    Series {
        title: "Memory, of maxmemory",
        value: |p| p.memory_ratio,
        format: percent,
        top: Some(1.0),
        limit: false,
    },
    Series {
        title: "RSS against the memory limit",
        value: |p| p.rss_bytes.map(|b| b as f64),
        format: mebibytes,
        top: None,
        limit: true,
    },
    Series {
        title: "PING latency",
        value: |p| p.latency.map(|l| l.as_secs_f64() * 1000.0),
        format: |ms| format!("{ms:.2} ms"),
        top: None,
        limit: false,
    },
    Series {
        title: "Connected clients",
        value: |p| p.clients.map(|c| c as f64),
        format: count,
        top: None,
        limit: false,
    },
];

fn percent(ratio: f64) -> String {
    format!("{:.1} %", ratio * 100.0)
}

fn count(n: f64) -> String {
    format!("{n:.0}")
}

fn mebibytes(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

/// Width of a sparkline in SVG units: at most this many points are drawn,
/// samples averaged in buckets beyond it, which keeps the page small.
const WIDTH: usize = 180;
const HEIGHT: f64 = 40.0;

/// Queues drawn at most, the longest first.
const QUEUES_DRAWN: usize = 6;

/// One figure over the ring, `title` already escaped, scaled to `top` (else
/// the largest value) and to `limit`, drawn as a line at the top.
fn write_sparkline(
    out: &mut String,
    title: &str,
    format: fn(f64) -> String,
    top: Option<f64>,
    values: &[Option<f64>],
    limit: Option<u64>,
) -> std::fmt::Result {
    let seen: Vec<f64> = values.iter().flatten().copied().collect();
    write!(out, "<figure><figcaption>{title}: ")?;
    match (values.last(), seen.last(), min_max(&seen)) {
        (Some(Some(now)), _, Some((min, max))) => write!(
            out,
            "now {}, lowest {}, highest {}",
            format(*now),
            format(min),
            format(max)
        )?,
        (_, Some(last), Some((min, max))) => write!(
            out,
            "no figure now (last {}), lowest {}, highest {}",
            format(*last),
            format(min),
            format(max)
        )?,
        _ => out.push_str("no figure in the samples yet"),
    }
    if let Some(limit) = limit {
        write!(out, "; limit {}", format(limit as f64))?;
    }
    out.push_str("</figcaption>");
    let top = top
        .unwrap_or_else(|| min_max(&seen).map_or(1.0, |(_, max)| max))
        .max(limit.map_or(0.0, |l| l as f64))
        .max(f64::MIN_POSITIVE);
    write!(
        out,
        "<svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" preserveAspectRatio=\"none\" aria-hidden=\"true\">"
    )?;
    if limit.is_some() {
        out.push_str("<line class=\"limit\" x1=\"0\" y1=\"1\" x2=\"180\" y2=\"1\"/>");
    }
    let bucket = values.len().div_ceil(WIDTH).max(1);
    // The newest at the right edge, as the ring fills from there.
    let first_x = WIDTH - values.len().div_ceil(bucket);
    let mut line = String::new();
    for (i, chunk) in values.chunks(bucket).enumerate() {
        let x = first_x + i;
        let present: Vec<f64> = chunk.iter().flatten().copied().collect();
        if present.is_empty() {
            // A gap (Redis down, no data): end the line here.
            flush_line(out, &mut line);
            continue;
        }
        let mean = present.iter().sum::<f64>() / present.len() as f64;
        let y = HEIGHT - (mean / top).clamp(0.0, 1.0) * (HEIGHT - 2.0) - 1.0;
        let _ = write!(line, "{x},{y:.0} ");
    }
    flush_line(out, &mut line);
    out.push_str("</svg></figure>");
    Ok(())
}

fn flush_line(out: &mut String, line: &mut String) {
    if !line.is_empty() {
        let points = line.trim_end();
        // One point alone draws nothing as a line: a dot instead.
        if points.contains(' ') {
            let _ = write!(out, "<polyline points=\"{points}\"/>");
        } else if let Some((x, y)) = points.split_once(',') {
            let _ = write!(out, "<circle cx=\"{x}\" cy=\"{y}\" r=\"1.5\"/>");
        }
        line.clear();
    }
}

fn min_max(values: &[f64]) -> Option<(f64, f64)> {
    let first = *values.first()?;
    Some(
        values
            .iter()
            .fold((first, first), |(lo, hi), v| (lo.min(*v), hi.max(*v))),
    )
}

/// The status in words, coloured by class: never colour alone.
fn badge(status: Status) -> String {
    let word = status.as_str();
    format!(
        "<span class=\"badge s-{word}\">{}</span>",
        word.to_uppercase()
    )
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

fn seconds(span: Duration) -> String {
    humantime::format_duration(Duration::from_secs(span.as_secs())).to_string()
}

/// Text safe inside an element or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Inline, as the page's CSP allows no stylesheet from anywhere.
const STYLE: &str = "\
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:62rem;padding:.75rem;color:#1b1b1b;background:#fafafa}\
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.2rem 0 .4rem;border-bottom:1px solid #ccc}\
h3{font-size:1rem;margin:.2rem 0}dl{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .8rem;margin:.3rem 0}\
dt{color:#555}dd{margin:0;overflow-wrap:anywhere}table{border-collapse:collapse;width:100%}\
td,th{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #e2e2e2;vertical-align:top}\
.scroll{overflow-x:auto}.badge{display:inline-block;min-width:5.5em;text-align:center;font-weight:600;\
border-radius:.3rem;padding:0 .3rem;font-size:.85rem;border:1px solid #0003}\
.s-ok{background:#d7f5dc;color:#0b4d1a}.s-warn{background:#fff1c2;color:#5c4300}\
.s-degraded{background:#ffdcb8;color:#6b2e00}.s-critical{background:#ffc9c9;color:#7a0000}\
.s-down{background:#7a0000;color:#fff}.check{background:#fff;border:1px solid #e2e2e2;border-radius:.4rem;\
padding:.4rem .6rem;margin:.4rem 0}.figures{font-size:.9rem}.checks{display:grid;grid-template-columns:repeat(auto-fill,minmax(17rem,1fr));gap:0 .6rem}.muted{color:#555}.error{background:#ffc9c9;\
padding:.4rem;border-radius:.3rem;overflow-wrap:anywhere}figure{margin:.5rem 0}\
svg{display:block;width:100%;height:40px;background:#fff;border:1px solid #e2e2e2}\
polyline{fill:none;stroke:#1f5fbf;stroke-width:1.5;vector-effect:non-scaling-stroke}\
circle{fill:#1f5fbf}.limit{stroke:#b00;stroke-dasharray:4 3;vector-effect:non-scaling-stroke}\
ul{padding-left:1.2rem;margin:.3rem 0}footer{margin:1.5rem 0;color:#555;font-size:.9rem}\
@media (max-width:40rem){body{font-size:14px}dl{grid-template-columns:1fr}dt{font-weight:600}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn sparkline_draws_gaps_and_scales_to_its_top() {
        let mut out = String::new();
        let values = [Some(1.0), Some(0.5), None, Some(0.0)];
        write_sparkline(&mut out, "Hit rate", percent, Some(1.0), &values, None).ok();
        // Two pieces: a line before the gap, a dot after it.
        assert!(out.contains("<polyline points=\"176,1 177,20\"/>"), "{out}");
        assert!(out.contains("<circle cx=\"179\" cy=\"39\""), "{out}");
        assert!(
            out.contains("now 0.0 %, lowest 0.0 %, highest 100.0 %"),
            "{out}"
        );
    }

    /// A phone on a slow link gets the whole page in one small answer.
    #[test]
    fn a_full_ring_and_every_check_stay_under_32_kib() {
        let info = include_str!("../tests/fixtures/info-redis-7.0-primary.txt");
        let round = crate::trend::tests::round(Some(info));
        let mut trend = Trend::default();
        for second in 0..crate::trend::SAMPLES as u64 {
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(second);
            trend.record(&round, at);
            // Every second sample down: the most changes, the most gaps.
            if second % 2 == 0 {
                trend.record(&crate::trend::tests::round(None), at);
            }
        }
        let page = html(
            &round,
            &trend,
            Some(Path::new("/etc/redis-health/main.toml")),
        );
        assert!(page.len() < 32 * 1024, "{} bytes", page.len());
        assert!(page.contains("Redis 7.0.15"), "{page}");
    }

    #[test]
    fn a_full_ring_draws_at_most_width_points() {
        let values: Vec<Option<f64>> = (0..crate::trend::SAMPLES).map(|i| Some(i as f64)).collect();
        let mut out = String::new();
        write_sparkline(&mut out, "Clients", count, None, &values, None).ok();
        let points = out
            .split("points=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default();
        assert_eq!(points.split(' ').count(), WIDTH);
    }
}
