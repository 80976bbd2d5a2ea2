//! `mxstate auth-chain` and `mxstate auth-difference`: the auth index's
//! answers for events given by id alone (the room is found with
//! `Engine::auth_rooms_of`, a scan of the index).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use mxstate_api::{EventId, RoomId};
use mxstate_engine::Engine;
use serde_json::json;

use crate::cli::{AuthChainArgs, AuthDifferenceArgs};
use crate::error::{CliError, CliResult};

/// Ids named at most in one message.
const NAMED: usize = 10;

/// Runs `mxstate auth-chain`.
pub fn run_chain(a: AuthChainArgs) -> CliResult {
    let events = parse_ids(a.events.iter().map(String::as_str))?;
    if events.is_empty() {
        return Err(CliError::Usage("give at least one --event".into()));
    }
    let engine = super::open_existing(&a.db)?;
    let room = room_of(&engine, &events, "they add nothing to the chain")?;
    let given: Vec<EventId> = events.into_iter().collect();
    let chain = engine.auth_chain(&room, &given, a.include_given)?;
    print_ids("auth_chain", &chain, a.json)
}

/// Runs `mxstate auth-difference`.
pub fn run_difference(a: AuthDifferenceArgs) -> CliResult {
    if a.sets.len() < 2 {
        return Err(CliError::Usage(
            "give two or more --set ID,ID,... (the difference of one set is empty)".into(),
        ));
    }
    let sets = a
        .sets
        .iter()
        .map(|s| parse_ids(s.split(',')))
        .collect::<CliResult<Vec<_>>>()?;
    let all: BTreeSet<EventId> = sets.iter().flatten().cloned().collect();
    if all.is_empty() {
        return Err(CliError::Usage("the sets name no event".into()));
    }
    let engine = super::open_existing(&a.db)?;
    let room = room_of(&engine, &all, "each is its own full auth chain")?;
    let answer = engine.auth_chain_difference(&room, &sets, None)?;
    print_ids("auth_difference", &answer.auth_difference, a.json)
}

/// Event ids, each checked (surrounding blanks and empty items ignored).
fn parse_ids<'a>(ids: impl Iterator<Item = &'a str>) -> CliResult<BTreeSet<EventId>> {
    ids.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| EventId::parse(s).map_err(|e| CliError::Usage(e.to_string())))
        .collect()
}

/// The one room whose auth index holds the given events; events it does
/// not hold are named on stderr, with `unknown_means`.
fn room_of(engine: &Engine, events: &BTreeSet<EventId>, unknown_means: &str) -> CliResult<RoomId> {
    let list: Vec<EventId> = events.iter().cloned().collect();
    let found = engine.auth_rooms_of(&list)?;
    let unknown: Vec<&EventId> = events.iter().filter(|e| !found.contains_key(*e)).collect();
    let mut by_room: BTreeMap<&RoomId, Vec<&EventId>> = BTreeMap::new();
    for (e, rooms) in &found {
        for r in rooms {
            by_room.entry(r).or_default().push(e);
        }
    }
    let mut rooms = by_room.keys();
    match (rooms.next(), rooms.next()) {
        (None, _) => Err(CliError::Usage(format!(
            "no auth events are recorded for {}: none of the given events is in the auth index (an event \
             without auth events, such as a room's create event, has an empty auth chain)",
            named(&unknown)
        ))),
        (Some(room), None) => {
            if !unknown.is_empty() {
                eprintln!(
                    "mxstate: note: no auth events are recorded for {} ({unknown_means})",
                    named(&unknown)
                );
            }
            Ok((*room).clone())
        }
        (Some(_), Some(_)) => {
            let parts: Vec<String> = by_room
                .iter()
                .take(NAMED)
                .map(|(r, es)| format!("{} in {r}", named(es)))
                .collect();
            Err(CliError::Usage(format!(
                "the events are in different rooms' auth indexes: {}",
                parts.join("; ")
            )))
        }
    }
}

/// `$a, $b, ... (N in all)`.
fn named(ids: &[&EventId]) -> String {
    let mut s: Vec<&str> = ids.iter().take(NAMED).map(|e| e.as_str()).collect();
    if ids.len() > NAMED {
        s.push("...");
    }
    let mut out = s.join(", ");
    if ids.len() > NAMED {
        out.push_str(&format!(" ({} in all)", ids.len()));
    }
    out
}

/// The ids sorted, one per line, or `{"<key>": [...]}`.
fn print_ids(key: &str, ids: &BTreeSet<EventId>, as_json: bool) -> CliResult {
    let mut out = String::new();
    if as_json {
        let list: Vec<&str> = ids.iter().map(EventId::as_str).collect();
        out.push_str(&json!({ key: list }).to_string());
        out.push('\n');
    } else {
        for e in ids {
            out.push_str(e.as_str());
            out.push('\n');
        }
    }
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        // The reader went away (`mxstate auth-chain ... | head`): stop quietly.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::io("stdout", e)),
    }
}
