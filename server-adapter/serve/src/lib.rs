//! mxstate-serve: one process owns an mxstate database and serves the
//! whole `StateStore` API to many clients over the protocol of
//! `mxstate-remote` (docs/serve.md).
//!
//! - [`listen`]: binding `unix:PATH` or `tcp:HOST:PORT`, with the rules on
//!   who may bind where;
//! - [`conn`]: one client: handshake, pipelined requests with bounded
//!   in-flight work, frame limits and deadlines;
//! - [`dispatch`]: a request run against the engine;
//! - [`adapter`]: the Synapse integration's requests run against the engine;
//! - [`Server`]: the accept loop, limits, figures and graceful shutdown.

pub mod adapter;
pub mod conn;
pub mod dispatch;
pub mod listen;
pub mod server;

pub use server::{ServeOptions, Server, ServerStats};
