//! vitals: a sidecar metrics agent and Prometheus exporter.
//!
//! `main.rs` parses the command line and starts [`runtime`]; sources live in
//! [`collectors`], the HTTP side in [`server`], the schema in [`config`], the
//! sample model and exposition formats in [`metrics`].
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod checks;
pub mod collectors;
pub mod config;
pub mod daemon;
pub mod http_client;
pub mod metrics;
pub mod relabel;
pub mod remote_write;
pub mod runtime;
pub mod server;
pub mod tls;
