//! Bulk import of Synapse's state tables, in any row order, in bounded
//! memory: rows are spilled to a scratch store sorted by group, then stored
//! group by group in id order, in atomic batches.
//!
//! While an import runs the database carries an *import incomplete* marker;
//! opening it for reading fails until an import finishes. Rerunning the same
//! import resumes: groups already stored are skipped.

mod groups;
mod staging;
pub mod verify;

use std::collections::BTreeSet;
use std::path::Path;

use crate::engine::{Engine, GroupState, NewGroup};
use crate::error::{Error, Result};
use crate::format::varint::{put_u64, Reader};
use crate::ids::{EventId, GroupId, RoomId};
use crate::state::{StateDelta, StateMap};

use groups::{GroupWalk, Staged};
pub use staging::Staging;
use staging::{get_str, key, put_str};

use groups::{TAG_EDGE, TAG_GROUP, TAG_MAP, TAG_ROW};

/// Groups stored per atomic batch (also bounded by [`BATCH_ROWS`]).
const BATCH_GROUPS: usize = 2000;
const BATCH_ROWS: usize = 200_000;
/// Event mappings per batch.
const BATCH_MAPPINGS: usize = 20_000;

/// One input row, with the line (or row number) it came from.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// `state_groups (id, room_id, event_id)`.
    Group {
        id: i64,
        room_id: &'a str,
        event_id: &'a str,
    },
    /// `state_group_edges (state_group, prev_state_group)`.
    Edge { group: i64, prev: i64 },
    /// `state_groups_state (state_group, room_id, type, state_key, event_id)`.
    Row {
        group: i64,
        room_id: &'a str,
        event_type: &'a str,
        state_key: &'a str,
        event_id: &'a str,
    },
    /// `event_to_state_groups (event_id, state_group)`.
    EventGroup { event_id: &'a str, group: i64 },
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    pub rows: u64,
    pub groups_read: u64,
    pub edges: u64,
    pub groups_stored: u64,
    pub groups_skipped: u64,
    pub rooms: u64,
    pub mappings_stored: u64,
    /// Event mappings naming a group that does not exist (left out).
    pub mappings_unknown_group: u64,
    /// Edges naming a prev group absent from every table (group kept as a root).
    pub dangling_prevs: u64,
}

/// Phases reported to the progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Groups,
    Mappings,
}

/// An import in progress.
pub struct Importer<'e> {
    engine: &'e Engine,
    staging: Staging,
    resume: bool,
    summary: ImportSummary,
}

/// Spills one input row to the scratch store.
fn stage(staging: &mut Staging, summary: &mut ImportSummary, item: Item<'_>, line: u64) -> Result<()> {
    let mut v = Vec::with_capacity(96);
    put_u64(&mut v, line);
    match item {
        Item::Group { id, room_id, event_id } => {
            let g = group_id(id, line, "state_groups.id")?;
            put_str(&mut v, room_id);
            put_str(&mut v, event_id);
            summary.groups_read += 1;
            staging.put(&key(TAG_GROUP, &[g]), &v)
        }
        Item::Edge { group, prev } => {
            let g = group_id(group, line, "state_group_edges.state_group")?;
            let p = group_id(prev, line, "state_group_edges.prev_state_group")?;
            if g == p {
                return Err(bad(
                    line,
                    format!("cycle in state_group_edges: group {g} is its own prev"),
                ));
            }
            summary.edges += 1;
            staging.put(&key(TAG_EDGE, &[g, p]), &v)
        }
        Item::Row {
            group,
            room_id,
            event_type,
            state_key,
            event_id,
        } => {
            let g = group_id(group, line, "state_groups_state.state_group")?;
            for s in [room_id, event_type, state_key, event_id] {
                put_str(&mut v, s);
            }
            summary.rows += 1;
            let seq = staging.next_seq();
            staging.put(&key(TAG_ROW, &[g, seq]), &v)
        }
        Item::EventGroup { event_id, group } => {
            let g = group_id(group, line, "event_to_state_groups.state_group")?;
            put_str(&mut v, event_id);
            put_u64(&mut v, g);
            let seq = staging.next_seq();
            staging.put(&key(TAG_MAP, &[seq]), &v)
        }
    }
}

fn bad(line: u64, detail: impl Into<String>) -> Error {
    Error::Import {
        line: Some(line),
        group: None,
        detail: detail.into(),
    }
}

