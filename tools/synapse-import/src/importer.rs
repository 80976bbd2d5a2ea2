//! [`Importer`]: staging, then storing groups in id order (and the event
//! mappings alongside, on a thread of their own),
//! then the auth index room by room.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender};

use mxstate_api::{AuthEvents, EventId, GroupId, RoomId, StateDelta, StateMap};
use mxstate_engine::{Engine, GroupState, NewGroup};
use mxstate_rocks::{Scratch, ScratchIter};
use mxstate_synapse_dump::{AuthEdge, Record, SourceRow};

use crate::error::{ImportError, Result};
use crate::fingerprint::Fingerprint;
use crate::groups::{GroupWalk, Staged};
use crate::staged::{
    decode, edge_prev, key, stage, stage_auth, AuthWalk, MapRow, RowChunk, StagedAuth, TAG_EDGE, TAG_GROUP, TAG_MAP,
    TAG_ROW,
};
use crate::{ImportSummary, Phase};

/// Groups stored per atomic batch (also bounded by [`BATCH_ROWS`]).
const BATCH_GROUPS: usize = 2000;
const BATCH_ROWS: usize = 200_000;
/// Event mappings per batch.
const BATCH_MAPPINGS: usize = 20_000;
/// Events per auth index batch (also bounded by [`BATCH_AUTH_EDGES`]).
const BATCH_AUTH_EVENTS: usize = 10_000;
const BATCH_AUTH_EDGES: usize = 100_000;

/// An import in progress.
pub struct Importer<'e> {
    engine: &'e Engine,
    staging: Scratch,
    description: String,
    resume: bool,
    fingerprint: Fingerprint,
    summary: ImportSummary,
    /// State rows not written to the scratch store yet.
    chunk: RowChunk,
}

/// How an import ended.
#[derive(Debug)]
pub enum Finished {
    /// Everything is stored and the database is complete.
    Imported(ImportSummary),
    /// The same source was imported completely before (described here);
    /// nothing was changed.
    AlreadyComplete { description: String },
}

impl Finished {
    /// The summary of an import that stored the source, or `None` when it
    /// had been imported before.
    pub fn imported(self) -> Option<ImportSummary> {
        match self {
            Finished::Imported(s) => Some(s),
            Finished::AlreadyComplete { .. } => None,
        }
    }
}

impl<'e> Importer<'e> {
    /// Starts an import into `engine`, spilling to a scratch directory
    /// under `scratch_parent`. A database that never completed an import is
    /// marked incomplete at once (so that a failed first import never
    /// leaves one that looks complete); one that did is left untouched
    /// until [`Importer::finish`] knows whether this source is new.
    pub fn begin(engine: &'e Engine, description: &str, scratch_parent: &Path) -> Result<Self> {
        let resume = engine.import_marker()?.is_some();
        if !resume && !engine.any_completed_import()? {
            engine.begin_import(description)?;
        }
        Ok(Importer {
            engine,
            staging: Scratch::create(scratch_parent)?,
            description: description.to_owned(),
            resume,
            fingerprint: Fingerprint::default(),
            summary: ImportSummary::default(),
            chunk: RowChunk::default(),
        })
    }

    /// Whether this import resumes one that did not finish.
    pub fn resuming(&self) -> bool {
        self.resume
    }

    /// Takes one source record; `line` names where it came from in errors.
    pub fn add(&mut self, record: &Record, line: u64) -> Result<()> {
        self.fingerprint.add(record);
        stage(&mut self.staging, &mut self.summary, record, line, &mut self.chunk)
    }

    /// Takes one `event_auth` row. A row naming an invalid id is counted
    /// ([`ImportSummary::auth_rows_invalid`]) and left out.
    pub fn add_auth(&mut self, edge: &AuthEdge, line: u64) -> Result<()> {
        self.fingerprint.add_auth(edge);
        stage_auth(&mut self.staging, &mut self.summary, edge, line)
    }

    /// Takes one row of any table.
    pub fn add_row(&mut self, row: &SourceRow, line: u64) -> Result<()> {
        match row {
            SourceRow::State(r) => self.add(r, line),
            SourceRow::Auth(a) => self.add_auth(a, line),
        }
    }

