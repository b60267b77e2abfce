//! Running the agent: logging, listener, sources, reload on SIGHUP, on
//! `POST /-/reload` or when the config file is replaced, graceful stop on
//! SIGTERM/SIGINT.

use crate::config::{self, Config, LogFormat};
use crate::runtime::{Agent, Shared};
use crate::server::webconfig::{self, Web};
use crate::server::{ReloadRequest, Server};
use std::path::{Path, PathBuf};
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
        Some(path) => crate::checks::resolve::load_file(path)?,
        None => crate::checks::resolve::parse_str(config::EMBEDDED_DEFAULT, "<embedded default>")?,
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
    // Without an app source, the warnings above already said it.
    if !config.sources.app_metrics.is_empty() {
        for note in crate::checks::app_notes(config) {
            tracing::info!("{note}");
        }
    }
}

/// Runs until SIGTERM or SIGINT.
pub async fn run(options: Options, config: Config) -> anyhow::Result<()> {
    warn_unknown_metrics(&config);
    raise_fd_limit();
    let listener = crate::server::listen(config.listen)
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
    let (changed_tx, mut changed_rx) = mpsc::channel::<()>(1);
    let follow = options
        .config_file
        .clone()
        .map(|path| tokio::spawn(follow_config_file(path, changed_tx)));
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
            Some(()) = changed_rx.recv() => {
                tracing::info!("configuration file replaced; reloading");
                shared.record_config_file_change();
                let _ = reload(&options, &mut running, &mut agent, &shared, &web);
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    tracing::info!("stopping");
    server.abort();
    watch.abort();
    if let Some(follow) = follow {
        follow.abort();
    }
    drop(agent);
    // What is queued for remote write goes out now, within a bound (with
    // `queue.dir` the rest is sent after the next start).
    if !shared.remote_write().is_empty() {
        let left = shared
            .remote_write()
            .flush(std::time::Duration::from_secs(5))
            .await;
        if left > 0 {
            tracing::warn!(
                samples = left,
                "remote write: samples not delivered at exit"
            );
        }
    }
    Ok(())
}

/// Each connection, served or waiting, takes a file descriptor: raise the
/// soft limit to the hard one (systemd's default soft limit is 1024, the
/// hard one 524288), as Go programs like node_exporter do at start.
fn raise_fd_limit() {
    let show = |l: Option<u64>| l.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    match crate::server::limits::raise_fd_limit() {
        Ok((before, after)) if before != after => {
            tracing::info!(from = %show(before), to = %show(after), "raised the open files limit");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open files limit"),
    }
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

/// The file a path resolves to (through every symlink), by identity.
fn file_identity(path: &Path) -> Option<(PathBuf, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let resolved = std::fs::canonicalize(path).ok()?;
    let meta = std::fs::metadata(&resolved).ok()?;
    Some((resolved, meta.dev(), meta.ino()))
}

/// Sends on `changed` whenever `path` comes to resolve to another file:
/// Kubernetes updates a mounted ConfigMap by writing a new directory and
/// swapping the `..data` symlink, and editors and config tools rename a new
/// file over the old one. Both are atomic, so a reload never reads a half
/// written file; an edit in place (same file) still needs SIGHUP or
/// `POST /-/reload`. A missing file is not a change (the swap is not done).
/// Checked every `webconfig::WATCH_PERIOD`, like the web config's files.
async fn follow_config_file(path: PathBuf, changed: mpsc::Sender<()>) {
    let identity = |path: PathBuf| async move {
        tokio::task::spawn_blocking(move || file_identity(&path))
            .await
            .ok()
            .flatten()
    };
    let mut last = identity(path.clone()).await;
    let mut tick = tokio::time::interval(webconfig::WATCH_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = identity(path.clone()).await;
        if now.is_some() && now != last {
            tracing::debug!(path = %path.display(), "configuration file replaced");
            last = now;
            if changed.send(()).await.is_err() {
                return;
            }
        }
    }
}
