//! Checking a database against its source: each group's state recomputed
//! with Synapse's meaning (walk the prev edges, nearest group wins) from the
//! source rows, compared with what the engine answers; then, when the
//! source has `event_auth` rows, a sample of auth chains and auth chain
//! differences (`verify_auth.rs`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::sync::Arc;

use mxstate_api::{EventId, GroupId, RoomId, StateFilter, StateMap};
use mxstate_engine::Engine;
use mxstate_rocks::Scratch;
use mxstate_synapse_dump::{AuthEdge, Record, SourceRow};

use crate::error::{ImportError, Result};
use crate::groups::GroupWalk;
use crate::staged::{edge_prev, key, split_entry, stage, stage_auth, ChunkRows, RowChunk, TAG_EDGE, TAG_ROW};
use crate::verify_auth::{AuthCheck, RoomGroups};
use crate::ImportSummary;

/// A state as plain strings: `(type, state_key) -> event_id`.
pub type PlainState = BTreeMap<(String, String), String>;

/// States of recent groups kept to extend chains cheaply: at most this
/// many groups and this many entries in all.
const MEMO_GROUPS: usize = 256;
const MEMO_ENTRIES: usize = 2_000_000;

/// One group whose state differs.
#[derive(Debug, Clone)]
pub struct Mismatch {
    pub group: GroupId,
    pub detail: String,
}

/// One auth answer that differs from the source's.
#[derive(Debug, Clone)]
pub struct AuthMismatch {
    pub room: String,
    /// What was asked (`auth chain of $e`, `auth chain difference of ...`)
    /// and how the answers differ.
    pub detail: String,
}

/// What a verification found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub groups_checked: u64,
    pub groups_in_source: u64,
    pub mismatches: u64,
    /// The first mismatches, in group order.
    pub first: Vec<Mismatch>,
    /// `event_auth` rows of the source with valid ids.
    pub auth_rows: u64,
    /// `event_auth` rows of the source naming an invalid id (not compared).
    pub auth_rows_invalid: u64,
    /// Events with `event_auth` rows in the source.
    pub auth_events_in_source: u64,
    /// Auth chains compared (one event each).
    pub auth_chains_checked: u64,
    /// Auth chain differences compared (two or three state sets each).
    pub auth_differences_checked: u64,
    /// Auth answers that differ from the source's.
    pub auth_mismatches: u64,
    /// The first auth mismatches.
    pub first_auth: Vec<AuthMismatch>,
}

impl VerifyReport {
    /// Whether everything compared was the same.
    pub fn clean(&self) -> bool {
        self.mismatches == 0 && self.auth_mismatches == 0
    }
}

/// Where a verification reads each group's state and the auth answers: an
/// open engine, or a client of a running service.
pub trait GroupStates {
    /// The whole state of `group`.
    fn group_state(&self, group: GroupId) -> mxstate_api::Result<StateMap>;

    /// The events reachable from `events` by one or more auth edges
    /// (`Engine::auth_chain` without the given events).
    fn auth_chain(&self, room: &RoomId, events: &[EventId]) -> mxstate_api::Result<BTreeSet<EventId>>;

    /// The auth chain difference of state sets (`Engine::auth_chain_difference`
    /// without a conflicted subgraph).
    fn auth_chain_difference(
        &self,
        room: &RoomId,
        state_sets: &[BTreeSet<EventId>],
    ) -> mxstate_api::Result<BTreeSet<EventId>>;
}

impl GroupStates for Engine {
    fn group_state(&self, group: GroupId) -> mxstate_api::Result<StateMap> {
        self.state_for_group(group, &StateFilter::all())
    }

    fn auth_chain(&self, room: &RoomId, events: &[EventId]) -> mxstate_api::Result<BTreeSet<EventId>> {
        Engine::auth_chain(self, room, events, false)
    }

    fn auth_chain_difference(
        &self,
        room: &RoomId,
        state_sets: &[BTreeSet<EventId>],
    ) -> mxstate_api::Result<BTreeSet<EventId>> {
        Ok(Engine::auth_chain_difference(self, room, state_sets, None)?.auth_difference)
    }
}