    /// Stores everything staged, syncs, clears the incomplete marker and
    /// returns the summary; or, when this source was imported completely
    /// before and the database is complete, changes nothing and says so.
    /// `progress(phase, done)` is called now and then.
    pub fn finish(mut self, progress: &mut dyn FnMut(Phase, u64)) -> Result<Finished> {
        let fingerprint = self.fingerprint.value();
        if !self.resume {
            if let Some(description) = self.engine.completed_import(fingerprint)? {
                return Ok(Finished::AlreadyComplete { description });
            }
        }
        self.engine.begin_import(&self.description)?;
        self.chunk.flush(&mut self.staging)?;
        self.staging.flush()?;
        self.store_groups(progress)?;
        self.store_auth(progress)?;
        self.engine.finish_import(fingerprint, &self.description)?;
        Ok(Finished::Imported(self.summary))
    }

    /// Stores the staged groups in id order, and the event mappings. One
    /// thread walks the scratch store and builds each group's rows (the
    /// decoding half of the work); this one checks and stores them (the
    /// engine's half), in batches. A third stores the event mappings, in
    /// source order, each once the groups up to its own are stored
    /// ([`Frontier`]): a dump lists them by group, so they are stored
    /// while the groups are, on the time the two others leave.
    fn store_groups(&mut self, progress: &mut dyn FnMut(Phase, u64)) -> Result<()> {
        let mut summary = std::mem::take(&mut self.summary);
        let this = &*self;
        let frontier = Frontier::default();
        let frontier = &frontier;
        let result = std::thread::scope(|scope| {
            let spawn_failed = |e: std::io::Error| mxstate_api::Error::internal(format!("starting a thread: {e}"));
            let (tx, rx) = std::sync::mpsc::sync_channel(DECODED_QUEUE);
            let (used_tx, used_rx) = std::sync::mpsc::sync_channel(DECODED_QUEUE);
            let walk = GroupWalk::new(&this.staging);
            std::thread::Builder::new()
                .name("import-decode".into())
                .spawn_scoped(scope, move || decode_groups(walk, &tx, &used_rx))
                .map_err(spawn_failed)?;
            // Stops the mapping thread whatever happens here (even a panic).
            let ended = EndOnDrop(frontier);
            let (mapped_tx, mapped_rx) = std::sync::mpsc::channel();
            let (engine, maps) = (this.engine, this.staging.iter(TAG_MAP));
            let mapper = std::thread::Builder::new()
                .name("import-map".into())
                .spawn_scoped(scope, move || store_mappings(engine, maps, frontier, &mapped_tx))
                .map_err(spawn_failed)?;
            let stored = this.store_decoded(&rx, &used_tx, &mut summary, frontier, progress);
            // Stops the decoding thread at its next send if this one stopped early.
            drop(rx);
            frontier.end(stored.is_ok());
            drop(ended);
            if stored.is_ok() {
                for n in &mapped_rx {
                    progress(Phase::Mappings, n);
                }
            }
            let mapped = mapper
                .join()
                .map_err(|_| mxstate_api::Error::internal("the event mapping thread panicked"))?;
            stored?;
            let mapped = mapped?;
            summary.mappings_stored = mapped.stored;
            summary.mappings_unknown_group = mapped.unknown_group;
            progress(Phase::Mappings, mapped.stored);
            Ok(())
        });
        self.summary = summary;
        result
    }

    fn store_decoded(
        &self,
        rx: &Receiver<Decoded>,
        used: &SyncSender<Vec<Pending>>,
        summary: &mut ImportSummary,
        frontier: &Frontier,
        progress: &mut dyn FnMut(Phase, u64),
    ) -> Result<()> {
        let mut pending: Vec<Pending> = Vec::new();
        let mut pending_rows = 0usize;
        let mut rooms: BTreeSet<String> = BTreeSet::new();
        let mut last_room: Option<RoomId> = None;
        let mut done = 0u64;
        loop {
            let groups = match rx.recv() {
                Ok(Decoded::Groups(groups)) => groups,
                Ok(Decoded::End) => break,
                Ok(Decoded::Failed(e)) => return Err(e),
                Err(_) => return Err(mxstate_api::Error::internal("the group decoding thread stopped").into()),
            };
            for group in groups {
                let id = group.id;
                if self.resume && self.engine.has_group(id)? {
                    summary.groups_skipped += 1;
                    continue;
                }
                let p = self.resolve(group, &pending, summary)?;
                if last_room.as_ref() != Some(&p.room) {
                    rooms.insert(p.room.as_str().to_owned());
                    last_room = Some(p.room.clone());
                }
                pending_rows += p.delta.len() + p.full.len();
                pending.push(p);
                if pending.len() >= BATCH_GROUPS || pending_rows >= BATCH_ROWS {
                    done += self.flush(&pending, summary)?;
                    // Every staged group up to this one is stored (or was).
                    frontier.advance(id);
                    // Freed by the decoding thread, which allocated them;
                    // here if it is busy.
                    let _ = used.try_send(std::mem::take(&mut pending));
                    pending_rows = 0;
                    progress(Phase::Groups, done);
                }
            }
        }
        done += self.flush(&pending, summary)?;
        pending.clear();
        progress(Phase::Groups, done);
        summary.rooms = rooms.len() as u64;
        Ok(())
    }

