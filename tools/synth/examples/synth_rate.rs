//! Measures dump generation speed: `synth_rate [members] [rooms] [out-file]`.
//! Without an output file the dump goes to a byte-counting sink.

use std::io::Write;
use std::time::Instant;

use mxstate_synth::{write_dump, SynthOptions, SynthSummary};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let members = args.get(1).map_or(Ok(10_000), |s| s.parse())?;
    let rooms = args.get(2).map_or(Ok(1), |s| s.parse())?;
    let opts = SynthOptions {
        rooms,
        members,
        ..Default::default()
    };
    let start = Instant::now();
    let summary: SynthSummary = match args.get(3) {
        Some(path) => {
            let file = std::fs::File::create(path)?;
            write_dump(&opts, file)?
        }
        None => write_dump(&opts, std::io::sink())?,
    };
    let secs = start.elapsed().as_secs_f64();
    let rows = summary.groups + summary.edges + summary.state_rows + summary.events_mapped;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{summary:#?}")?;
    writeln!(
        out,
        "{rows} rows, {:.1} MB in {secs:.2} s: {:.2} M rows/s, {:.0} MB/s",
        summary.bytes_written as f64 / 1e6,
        rows as f64 / secs / 1e6,
        summary.bytes_written as f64 / secs / 1e6
    )?;
    Ok(())
}