/// Compares a database with a source streamed into it by `add`.
pub struct Verifier<'e> {
    engine: &'e dyn GroupStates,
    staging: Scratch,
    summary: ImportSummary,
    /// State rows not written to the scratch store yet.
    chunk: RowChunk,
}

impl<'e> Verifier<'e> {
    /// Starts a verification, with a scratch directory under `scratch_parent`.
    pub fn new(engine: &'e dyn GroupStates, scratch_parent: &Path) -> Result<Self> {
        Ok(Verifier {
            engine,
            staging: Scratch::create(scratch_parent)?,
            summary: ImportSummary::default(),
            chunk: RowChunk::default(),
        })
    }

    /// Takes one source record (event mappings are not verified).
    pub fn add(&mut self, record: &Record, line: u64) -> Result<()> {
        if matches!(record, Record::EventToStateGroup { .. }) {
            return Ok(());
        }
        stage(&mut self.staging, &mut self.summary, record, line, &mut self.chunk)
    }

    /// Takes one `event_auth` row (one naming an invalid id is counted and
    /// not compared).
    pub fn add_auth(&mut self, edge: &AuthEdge, line: u64) -> Result<()> {
        stage_auth(&mut self.staging, &mut self.summary, edge, line)
    }

    /// Takes one row of any table.
    pub fn add_row(&mut self, row: &SourceRow, line: u64) -> Result<()> {
        match row {
            SourceRow::State(r) => self.add(r, line),
            SourceRow::Auth(a) => self.add_auth(a, line),
        }
    }

    /// Checks every group, or about `sample` of them spread evenly, then
    /// (when the source has `event_auth` rows) a sample of auth chains and
    /// auth chain differences; keeps the first `keep` mismatches of each.
    pub fn finish(mut self, sample: Option<u64>, keep: usize, progress: &mut dyn FnMut(u64)) -> Result<VerifyReport> {
        self.chunk.flush(&mut self.staging)?;
        self.staging.flush()?;
        let total = {
            let mut n = 0u64;
            let mut walk = GroupWalk::new(&self.staging);
            while walk.next_group()?.is_some() {
                n += 1;
            }
            n
        };
        let step = match sample {
            Some(s) if s > 0 && s < total => total.div_ceil(s),
            _ => 1,
        };
        let mut report = VerifyReport {
            groups_in_source: total,
            ..VerifyReport::default()
        };
        let mut memo: Memo = Memo::default();
        let mut room_groups = RoomGroups::default();
        let mut walk = GroupWalk::new(&self.staging);
        let mut index = 0u64;
        while let Some((id, staged)) = walk.next_group()? {
            index += 1;
            if let Some(room) = staged.room.as_deref().or(staged.row_room.as_deref()) {
                room_groups.saw(room, id);
            }
            let chosen = (index - 1).is_multiple_of(step);
            if !chosen && step > 1 {
                continue;
            }
            let prev = staged.prev.map(|p| p.0);
            let rows: Vec<((String, String), String)> = staged
                .rows
                .into_iter()
                .map(|(k, e, _)| {
                    (
                        (k.event_type().to_owned(), k.state_key().to_owned()),
                        e.as_str().to_owned(),
                    )
                })
                .collect();
            let expected = self.expected(id, prev, rows, &mut memo)?;
            report.groups_checked += 1;
            if let Some(detail) = self.compare(id, &expected)? {
                report.mismatches += 1;
                if report.first.len() < keep {
                    report.first.push(Mismatch { group: id, detail });
                }
            }
            if report.groups_checked.is_multiple_of(1000) {
                progress(report.groups_checked);
            }
        }
        progress(report.groups_checked);
        report.auth_rows = self.summary.auth_rows;
        report.auth_rows_invalid = self.summary.auth_rows_invalid;
        AuthCheck {
            engine: self.engine,
            staging: &self.staging,
            keep,
        }
        .run(&room_groups, &mut |g| self.state_of(g, &mut memo), &mut report)?;
        Ok(report)
    }

