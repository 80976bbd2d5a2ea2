//! `mxstate`: the command-line tool.

use mxstate_tools::{cli, cmd};

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        if msg.contains("failed printing to stdout") {
            // The reader of our output went away (`mxstate ... | head`): stop quietly.
            std::process::exit(141);
        }
        eprintln!("mxstate: internal error: {msg}");
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
