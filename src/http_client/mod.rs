//! The agent's small HTTP client side, shared by the http probe and remote
//! write: URL parsing into a [`Target`] (in `config::url`, as config parses it), the probe's minimal GET
//! ([`get::get_status`]) and a hyper HTTP/1.1 connection over TCP or TLS for
//! requests with a body ([`conn`]).

pub mod conn;
pub mod get;

pub use crate::config::url::{parse_url, shown, Scheme};
pub use crate::config::ProbeTarget as Target;
pub use get::get_status;
