//! Where a `Store`'s calls go: an engine in this process (a database
//! directory) or a running `mxstate serve` (an address), which is how
//! Synapse's workers share one database. Both answer the same calls with
//! the same meaning; the service runs each as `Engine`'s method of the
//! same name (mxstate-serve's `adapter` module).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use mxstate_api::{
    AuthDifference, ConflictedSubgraph, Error, EventId, GroupDelta, GroupId, Result, RoomId, StateFilter, StateStore,
};
use mxstate_engine::{AuthMark, Engine, GroupState, NewGroup, StateView};
use mxstate_remote::adapter::{AdapterOp, AdapterReply, WBase, WNewGroup};
use mxstate_remote::wire::{self, WState};
use mxstate_remote::RemoteStore;

/// A group's state as found: a view of the engine's records (in process)
/// or `(type, state_key, event_id)` triples (from a service).
pub enum Found {
    View(StateView),
    Triples(WState),
}

/// A `RemoteStore` and the runtime its connections run on.
pub struct Remote {
    rt: tokio::runtime::Runtime,
    store: RemoteStore,
}

impl Remote {
    pub fn new(rt: tokio::runtime::Runtime, store: RemoteStore) -> Remote {
        Remote { rt, store }
    }

    fn call(&self, op: AdapterOp) -> Result<AdapterReply> {
        self.rt.block_on(self.store.adapter(op))
    }

    /// The service's figures, as JSON.
    pub fn stats_json(&self) -> Result<String> {
        self.rt.block_on(self.store.stats())
    }
}

/// Where calls go.
pub enum Backend {
    Local(Arc<Engine>),
    Remote(Remote),
}

fn unexpected(r: &AdapterReply) -> Error {
    Error::internal(format!("protocol: unexpected reply {r:?}"))
}

fn ids(r: AdapterReply) -> Result<Vec<GroupId>> {
    match r {
        AdapterReply::Ids(v) => Ok(v),
        other => Err(unexpected(&other)),
    }
}

fn done(r: AdapterReply) -> Result<()> {
    match r {
        AdapterReply::Done => Ok(()),
        other => Err(unexpected(&other)),
    }
}

fn list(s: &BTreeSet<GroupId>) -> Vec<GroupId> {
    s.iter().copied().collect()
}

fn new_group_out(g: &NewGroup<'_>) -> WNewGroup {
    let (base, entries) = match g.state {
        GroupState::Full(s) => (
            WBase::Full,
            wire::state_out(s)
                .into_iter()
                .map(|(t, k, e)| (t, k, Some(e)))
                .collect(),
        ),
        GroupState::Delta { prev, delta } => (WBase::Prev(prev), wire::delta_out(delta)),
        GroupState::DeltaOnPrevious { delta } => (WBase::Previous, wire::delta_out(delta)),
    };
    WNewGroup {
        room: g.room_id.as_str().to_owned(),
        event: g.event_id.as_str().to_owned(),
        base,
        entries,
    }
}

