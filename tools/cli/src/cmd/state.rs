//! `mxstate state`.

use mxstate_api::{sorted_entries, EventId, StateFilter, StateMap};
use serde_json::json;

use crate::cli::StateArgs;
use crate::error::{CliError, CliResult};

/// Parses the `--type` arguments into a filter
/// ([`StateFilter::from_type_args`]); an empty type is a usage error.
pub fn parse_filter(types: &[String], include_others: bool) -> CliResult<StateFilter> {
    StateFilter::from_type_args(types, include_others).map_err(|err| {
        match types.iter().find(|t| StateFilter::parse_type_arg(t).is_err()) {
            Some(t) => CliError::Usage(format!("--type {t:?}: empty event type")),
            None => err.into(),
        }
    })
}

/// Groups read per call.
const CHUNK: usize = 16;

/// Runs `mxstate state`.
pub fn run(a: StateArgs) -> CliResult {
    if a.groups.is_empty() && a.events.is_empty() {
        return Err(CliError::Usage("give at least one --group or --event".into()));
    }
    let filter = parse_filter(&a.types, a.include_others)?;
    let target = super::target::Target::open(&a.target)?;
    let mut groups = a.groups.clone();
    if !a.events.is_empty() {
        let ids = a.events.iter().map(EventId::parse).collect::<Result<Vec<_>, _>>()?;
        let found = target.event_groups(&ids)?;
        for e in &ids {
            let g = found
                .get(e)
                .ok_or_else(|| CliError::Usage(format!("event {e} has no state group")))?;
            groups.push(*g);
        }
    }
    // Groups are read and printed a few at a time: memory holds one
    // chunk's states, whatever the number of groups asked for.
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    for chunk in groups.chunks(CHUNK) {
        let states = target.state_for_groups(chunk, &filter)?;
        let mut out = String::new();
        for g in chunk {
            let st = states.get(g).ok_or_else(|| {
                CliError::Storage(mxstate_api::Error::internal(format!("no state returned for group {g}")))
            })?;
            if a.json {
                out.push_str(&json_line(*g, st));
                out.push('\n');
            } else {
                out.push_str(&format!("group {g} ({} entries)\n", st.len()));
                for (k, e) in sorted_entries(st) {
                    out.push_str(&format!("  {:?} {:?} {}\n", k.event_type(), k.state_key(), e));
                }
            }
        }
        use std::io::Write;
        match stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()) {
            Ok(()) => {}
            // The reader went away (`mxstate state ... | head`): stop quietly.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(CliError::io("stdout", e)),
        }
    }
    target.close();
    Ok(())
}

/// `{"group": N, "state": [[type, state_key, event_id], ...]}` sorted.
pub fn json_line(g: u64, st: &StateMap) -> String {
    let entries: Vec<serde_json::Value> = sorted_entries(st)
        .into_iter()
        .map(|(k, e)| json!([k.event_type(), k.state_key(), e.as_str()]))
        .collect();
    json!({"group": g, "state": entries}).to_string()
}