fn group_id(v: i64, line: u64, what: &str) -> Result<GroupId> {
    u64::try_from(v)
        .ok()
        .filter(|&g| g > 0)
        .ok_or_else(|| bad(line, format!("{what} {v} is not a positive group id")))
}

impl<'e> Importer<'e> {
    /// Starts an import into `engine` (marking the database incomplete),
    /// spilling to a scratch directory under `scratch_parent`.
    pub fn begin(engine: &'e Engine, description: &str, scratch_parent: &Path) -> Result<Self> {
        let resume = engine.import_marker()?.is_some();
        engine.begin_import(description)?;
        Ok(Importer {
            engine,
            staging: Staging::create(scratch_parent)?,
            resume,
            summary: ImportSummary::default(),
        })
    }

    /// Whether this import resumes one that did not finish.
    pub fn resuming(&self) -> bool {
        self.resume
    }

    /// Takes one input row; `line` names where it came from in errors.
    pub fn add(&mut self, item: Item<'_>, line: u64) -> Result<()> {
        stage(&mut self.staging, &mut self.summary, item, line)
    }

    /// Stores everything staged, clears the incomplete marker and returns
    /// the summary. `progress(phase, done)` is called now and then.
    pub fn finish(mut self, progress: &mut dyn FnMut(Phase, u64)) -> Result<ImportSummary> {
        self.staging.flush()?;
        self.store_groups(progress)?;
        self.store_mappings(progress)?;
        self.engine.finish_import()?;
        Ok(self.summary)
    }

    fn store_groups(&mut self, progress: &mut dyn FnMut(Phase, u64)) -> Result<()> {
        let mut summary = std::mem::take(&mut self.summary);
        let mut pending: Vec<Pending> = Vec::new();
        let mut pending_rows = 0usize;
        let mut rooms: BTreeSet<String> = BTreeSet::new();
        let mut done = 0u64;
        let mut walk = GroupWalk::new(&self.staging);
        while let Some((id, group)) = walk.next_group()? {
            if self.resume && self.engine.has_group(id)? {
                summary.groups_skipped += 1;
                continue;
            }
            let p = self.resolve(id, group, &pending, &mut summary)?;
            rooms.insert(p.room.as_str().to_owned());
            pending_rows += p.delta.len() + p.full.len();
            pending.push(p);
            if pending.len() >= BATCH_GROUPS || pending_rows >= BATCH_ROWS {
                done += self.flush(&mut pending, &mut summary)?;
                pending_rows = 0;
                progress(Phase::Groups, done);
            }
        }
        done += self.flush(&mut pending, &mut summary)?;
        progress(Phase::Groups, done);
        summary.rooms = rooms.len() as u64;
        self.summary = summary;
        Ok(())
    }

    /// Turns a staged group into a group to store, checking it.
    fn resolve(&self, id: GroupId, s: Staged, pending: &[Pending], summary: &mut ImportSummary) -> Result<Pending> {
        let at = s.line.or(s.prev.map(|p| p.1)).or(s.first_row_line).unwrap_or(0);
        let in_err = |e: Error| match e {
            Error::Import {
                line,
                group: None,
                detail,
            } => Error::Import {
                line,
                group: Some(id),
                detail,
            },
            other => Error::Import {
                line: Some(at),
                group: Some(id),
                detail: other.to_string(),
            },
        };
        let mut prev = None;
        if let Some((p, line)) = s.prev {
            let known = pending.iter().any(|q| q.id == p) || self.engine.has_group(p)?;
            if known {
                prev = Some(p);
            } else if p > id {
                return Err(in_err(bad(line, self.later_prev_error(id, p)?)));
            } else if self.staged_anywhere(p)? {
                return Err(in_err(bad(
                    line,
                    format!("prev group {p} could not be stored before {id}"),
                )));
            } else {
                // Named only by this edge: an empty group, so the state is the rows.
                summary.dangling_prevs += 1;
            }
        }
        let room_str = match (&s.room, &s.row_room) {
            (Some(r), _) | (None, Some(r)) => r.clone(),
            (None, None) => match prev {
                Some(p) => match pending.iter().find(|q| q.id == p) {
                    Some(q) => q.room.as_str().to_owned(),
                    None => self.engine.group_room(p).map_err(in_err)?.as_str().to_owned(),
                },
                None => {
                    return Err(in_err(bad(
                        at,
                        "group has no room: no state_groups row, no rows, no prev",
                    )))
                }
            },
        };
        let room = RoomId::parse(&room_str).map_err(in_err)?;
        let event = match &s.event {
            Some(e) => EventId::parse(e).map_err(in_err)?,
            // No state_groups row: any valid id stands for the missing event.
            None => EventId::parse(format!("$mxstate-import-missing-{id}")).map_err(in_err)?,
        };
        let mut delta = StateDelta::new();
        let mut full = StateMap::default();
        for (key, ev, _) in s.rows {
            if prev.is_some() {
                delta.insert(key, Some(ev));
            } else {
                full.insert(key, ev);
            }
        }
        Ok(Pending {
            id,
            room,
            event,
            prev,
            delta,
            full,
            line: at,
        })
    }

