//! `mxstate`: the command-line tool.

mod cli;
mod cmd;
mod error;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("mxstate: internal error: {info}");
    }));
    let args = cli::Cli::parse();
    match cmd::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mxstate: {e}");
            ExitCode::FAILURE
        }
    }
}