    /// Turns a decoded group into a group to store, checking it.
    fn resolve(&self, g: DecodedGroup, pending: &[Pending], summary: &mut ImportSummary) -> Result<Pending> {
        let DecodedGroup {
            id,
            staged: s,
            mut delta,
            mut full,
        } = g;
        // Every staged group has a state_groups row, an edge or a row.
        let at = s
            .line
            .or(s.prev.map(|p| p.1))
            .or(s.first_row_line)
            .ok_or_else(|| mxstate_api::Error::internal(format!("staged group {id} has no line")))?;
        let in_err = |e: mxstate_api::Error| ImportError::input(at, e.to_string()).in_group(id, at);
        let mut prev = None;
        if let Some((p, line)) = s.prev {
            let known = pending.iter().rev().any(|q| q.id == p) || self.engine.has_group(p)?;
            if known {
                prev = Some(p);
            } else if p > id {
                return Err(ImportError::input(line, self.later_prev_error(id, p)?).in_group(id, line));
            } else if self.staged_anywhere(p)? {
                return Err(
                    ImportError::input(line, format!("prev group {p} could not be stored before {id}"))
                        .in_group(id, line),
                );
            } else {
                // Named only by this edge: an empty group, so the state is the rows.
                summary.dangling_prevs += 1;
                full = std::mem::take(&mut delta)
                    .into_iter()
                    .filter_map(|(k, e)| Some((k, e?)))
                    .collect();
            }
        }
        let room_str = match (&s.room, &s.row_room) {
            (Some(r), _) | (None, Some(r)) => r.clone(),
            (None, None) => match prev {
                Some(p) => match pending.iter().rev().find(|q| q.id == p) {
                    Some(q) => q.room.as_str().to_owned(),
                    None => self.engine.group_room(p).map_err(in_err)?.as_str().to_owned(),
                },
                None => {
                    return Err(
                        ImportError::input(at, "group has no room: no state_groups row, no rows, no prev")
                            .in_group(id, at),
                    )
                }
            },
        };
        let room = match pending.last() {
            Some(q) if q.room.as_str() == room_str => q.room.clone(),
            _ => RoomId::parse(&room_str).map_err(in_err)?,
        };
        let event = match &s.event {
            Some(e) => EventId::parse(e).map_err(in_err)?,
            // No state_groups row: any valid id stands for the missing event.
            None => EventId::parse(format!("$mxstate-import-missing-{id}")).map_err(in_err)?,
        };
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
            let next = match it.peek() {
                Some((k, _)) => Some(edge_prev(k)?),
                None => None,
            };
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

    fn flush(&self, pending: &[Pending], summary: &mut ImportSummary) -> Result<u64> {
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
                Some((id, line, e)) => ImportError::input(line, e.to_string()).in_group(id, line),
                None => e.into(),
            });
        }
        let n = pending.len() as u64;
        summary.groups_stored += n;
        Ok(n)
    }
}

