//! The `vitals` binary: parses the command line, loads the config, starts
//! things. Everything else lives in the library.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use vitals::{daemon, runtime};

/// sysexits.h EX_USAGE / EX_CONFIG-style code for every configuration or
/// command-line error.
const EXIT_CONFIG: u8 = 64;

#[derive(Parser)]
#[command(
    name = "vitals",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("VITALS_REVISION"), ")"),
    about = "Sidecar metrics agent: container limits, PostgreSQL pools and replica lag, checks, on /metrics."
)]
struct Cli {
    /// Configuration file (YAML). Without it, the embedded default: host and own cgroup.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen address, overriding the file's `listen`.
    #[arg(long, global = true, value_name = "ADDR:PORT")]
    listen: Option<std::net::SocketAddr>,
    /// exporter-toolkit web config file (TLS, basic auth), overriding the file's `web_config_file`.
    #[arg(long = "web.config.file", global = true, value_name = "FILE")]
    web_config_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a configuration file; exit 64 with file:line:column on error.
    CheckConfig { file: PathBuf },
    /// Sample every source once and print the exposition on stdout.
    Once,
    /// Print Prometheus alerting rules equivalent to the configured checks.
    Rules,
    /// Print every metric family vitals can export, one per line:
    /// name, type, labels (comma-separated), help, separated by tabs.
    #[command(hide = true)]
    Catalog,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_CONFIG } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        // Through the daemon's loader, so the web config file it names is
        // checked too.
        Some(Command::CheckConfig { file }) => match daemon::load(&daemon::Options {
            config_file: Some(file.clone()),
            listen: None,
            web_config_file: None,
        }) {
            Ok(config) => {
                for note in vitals::checks::app_notes(&config) {
                    println!("{}: note: {note}", file.display());
                }
                println!("{}: configuration is valid", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Some(Command::Catalog) => {
            for d in vitals::collectors::catalog() {
                println!(
                    "{}\t{}\t{}\t{}",
                    d.name,
                    d.kind.as_str(),
                    d.labels.join(","),
                    d.help
                );
            }
            ExitCode::SUCCESS
        }
        Some(Command::Rules) => {
            let options = daemon::Options {
                config_file: cli.config,
                listen: None,
                web_config_file: None,
            };
            match daemon::load(&options) {
                Ok(config) => {
                    for w in vitals::checks::rules::warnings(&config) {
                        eprintln!("warning: {w}");
                    }
                    print!("{}", vitals::checks::rules::render_rules(&config));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(EXIT_CONFIG)
                }
            }
        }
        command => {
            let options = daemon::Options {
                config_file: cli.config,
                listen: cli.listen,
                web_config_file: cli.web_config_file,
            };
            let config = match daemon::load(&options) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            daemon::init_logging(&config);
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                // File reads run on the blocking pool every round: keep its
                // threads between rounds instead of starting new ones
                // (each new thread may take a fresh malloc arena).
                .thread_keep_alive(std::time::Duration::from_secs(120))
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match command {
                Some(Command::Once) => rt.block_on(async {
                    let (text, failures) = runtime::once(&config).await;
                    print!("{text}");
                    for (source, error) in &failures {
                        eprintln!("source {source} failed: {error}");
                    }
                    if failures.is_empty() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }),
                _ => match rt.block_on(daemon::run(options, config)) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!(error = %e, "vitals stopped");
                        eprintln!("vitals: {e:#}");
                        ExitCode::FAILURE
                    }
                },
            }
        }
    }
}
