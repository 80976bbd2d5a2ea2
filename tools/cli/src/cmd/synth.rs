//! `mxstate synth`.

use std::io::Write;

use mxstate_synth::{write_dump, SynthOptions};

use crate::cli::SynthArgs;
use crate::error::{CliError, CliResult};

/// Runs `mxstate synth`.
pub fn run(a: SynthArgs) -> CliResult {
    let opts = SynthOptions {
        rooms: a.rooms,
        members: a.members,
        state_events: a.state_events,
        seed: a.seed,
        messages_per_state_event: a.messages,
        fork_every: a.fork_every,
        auth: a.auth,
        ..SynthOptions::default()
    };
    let out: Box<dyn Write> = if a.out.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(&a.out).map_err(|e| CliError::io(a.out.display().to_string(), e))?)
    };
    let s = write_dump(&opts, std::io::BufWriter::with_capacity(1 << 20, out))?;
    eprintln!(
        "wrote {} rooms, {} groups ({} full copies), {} state rows, {} edges, {} event mappings, {} bytes",
        s.rooms, s.groups, s.full_copies, s.state_rows, s.edges, s.events_mapped, s.bytes_written
    );
    if a.auth {
        eprintln!(
            "auth: {} event_auth rows, {} event_auth_chains rows, {} event_auth_chain_links rows",
            s.auth_rows, s.chain_positions, s.chain_links
        );
    }
    Ok(())
}