    fn staged_anywhere(&self, g: GroupId) -> Result<bool> {
        for tag in [TAG_GROUP, TAG_EDGE, TAG_ROW] {
            if self.staging.has_prefix(&key(tag, &[g]))? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Explains an edge to a later group: a cycle, or an order mxstate refuses.
    fn later_prev_error(&self, id: GroupId, prev: GroupId) -> Result<String> {
        let mut path = vec![id, prev];
        let mut cur = prev;
        for _ in 0..1_000_000 {
            let it = self.staging.iter_prefix(&key(TAG_EDGE, &[cur]));
            let next = it
                .peek()
                .and_then(|(k, _)| k.get(9..17).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes));
            it.status()?;
            match next {
                Some(n) if n == id => {
                    path.push(id);
                    let shown: Vec<String> = path.iter().map(u64::to_string).collect();
                    return Ok(format!("cycle in state_group_edges: {}", shown.join(" -> ")));
                }
                Some(n) => {
                    path.push(n);
                    cur = n;
                }
                None => break,
            }
        }
        Ok(format!(
            "prev group {prev} of group {id} has a higher id; mxstate imports groups in id order (Synapse always gives prev groups lower ids)"
        ))
    }

    fn flush(&self, pending: &mut Vec<Pending>, summary: &mut ImportSummary) -> Result<u64> {
        if pending.is_empty() {
            return Ok(0);
        }
        let groups: Vec<NewGroup<'_>> = pending
            .iter()
            .map(|p| NewGroup {
                id: Some(p.id),
                room_id: &p.room,
                event_id: &p.event,
                state: match p.prev {
                    Some(prev) => GroupState::Delta { prev, delta: &p.delta },
                    None => GroupState::Full(&p.full),
                },
            })
            .collect();
        if let Err(e) = self.engine.store_groups(&groups) {
            // Name the group: retry one by one to find it (nothing was written).
            let culprit = pending.iter().zip(&groups).find_map(|(p, g)| {
                match self.engine.store_groups(std::slice::from_ref(g)) {
                    Err(e) => Some((p.id, p.line, e)),
                    Ok(_) => None,
                }
            });
            return Err(match culprit {
                Some((id, line, e)) => Error::Import {
                    line: Some(line),
                    group: Some(id),
                    detail: e.to_string(),
                },
                None => e,
            });
        }
        let n = pending.len() as u64;
        summary.groups_stored += n;
        pending.clear();
        Ok(n)
    }

    fn store_mappings(&mut self, progress: &mut dyn FnMut(Phase, u64)) -> Result<()> {
        let mut it = self.staging.iter(TAG_MAP);
        let mut batch: Vec<(EventId, GroupId)> = Vec::with_capacity(BATCH_MAPPINGS);
        let mut done = 0;
        while let Some((_, v)) = it.peek() {
            let mut r = Reader::new(v, "staged mapping");
            let line = r.u64()?;
            let e = get_str(&mut r)?;
            let g = r.u64()?;
            let ev = EventId::parse(e).map_err(|err| bad(line, err.to_string()))?;
            if self.engine.has_group(g)? {
                batch.push((ev, g));
            } else {
                self.summary.mappings_unknown_group += 1;
            }
            if batch.len() >= BATCH_MAPPINGS {
                self.engine.set_event_groups(&batch)?;
                done += batch.len() as u64;
                batch.clear();
                progress(Phase::Mappings, done);
            }
            it.advance();
        }
        it.status()?;
        self.engine.set_event_groups(&batch)?;
        done += batch.len() as u64;
        progress(Phase::Mappings, done);
        self.summary.mappings_stored = done;
        Ok(())
    }
}

/// A group ready to store.
struct Pending {
    id: GroupId,
    room: RoomId,
    event: EventId,
    prev: Option<GroupId>,
    delta: StateDelta,
    full: StateMap,
    line: u64,
}
