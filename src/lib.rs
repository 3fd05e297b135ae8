//! redis-health: answers HTTP health probes for one Redis node.
//!
//! Data flows one way: [`http`] -> cached round in [`probe`] -> (refresh)
//! [`redis`], which parses INFO once ([`info`]) -> [`checks`] evaluate, per
//! [`routes`] -> [`report`] render.

pub mod checks;
pub mod cli;
pub mod config;
pub mod history;
pub mod http;
pub mod info;
pub mod metrics;
pub mod open_files;
pub mod probe;
pub mod queues;
pub mod redis;
pub mod reload;
pub mod report;
pub mod routes;
pub mod sentinels;
pub mod server;
pub mod status_page;
pub mod telemetry;
pub mod tls;
pub mod trend;
pub mod verdict;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::signal::unix::Signal;

use crate::config::{ServerSettings, Settings};
use crate::probe::Prober;
use crate::reload::Reloader;
use crate::report::Format;
use crate::routes::Route;
use crate::telemetry::LevelHandle;

/// A bound, not yet serving, sidecar; tests bind port 0 and read the address.
pub struct Application {
    listener: TcpListener,
    /// `server.*` as served: `max_connections` capped below the open-file
    /// limit. The settings themselves keep what was configured, so a reload
    /// compares like with like.
    server: ServerSettings,
    prober: Arc<Prober>,
    reload: Option<Reload>,
}

/// What a reloading sidecar needs: where its config came from, the log to
/// retune, and SIGHUP, taken over before anything else.
struct Reload {
    config: Option<PathBuf>,
    log: LevelHandle,
    hangup: Option<Signal>,
}

impl Application {
    /// Binds the listener; Redis is not contacted until the first check.
    /// Caps `server.max_connections` below the open-file limit.
    pub async fn build(settings: Settings) -> std::io::Result<Self> {
        let listener = server::bind(settings.server.listen)?;
        let configured = settings.server.max_connections;
        let limit = open_files::soft_limit();
        let cap = open_files::connection_cap(configured, limit);
        if cap < configured {
            tracing::warn!(
                configured,
                cap,
                open_file_limit = limit,
                reserved = open_files::RESERVED,
                "server.max_connections capped below the open-file limit"
            );
        }
        let server = ServerSettings {
            max_connections: cap,
            ..settings.server.clone()
        };
        let prober = Arc::new(Prober::new(Arc::new(settings)));
        Ok(Self {
            listener,
            server,
            prober,
            reload: None,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until SIGTERM or SIGINT, then lets in-flight probes finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let sampler = tokio::spawn(self.prober.clone().sample_forever());
        let config_file = self.reload.as_ref().and_then(|r| r.config.clone());
        let reloader = self.reload.map(|reload| {
            let reloader = Reloader::new(reload.config, self.prober.clone(), reload.log);
            tokio::spawn(reloader.run(reload.hangup))
        });

        let app = http::router(self.prober, self.server.status_page, config_file);
        server::serve(self.listener, app, &self.server, shutdown_signal()).await;
        sampler.abort();
        if let Some(reloader) = reloader {
            reloader.abort();
        }
        Ok(())
    }
}

/// Builds and serves, reloading from `config` (see [`reload`]): what `main`
/// calls.
pub async fn run(
    settings: Settings,
    config: Option<PathBuf>,
    log: LevelHandle,
) -> std::io::Result<()> {
    let hangup = reload::hangup();
    if let Err(error) = open_files::raise() {
        tracing::warn!(%error, "cannot raise the open-file limit");
    }
    let redis = settings.redis.url.address.to_string();
    let file = config::config_file(config.as_deref())
        .map_or_else(|| "none".to_owned(), |f| f.display().to_string());
    let mut app = Application::build(settings).await?;
    app.reload = Some(Reload {
        config,
        log,
        hangup,
    });
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        listen = %app.local_addr()?,
        redis,
        config = file,
        max_connections = app.server.max_connections,
        "redis-health serving"
    );
    app.run_until_stopped().await
}

/// One check for `route`, as a probe would see it: what `redis-health check`
/// runs. With no history, the windowed checks are left out of the body.
pub async fn check_once(settings: Settings, route: Route) -> probe::Answer {
    Arc::new(Prober::one_shot(Arc::new(settings)))
        .answer(route, probe::Asked::default(), Format::Json)
        .await
}

async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