/// Stores the staged event mappings in source order, each once
/// `frontier` says its group is settled; sends the count stored after
/// each batch. Stops early, with nothing to report, when the group
/// phase failed.
fn store_mappings(
    engine: &Engine,
    mut it: ScratchIter<'_>,
    frontier: &Frontier,
    stored: &std::sync::mpsc::Sender<u64>,
) -> Result<Mapped> {
    let mut batch: Vec<(EventId, GroupId)> = Vec::with_capacity(BATCH_MAPPINGS);
    let mut out = Mapped::default();
    // Mappings of one group usually come together: ask about it once.
    let mut known: Option<(GroupId, bool)> = None;
    // Groups up to this one are settled.
    let mut settled = 0;
    while let Some((_, v)) = it.peek() {
        let MapRow { line, event, group: g } = decode(v, "staged mapping")?;
        let ev = EventId::parse(event).map_err(|err| ImportError::input(line, err.to_string()))?;
        if g > settled {
            match frontier.wait_past(g)? {
                Some(s) => settled = s,
                None => return Ok(out),
            }
        }
        let exists = match known {
            Some((k, exists)) if k == g => exists,
            _ => {
                let exists = engine.has_group(g)?;
                known = Some((g, exists));
                exists
            }
        };
        if exists {
            batch.push((ev, g));
        } else {
            out.unknown_group += 1;
        }
        if batch.len() >= BATCH_MAPPINGS {
            engine.set_event_groups(&batch)?;
            out.stored += batch.len() as u64;
            batch.clear();
            let _ = stored.send(out.stored);
        }
        it.advance();
    }
    it.status()?;
    engine.set_event_groups(&batch)?;
    out.stored += batch.len() as u64;
    Ok(out)
}

/// What the mapping thread stored.
#[derive(Default)]
struct Mapped {
    stored: u64,
    /// Left out: their group does not exist.
    unknown_group: u64,
}

/// How far the group phase got, for the mapping thread: every staged
/// group up to `settled` is stored (or was found stored when resuming),
/// so whether a group up to it exists is known and final.
#[derive(Default)]
struct Frontier {
    state: std::sync::Mutex<FrontierState>,
    moved: std::sync::Condvar,
}

#[derive(Default)]
struct FrontierState {
    settled: GroupId,
    /// `Some(true)`: every group is settled; `Some(false)`: the group phase failed.
    ended: Option<bool>,
}

impl Frontier {
    fn state(&self) -> std::sync::MutexGuard<'_, FrontierState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every staged group up to `g` is settled.
    fn advance(&self, g: GroupId) {
        let mut st = self.state();
        st.settled = st.settled.max(g);
        self.moved.notify_all();
    }

    /// The group phase ended: every group is settled (`ok`), or it failed.
    fn end(&self, ok: bool) {
        let mut st = self.state();
        st.ended.get_or_insert(ok);
        self.moved.notify_all();
    }

    /// Waits until group `g` is settled; returns the group up to which
    /// all are, or `None` when the group phase failed.
    fn wait_past(&self, g: GroupId) -> Result<Option<GroupId>> {
        let mut st = self.state();
        loop {
            match st.ended {
                Some(true) => return Ok(Some(GroupId::MAX)),
                Some(false) => return Ok(None),
                None if st.settled >= g => return Ok(Some(st.settled)),
                None => {
                    st = self.moved.wait(st).unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            }
        }
    }
}

/// Ends the group phase as failed when dropped first (an early return or
/// a panic), so that the mapping thread never waits forever.
struct EndOnDrop<'f>(&'f Frontier);

impl Drop for EndOnDrop<'_> {
    fn drop(&mut self) {
        self.0.end(false);
    }
}

impl Importer<'_> {
    /// Adds the staged `event_auth` rows to the auth index: each event with
    /// all its auth events (sorted, so that a resumed import adds the same
    /// lists again, which is a no-op), several rooms per atomic batch.
    fn store_auth(&mut self, progress: &mut dyn FnMut(Phase, u64)) -> Result<()> {
        let mut walk = AuthWalk::new(&self.staging);
        let mut batch = AuthBatch::default();
        let mut done = 0u64;
        let mut rooms = 0u64;
        let mut last_room: Option<String> = None;
        while let Some(ev) = walk.next_event()? {
            if last_room.as_deref() != Some(ev.room.as_str()) {
                rooms += 1;
                last_room = Some(ev.room.clone());
            }
            batch.push(ev)?;
            if batch.events >= BATCH_AUTH_EVENTS || batch.edges >= BATCH_AUTH_EDGES {
                done += batch.flush(self.engine)?;
                progress(Phase::Auth, done);
            }
        }
        done += batch.flush(self.engine)?;
        progress(Phase::Auth, done);
        self.summary.auth_events = done;
        self.summary.auth_rooms = rooms;
        Ok(())
    }
}

