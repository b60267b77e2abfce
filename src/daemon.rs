//! Running the agent: logging, listener, sources, reload on SIGHUP or
//! `POST /-/reload`, graceful stop on SIGTERM/SIGINT.

use crate::config::{self, Config, LogFormat};
use crate::runtime::{Agent, Shared};
use crate::server::webconfig::{self, Web};
use crate::server::{ReloadRequest, Server};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// How the daemon was started.
pub struct Options {
    /// None: the embedded default configuration.
    pub config_file: Option<PathBuf>,
    /// `--listen`, overriding the file.
    pub listen: Option<std::net::SocketAddr>,
    /// `--web.config.file`, overriding the file's `web_config_file`.
    pub web_config_file: Option<PathBuf>,
}

/// Installs the global tracing subscriber. `RUST_LOG` wins over the config.
pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Loads the configuration the daemon was asked to run with, checking the
/// web config file it names too (a bad one is a configuration error).
pub fn load(options: &Options) -> Result<Config, config::ConfigError> {
    load_with_web(options).map(|(config, _)| config)
}

/// The configuration and its web config file, read and checked.
fn load_with_web(options: &Options) -> Result<(Config, webconfig::Prepared), config::ConfigError> {
    let mut config = match &options.config_file {
        Some(path) => config::load_file(path)?,
        None => config::parse_str(config::EMBEDDED_DEFAULT, "<embedded default>")?,
    };
    if let Some(listen) = options.listen {
        config.listen = listen;
    }
    if let Some(web) = &options.web_config_file {
        config.web_config_file = Some(web.clone());
    }
    let web = webconfig::prepare(config.web_config_file.as_deref(), &config.web)?;
    Ok((config, web))
}

/// Logs a warning for each check whose selector names a metric vitals does
/// not export: a typo there would otherwise leave the check unknown forever.
pub fn warn_unknown_metrics(config: &Config) {
    for unknown in crate::checks::unknown_metrics(config) {
        tracing::warn!("{unknown}");
    }
}

/// Runs until SIGTERM or SIGINT.
pub async fn run(options: Options, config: Config) -> anyhow::Result<()> {
    warn_unknown_metrics(&config);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let local = listener.local_addr()?;
    let shared = Shared::new(
        options
            .config_file
            .as_ref()
            .map(|p| p.display().to_string()),
    );
    let web = Arc::new(Web::new(
        webconfig::prepare(config.web_config_file.as_deref(), &config.web)
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    ));
    let watch = tokio::spawn(web.clone().watch());
    let mut agent = Agent::start(shared.clone(), &config);
    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let server = tokio::spawn(
        Server::new(shared.clone(), reload_tx)
            .with_web(web.clone())
            .serve(listener),
    );
    // Before the start line: a SIGHUP sent as soon as it appears must
    // reload, not end the process (the default action of SIGHUP).
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tracing::info!(
        listen = %local,
        config = %options.config_file.as_ref().map_or("<embedded default>".into(), |p| p.display().to_string()),
        version = crate::runtime::VERSION,
        "vitals started"
    );

    let mut running = config;
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                let _ = reload(&options, &mut running, &mut agent, &shared, &web);
            }
            Some(reply) = reload_rx.recv() => {
                let result = reload(&options, &mut running, &mut agent, &shared, &web);
                let _ = reply.send(result);
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    tracing::info!("stopping");
    server.abort();
    watch.abort();
    drop(agent);
    Ok(())
}

/// Loads the config again; on error keeps `running` and says why.
fn reload(
    options: &Options,
    running: &mut Config,
    agent: &mut Agent,
    shared: &Shared,
    web: &Web,
) -> Result<(), String> {
    if options.config_file.is_none() && running.web_config_file.is_some() {
        // No config file, but a web config file given by flag: read that.
        return match webconfig::prepare(running.web_config_file.as_deref(), &running.web) {
            Ok(prepared) => {
                web.apply(prepared);
                tracing::info!("web config reloaded");
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::error!(error = %msg, "web config reload refused; the previous web settings stay");
                Err(msg)
            }
        };
    }
    if options.config_file.is_none() {
        let msg =
            "running on the embedded default configuration; there is no file to reload".to_owned();
        tracing::warn!("{msg}");
        return Err(msg);
    }
    // The web config file is read again too; if it is bad, nothing changes.
    match load_with_web(options) {
        Ok((fresh, prepared)) => {
            if fresh.listen != running.listen {
                tracing::warn!(old = %running.listen, new = %fresh.listen, "listen address changes need a restart; keeping the old one");
            }
            warn_unknown_metrics(&fresh);
            agent.apply(&fresh);
            web.apply(prepared);
            *running = fresh;
            shared.record_reload(Ok(()));
            tracing::info!("configuration reloaded");
            Ok(())
        }
        Err(e) => {
            let msg = e.to_string();
            tracing::error!(error = %msg, "configuration reload refused; the previous configuration keeps running");
            shared.record_reload(Err(msg.clone()));
            Err(msg)
        }
    }
}
