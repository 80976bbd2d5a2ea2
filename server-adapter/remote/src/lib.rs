//! mxstate-remote: the protocol of `mxstate serve` and [`RemoteStore`], a
//! [`mxstate_api::StateStore`] that talks to it.
//!
//! - [`addr`]: where a service listens (`unix:PATH`, `tcp:HOST:PORT`);
//! - [`frame`]: length-prefixed frames with a size limit;
//! - [`auth`]: the versioned handshake and the shared-secret proof;
//! - [`wire`]: requests and replies, and their conversion to the API's
//!   validated types;
//! - [`adapter`]: the Synapse integration's own requests (lookups and the
//!   deletion protocol);
//! - [`client`]: [`RemoteStore`], pooled, pipelined, reconnecting.
//!
//! docs/serve.md describes the protocol byte by byte and the threat model.

pub mod adapter;
pub mod addr;
pub mod auth;
pub mod client;
pub mod frame;
pub mod wire;

pub use addr::Addr;
pub use client::{RemoteOptions, RemoteStore};
