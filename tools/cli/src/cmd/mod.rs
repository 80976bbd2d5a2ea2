//! One module per subcommand.

mod auth;
mod check;
mod demo;
mod export;
mod import;
mod progress;
mod serve;
pub mod source;
mod state;
mod stats;
mod synth;
mod target;
mod verify;

use std::path::Path;

use mxstate_engine::{Engine, EngineOptions};

use crate::cli::{Cli, Command};
use crate::error::CliResult;

/// Runs the parsed command.
pub fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Check(a) => check::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Stats(a) => stats::run(a),
        Command::State(a) => state::run(a),
        Command::Import(a) => import::run(a),
        Command::Verify(a) => verify::run(a),
        Command::AuthChain(a) => auth::run_chain(a),
        Command::AuthDifference(a) => auth::run_difference(a),
        Command::Export(a) => export::run(a),
        Command::Synth(a) => synth::run(a),
    }
}

/// Opens the database `db` names: a RocksDB directory, or a PostgreSQL
/// database when it is a `postgresql://` URL.
pub fn open_db(db: &Path, opts: EngineOptions) -> CliResult<Engine> {
    match db.to_str().filter(|s| mxstate_postgres::is_url(s)) {
        Some(url) => Ok(mxstate_postgres::open(url, opts)?),
        None => Ok(mxstate_rocks::open(db, opts)?),
    }
}

/// Opens an existing database for reading (refusing an unfinished import).
pub fn open_existing(db: &Path) -> CliResult<Engine> {
    open_db(
        db,
        EngineOptions {
            create: false,
            ..EngineOptions::default()
        },
    )
}