    /// Synapse's answer for group `id`.
    fn expected(
        &self,
        id: GroupId,
        prev: Option<GroupId>,
        rows: Vec<((String, String), String)>,
        memo: &mut Memo,
    ) -> Result<Arc<PlainState>> {
        let mut state = match prev {
            Some(p) => (*self.state_of(p, memo)?).clone(),
            None => PlainState::new(),
        };
        state.extend(rows);
        let state = Arc::new(state);
        memo.put(id, state.clone());
        Ok(state)
    }

    /// Synapse's answer for any staged group, walking edges to a memo hit or the root.
    fn state_of(&self, g: GroupId, memo: &mut Memo) -> Result<Arc<PlainState>> {
        let mut chain = Vec::new();
        let mut cur = Some(g);
        let mut base = Arc::new(PlainState::new());
        while let Some(c) = cur {
            if let Some(s) = memo.get(c) {
                base = s;
                break;
            }
            chain.push(c);
            if chain.len() > 1_000_000 {
                return Err(ImportError {
                    line: None,
                    group: Some(g),
                    cause: crate::Cause::Input("cycle in state_group_edges".into()),
                });
            }
            let it = self.staging.iter_prefix(&key(TAG_EDGE, &[c]));
            cur = match it.peek() {
                Some((k, _)) => Some(edge_prev(k)?),
                None => None,
            };
            it.status()?;
        }
        if chain.is_empty() {
            return Ok(base);
        }
        let mut state = (*base).clone();
        for &c in chain.iter().rev() {
            let mut it = self.staging.iter_prefix(&key(TAG_ROW, &[c]));
            while let Some((_, chunk)) = it.peek() {
                let mut rows = ChunkRows::new(chunk)?;
                while let Some(row) = rows.next_row()? {
                    let (t, k, e) = split_entry(row.entry)?;
                    state.insert((t.to_owned(), k.to_owned()), e.to_owned());
                }
                it.advance();
            }
            it.status()?;
        }
        let state = Arc::new(state);
        memo.put(g, state.clone());
        Ok(state)
    }

    /// A description of how the engine's answer differs, if it does.
    fn compare(&self, id: GroupId, expected: &PlainState) -> Result<Option<String>> {
        let got = match self.engine.group_state(id) {
            Ok(s) => s,
            Err(mxstate_api::Error::UnknownGroup(_)) => return Ok(Some("missing from mxstate".into())),
            Err(e) => return Err(e.into()),
        };
        let got: PlainState = got
            .into_iter()
            .map(|(k, e)| {
                (
                    (k.event_type().to_owned(), k.state_key().to_owned()),
                    e.as_str().to_owned(),
                )
            })
            .collect();
        if &got == expected {
            return Ok(None);
        }
        let mut diffs = Vec::new();
        for (k, v) in expected {
            match got.get(k) {
                None => diffs.push(format!("missing {k:?} = {v}")),
                Some(g) if g != v => diffs.push(format!("{k:?}: mxstate {g}, source {v}")),
                _ => {}
            }
        }
        for (k, v) in &got {
            if !expected.contains_key(k) {
                diffs.push(format!("extra {k:?} = {v}"));
            }
        }
        let n = diffs.len();
        diffs.truncate(3);
        Ok(Some(format!("{n} differences: {}", diffs.join("; "))))
    }
}

/// A small FIFO of recent states.
#[derive(Default)]
struct Memo {
    order: VecDeque<GroupId>,
    states: BTreeMap<GroupId, Arc<PlainState>>,
    entries: usize,
}

impl Memo {
    fn get(&self, g: GroupId) -> Option<Arc<PlainState>> {
        self.states.get(&g).cloned()
    }
    fn put(&mut self, g: GroupId, s: Arc<PlainState>) {
        self.entries += s.len();
        match self.states.insert(g, s) {
            Some(old) => self.entries -= old.len(),
            None => self.order.push_back(g),
        }
        while self.order.len() > MEMO_GROUPS || (self.entries > MEMO_ENTRIES && self.order.len() > 1) {
            let Some(old) = self.order.pop_front() else { break };
            if let Some(s) = self.states.remove(&old) {
                self.entries -= s.len();
            }
        }
    }
}
