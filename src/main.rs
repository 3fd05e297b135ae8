use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use redis_health::cli::{Cli, Command};
use redis_health::config::Settings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("redis-health: {error}");
            return ExitCode::from(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    let mut settings = settings;
    if matches!(command, Command::Check { .. }) {
        // The body on stdout says it all; status-change lines would repeat it.
        settings.log.level = redis_health::config::LogLevel::errors_only();
    }
    let log = redis_health::telemetry::init(&settings.log);
    settings.log_deprecated();
    let ignored = redis_health::config::ignored_env_names();
    if !ignored.is_empty() {
        // Kubernetes service links (REDIS_HEALTH_PORT, ..._SERVICE_HOST) for
        // a Service named redis-health: never config keys, never an error.
        tracing::debug!(
            names = ignored.join(" "),
            "ignored REDIS_HEALTH_* variables without __ (not config keys)"
        );
    }
    match command {
        Command::Serve => on_runtime(async {
            match redis_health::run(settings, cli.config, log).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(%error, "redis-health stopped");
                    ExitCode::FAILURE
                }
            }
        }),
        Command::Check { route } => on_runtime(async {
            let answer = redis_health::check_once(settings, route).await;
            println!("{}", String::from_utf8_lossy(&answer.body));
            if answer.healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }),
        Command::Config => match toml::to_string(&settings) {
            Ok(text) => {
                let file = redis_health::config::config_file(cli.config.as_deref())
                    .map_or_else(|| "no config file".to_owned(), |f| f.display().to_string());
                let env = redis_health::config::env_key_names();
                let env = if env.is_empty() {
                    "no REDIS_HEALTH_* key variables".to_owned()
                } else {
                    env.join(" ")
                };
                // A comment, so stdout stays TOML that loads as it reads.
                print!("# merged: defaults, then {file}, then {env}\n{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("redis-health: cannot print the config: {error}");
                ExitCode::FAILURE
            }
        },
    }
}

fn on_runtime(work: impl Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => {
            let code = runtime.block_on(work);
            // A DNS lookup for Redis runs on a blocking thread and cannot be
            // cancelled: do not let one delay the exit.
            runtime.shutdown_timeout(Duration::from_secs(1));
            code
        }
        Err(error) => {
            eprintln!("redis-health: cannot start the runtime: {error}");
            ExitCode::FAILURE
        }
    }
}