/// Events and their auth events waiting to be added, by room.
#[derive(Default)]
struct AuthBatch {
    rooms: Vec<(RoomId, AuthEvents)>,
    /// Each event's line, in the order of `rooms`' events (for errors).
    lines: Vec<(EventId, u64)>,
    events: usize,
    edges: usize,
}

impl AuthBatch {
    /// Adds one staged event (its ids were checked when staged).
    fn push(&mut self, ev: StagedAuth) -> Result<()> {
        let line = ev.line;
        let bad = |e: mxstate_api::Error| ImportError::input(line, format!("event_auth: {e}"));
        let event = EventId::parse(&ev.event).map_err(bad)?;
        let auth = ev
            .auth
            .iter()
            .map(EventId::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        if self.rooms.last().is_none_or(|(r, _)| r.as_str() != ev.room) {
            self.rooms.push((RoomId::parse(&ev.room).map_err(bad)?, Vec::new()));
        }
        self.events += 1;
        self.edges += auth.len();
        self.lines.push((event.clone(), line));
        if let Some((_, events)) = self.rooms.last_mut() {
            events.push((event, auth));
        }
        Ok(())
    }

    /// Adds what is waiting in one atomic batch; returns the events added.
    fn flush(&mut self, engine: &Engine) -> Result<u64> {
        if self.rooms.is_empty() {
            return Ok(0);
        }
        if let Err(e) = engine.add_auth_events_marked(&self.rooms, None) {
            // Nothing was written. Name the event the database refused.
            let at = match &e {
                mxstate_api::Error::AuthEventsDiffer(id) => self
                    .lines
                    .iter()
                    .find(|(ev, _)| ev.as_str() == id.as_str())
                    .map(|l| l.1),
                _ => None,
            };
            return Err(match at {
                Some(line) => ImportError::input(line, format!("event_auth: {e}")),
                None => e.into(),
            });
        }
        let n = self.events as u64;
        *self = AuthBatch::default();
        Ok(n)
    }
}

/// Groups decoded per message of the decoding thread (also bounded by
/// [`DECODED_ROWS`]), and messages it may have queued.
const DECODED_GROUPS: usize = 256;
const DECODED_ROWS: usize = 32_768;
const DECODED_QUEUE: usize = 4;

/// What the decoding thread sends.
enum Decoded {
    Groups(Vec<DecodedGroup>),
    /// Every group was sent.
    End,
    Failed(ImportError),
}

/// A staged group with its rows in the shape the engine takes: a delta when
/// it names a prev group, else a full state (`staged.rows` is emptied).
struct DecodedGroup {
    id: GroupId,
    staged: Staged,
    delta: StateDelta,
    full: StateMap,
}

/// The decoding thread: walks the scratch store and sends the groups in
/// id order, then [`Decoded::End`]; stops when the receiver is gone. Frees
/// the stored groups that come back on `used`.
fn decode_groups(mut walk: GroupWalk<'_>, tx: &SyncSender<Decoded>, used: &Receiver<Vec<Pending>>) {
    let mut batch = Vec::new();
    let mut rows = 0usize;
    loop {
        while let Ok(stored) = used.try_recv() {
            drop(stored);
        }
        let (id, mut staged) = match walk.next_group() {
            Ok(Some(group)) => group,
            Ok(None) => break,
            Err(e) => {
                let _ = tx.send(Decoded::Failed(e));
                return;
            }
        };
        let staged_rows = std::mem::take(&mut staged.rows);
        rows += staged_rows.len();
        let mut delta = StateDelta::new();
        let mut full = StateMap::default();
        if staged.prev.is_some() {
            delta.extend(staged_rows.into_iter().map(|(k, e, _)| (k, Some(e))));
        } else {
            full.reserve(staged_rows.len());
            full.extend(staged_rows.into_iter().map(|(k, e, _)| (k, e)));
        }
        batch.push(DecodedGroup {
            id,
            staged,
            delta,
            full,
        });
        if batch.len() >= DECODED_GROUPS || rows >= DECODED_ROWS {
            if tx.send(Decoded::Groups(std::mem::take(&mut batch))).is_err() {
                return;
            }
            rows = 0;
        }
    }
    if !batch.is_empty() && tx.send(Decoded::Groups(batch)).is_err() {
        return;
    }
    let _ = tx.send(Decoded::End);
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
