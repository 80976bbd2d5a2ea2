//! The `mxstate` command-line tool as a library: its commands, and the
//! Synapse-source plumbing (dump or live database -> import items) that
//! the benchmarks reuse.

pub mod cli;
pub mod cmd;
pub mod error;