impl Backend {
    pub fn store_groups_at(&self, groups: &[NewGroup<'_>], now_ms: Option<u64>) -> Result<Vec<GroupId>> {
        match self {
            Backend::Local(e) => e.store_groups_at(groups, now_ms),
            Backend::Remote(r) => ids(r.call(AdapterOp::StoreGroupsAt {
                groups: groups.iter().map(new_group_out).collect(),
                now_ms,
            })?),
        }
    }

    /// The state of each group under `filter`; `None` for a group that
    /// does not exist.
    pub fn states(&self, groups: &BTreeSet<GroupId>, filter: &StateFilter) -> Result<Vec<(GroupId, Option<Found>)>> {
        match self {
            Backend::Local(e) => {
                let mut out = Vec::with_capacity(groups.len());
                for &g in groups {
                    match e.state_view(g, filter) {
                        Ok(v) => out.push((g, Some(Found::View(v)))),
                        Err(Error::UnknownGroup(_)) => out.push((g, None)),
                        Err(err) => return Err(err),
                    }
                }
                Ok(out)
            }
            Backend::Remote(r) => match r.call(AdapterOp::StatesOrMissing {
                groups: list(groups),
                filter: wire::filter_out(filter),
            })? {
                AdapterReply::MaybeStates(v) => Ok(v.into_iter().map(|(g, s)| (g, s.map(Found::Triples))).collect()),
                other => Err(unexpected(&other)),
            },
        }
    }

    pub fn state_group_delta(&self, group: GroupId) -> Result<Option<GroupDelta>> {
        match self {
            Backend::Local(e) => e.state_group_delta(group),
            Backend::Remote(r) => r.rt.block_on(r.store.state_group_delta(group)),
        }
    }

    fn pairs(r: &Remote, op: AdapterOp) -> Result<BTreeMap<GroupId, GroupId>> {
        match r.call(op)? {
            AdapterReply::Pairs(v) => Ok(v.into_iter().collect()),
            other => Err(unexpected(&other)),
        }
    }

    pub fn previous_groups(&self, groups: &BTreeSet<GroupId>) -> Result<BTreeMap<GroupId, GroupId>> {
        match self {
            Backend::Local(e) => e.previous_groups(groups),
            Backend::Remote(r) => Self::pairs(r, AdapterOp::PreviousGroups(list(groups))),
        }
    }

    pub fn next_groups(&self, groups: &BTreeSet<GroupId>) -> Result<BTreeMap<GroupId, GroupId>> {
        match self {
            Backend::Local(e) => e.next_groups(groups),
            Backend::Remote(r) => Self::pairs(r, AdapterOp::NextGroups(list(groups))),
        }
    }

    pub fn room_groups(&self, room: &RoomId) -> Result<Vec<GroupId>> {
        match self {
            Backend::Local(e) => e.room_groups(room),
            Backend::Remote(r) => r.rt.block_on(r.store.room_groups(room.clone())),
        }
    }

    fn name(r: &Remote, op: AdapterOp, group: GroupId) -> Result<String> {
        match r.call(op)? {
            AdapterReply::Name(Some(n)) => Ok(n),
            AdapterReply::Name(None) => Err(Error::UnknownGroup(group)),
            other => Err(unexpected(&other)),
        }
    }

    pub fn group_room(&self, group: GroupId) -> Result<RoomId> {
        match self {
            Backend::Local(e) => e.group_room(group),
            Backend::Remote(r) => RoomId::parse(Self::name(r, AdapterOp::GroupRoom(group), group)?),
        }
    }

    pub fn group_event(&self, group: GroupId) -> Result<EventId> {
        match self {
            Backend::Local(e) => e.group_event(group),
            Backend::Remote(r) => EventId::parse(Self::name(r, AdapterOp::GroupEvent(group), group)?),
        }
    }

    /// The subset of `groups` that exist.
    pub fn existing_groups(&self, groups: &BTreeSet<GroupId>) -> Result<Vec<GroupId>> {
        match self {
            Backend::Local(e) => {
                let mut out = Vec::new();
                for &g in groups {
                    if e.has_group(g)? {
                        out.push(g);
                    }
                }
                Ok(out)
            }
            Backend::Remote(r) => ids(r.call(AdapterOp::ExistingGroups(list(groups)))?),
        }
    }

    pub fn groups_below(&self, before: GroupId, limit: usize) -> Result<Vec<GroupId>> {
        match self {
            Backend::Local(e) => e.groups_below(before, limit),
            Backend::Remote(r) => ids(r.call(AdapterOp::GroupsBelow {
                before,
                limit: u32::try_from(limit).unwrap_or(u32::MAX),
            })?),
        }
    }

    pub fn max_group(&self) -> Result<Option<GroupId>> {
        match self {
            Backend::Local(e) => e.max_group(),
            Backend::Remote(r) => match r.call(AdapterOp::MaxGroup)? {
                AdapterReply::MaybeId(g) => Ok(g),
                other => Err(unexpected(&other)),
            },
        }
    }

    /// Auth events of rooms, with the homeserver's mark, atomically.
    pub fn add_auth_events_marked(
        &self,
        rooms: &[(RoomId, mxstate_api::AuthEvents)],
        mark: Option<AuthMark>,
    ) -> Result<()> {
        match self {
            Backend::Local(e) => e.add_auth_events_marked(rooms, mark),
            Backend::Remote(r) => done(
                r.call(AdapterOp::AddAuthMarked {
                    rooms: rooms
                        .iter()
                        .map(|(room, events)| (room.as_str().to_owned(), wire::auth_events_out(events)))
                        .collect(),
                    mark: mark.map(|m| (m.min, m.max)),
                })?,
            ),
        }
    }

    pub fn auth_mark(&self) -> Result<Option<AuthMark>> {
        match self {
            Backend::Local(e) => e.auth_mark(),
            Backend::Remote(r) => match r.call(AdapterOp::AuthMark)? {
                AdapterReply::Mark(m) => Ok(m.map(|(min, max)| AuthMark { min, max })),
                other => Err(unexpected(&other)),
            },
        }
    }

    /// The auth chain in no order (Synapse makes a set of it).
    pub fn auth_chain(&self, room: &RoomId, events: &[EventId], include_given: bool) -> Result<Vec<EventId>> {
        match self {
            Backend::Local(e) => e.auth_chain_unordered(room, events, include_given),
            Backend::Remote(r) => Ok(r
                .rt
                .block_on(r.store.auth_chain(room.clone(), events.to_vec(), include_given))?
                .into_iter()
                .collect()),
        }
    }

    /// [`Backend::auth_chain`] of ids as text, answered as text: the local
    /// engine looks the text up as it is; the remote one is sent ids.
    pub fn auth_chain_text<I: AsRef<str>>(
        &self,
        room: &RoomId,
        events: &[I],
        include_given: bool,
    ) -> Result<Vec<Arc<str>>> {
        match self {
            Backend::Local(e) => e.auth_chain_of_text(room, events, include_given),
            Backend::Remote(_) => Ok(self
                .auth_chain(room, &parse_all(events)?, include_given)?
                .iter()
                .map(|e| e.as_arc().clone())
                .collect()),
        }
    }

    /// [`Backend::auth_chain_difference`] of ids as text, answered as
    /// text, unordered: `(difference, conflicted subgraph)`.
    #[allow(clippy::type_complexity)]
    pub fn auth_chain_difference_text<I: AsRef<str>>(
        &self,
        room: &RoomId,
        sets: &[Vec<I>],
        conflicted: Option<(&Vec<I>, &Vec<I>)>,
    ) -> Result<(Vec<Arc<str>>, Option<Vec<Arc<str>>>)> {
        match self {
            Backend::Local(e) => e.auth_chain_difference_of_text(room, sets, conflicted),
            Backend::Remote(_) => {
                let sets = sets.iter().map(|s| parse_all(s)).collect::<Result<Vec<_>>>()?;
                let conflicted = match conflicted {
                    None => None,
                    Some((c, a)) => Some((parse_all(c)?, parse_all(a)?)),
                };
                let d = self.auth_chain_difference(room, &sets, conflicted.as_ref().map(|(c, a)| (c, a)))?;
                let text = |s: std::collections::BTreeSet<EventId>| s.iter().map(|e| e.as_arc().clone()).collect();
                Ok((text(d.auth_difference), d.conflicted_subgraph.map(text)))
            }
        }
    }

    /// The auth difference of lists of ids (and, with `conflicted`, the
    /// conflicted subgraph of `(conflicted, additional)`).
    pub fn auth_chain_difference(
        &self,
        room: &RoomId,
        sets: &[Vec<EventId>],
        conflicted: Option<(&Vec<EventId>, &Vec<EventId>)>,
    ) -> Result<AuthDifference> {
        match self {
            Backend::Local(e) => e.auth_chain_difference_of(room, sets, conflicted),
            Backend::Remote(r) => r.rt.block_on(r.store.auth_chain_difference(
                room.clone(),
                sets.iter().map(|s| s.iter().cloned().collect()).collect(),
                conflicted.map(|(c, a)| ConflictedSubgraph {
                    conflicted: c.iter().cloned().collect(),
                    additional_backwards_reachable: a.iter().cloned().collect(),
                }),
            )),
        }
    }

    pub fn purge_room(&self, room: &RoomId) -> Result<()> {
        match self {
            Backend::Local(e) => e.purge_room(room),
            Backend::Remote(r) => r.rt.block_on(r.store.purge_room(room.clone())),
        }
    }

    pub fn check_and_bump_deletion(&self, groups: &BTreeSet<GroupId>, now_ms: u64) -> Result<Vec<GroupId>> {
        match self {
            Backend::Local(e) => e.check_and_bump_deletion(groups, now_ms),
            Backend::Remote(r) => ids(r.call(AdapterOp::CheckAndBumpDeletion {
                groups: list(groups),
                now_ms,
            })?),
        }
    }

    pub fn mark_persisting(&self, groups: &BTreeSet<GroupId>, instance: &str, now_ms: u64) -> Result<Vec<GroupId>> {
        match self {
            Backend::Local(e) => e.mark_persisting(groups, instance, now_ms),
            Backend::Remote(r) => ids(r.call(AdapterOp::MarkPersisting {
                groups: list(groups),
                instance: instance.to_owned(),
                now_ms,
            })?),
        }
    }

    pub fn finish_persisting(
        &self,
        groups: &BTreeSet<GroupId>,
        instance: &str,
        error: bool,
        now_ms: u64,
    ) -> Result<()> {
        match self {
            Backend::Local(e) => e.finish_persisting(groups, instance, error, now_ms),
            Backend::Remote(r) => done(r.call(AdapterOp::FinishPersisting {
                groups: list(groups),
                instance: instance.to_owned(),
                error,
                now_ms,
            })?),
        }
    }

    pub fn clear_persisting(&self, instance: &str, older_than_ms: u64) -> Result<BTreeSet<GroupId>> {
        match self {
            Backend::Local(e) => e.clear_persisting(instance, older_than_ms),
            Backend::Remote(r) => Ok(ids(r.call(AdapterOp::ClearPersisting {
                instance: instance.to_owned(),
                older_than_ms,
            })?)?
            .into_iter()
            .collect()),
        }
    }

    pub fn persisting_marks(&self) -> Result<Vec<(GroupId, String, u64)>> {
        match self {
            Backend::Local(e) => e.persisting_marks(),
            Backend::Remote(r) => match r.call(AdapterOp::PersistingMarks)? {
                AdapterReply::Marks(m) => Ok(m),
                other => Err(unexpected(&other)),
            },
        }
    }

    pub fn mark_pending_deletion(&self, groups: &BTreeSet<GroupId>, now_ms: u64) -> Result<()> {
        match self {
            Backend::Local(e) => e.mark_pending_deletion(groups, now_ms),
            Backend::Remote(r) => done(r.call(AdapterOp::MarkPendingDeletion {
                groups: list(groups),
                now_ms,
            })?),
        }
    }

    pub fn mark_used(&self, groups: &BTreeSet<GroupId>) -> Result<()> {
        match self {
            Backend::Local(e) => e.mark_used(groups),
            Backend::Remote(r) => done(r.call(AdapterOp::MarkUsed(list(groups)))?),
        }
    }

    pub fn pending_deletions(&self, groups: &BTreeSet<GroupId>) -> Result<BTreeMap<GroupId, u64>> {
        match self {
            Backend::Local(e) => e.pending_deletions(groups),
            Backend::Remote(r) => match r.call(AdapterOp::PendingDeletions(list(groups)))? {
                AdapterReply::Sequences(v) => Ok(v.into_iter().collect()),
                other => Err(unexpected(&other)),
            },
        }
    }

    pub fn next_deletion_candidates(
        &self,
        now_ms: u64,
        delay_ms: u64,
    ) -> Result<Option<(RoomId, BTreeMap<GroupId, u64>)>> {
        match self {
            Backend::Local(e) => e.next_deletion_candidates(now_ms, delay_ms),
            Backend::Remote(r) => match r.call(AdapterOp::NextDeletionCandidates { now_ms, delay_ms })? {
                AdapterReply::Candidates(None) => Ok(None),
                AdapterReply::Candidates(Some((room, m))) => Ok(Some((RoomId::parse(room)?, m.into_iter().collect()))),
                other => Err(unexpected(&other)),
            },
        }
    }

    pub fn ready_for_deletion(
        &self,
        candidates: &BTreeMap<GroupId, u64>,
        now_ms: u64,
        delay_ms: u64,
    ) -> Result<BTreeSet<GroupId>> {
        match self {
            Backend::Local(e) => e.ready_for_deletion(candidates, now_ms, delay_ms),
            Backend::Remote(r) => Ok(ids(r.call(AdapterOp::ReadyForDeletion {
                candidates: candidates.iter().map(|(g, s)| (*g, *s)).collect(),
                now_ms,
                delay_ms,
            })?)?
            .into_iter()
            .collect()),
        }
    }

    pub fn purge_if_ready(
        &self,
        room: &RoomId,
        candidates: &BTreeMap<GroupId, u64>,
        now_ms: u64,
        delay_ms: u64,
    ) -> Result<Vec<GroupId>> {
        match self {
            Backend::Local(e) => e.purge_if_ready(room, candidates, now_ms, delay_ms),
            Backend::Remote(r) => ids(r.call(AdapterOp::PurgeIfReady {
                room: room.as_str().to_owned(),
                candidates: candidates.iter().map(|(g, s)| (*g, *s)).collect(),
                now_ms,
                delay_ms,
            })?),
        }
    }
}

/// Text ids as event ids (for the remote store, which is sent ids).
fn parse_all<I: AsRef<str>>(events: &[I]) -> Result<Vec<EventId>> {
    events.iter().map(EventId::parse).collect()
}
