//! The Synapse integration's requests ([`AdapterOp`]) run against the
//! engine: each is the `Engine` method of the same name, as the in-process
//! extension calls it, with the same lenient answers for missing groups
//! and rooms.

use std::collections::{BTreeMap, BTreeSet};

use mxstate_api::{Error, EventId, GroupId, Result, RoomId, StateDelta, StateKey, StateMap};
use mxstate_engine::{AuthMark, Engine, GroupState, NewGroup};
use mxstate_remote::adapter::{AdapterOp, AdapterReply, WBase, WNewGroup};
use mxstate_remote::wire;

/// What a group to store becomes once validated.
enum Content {
    Full(StateMap),
    Delta(Option<GroupId>, StateDelta),
}

struct Parsed {
    room: RoomId,
    event: EventId,
    content: Content,
}

fn parse(g: WNewGroup) -> Result<Parsed> {
    let content = match g.base {
        WBase::Full => {
            let mut state = StateMap::default();
            for (t, k, e) in g.entries {
                let e = e.ok_or_else(|| Error::InvalidRequest("a full state with a removed key".into()))?;
                state.insert(StateKey::new(t, k)?, EventId::parse(e)?);
            }
            Content::Full(state)
        }
        WBase::Prev(p) => Content::Delta(Some(p), wire::delta_in(g.entries)?),
        WBase::Previous => Content::Delta(None, wire::delta_in(g.entries)?),
    };
    Ok(Parsed {
        room: RoomId::parse(g.room)?,
        event: EventId::parse(g.event)?,
        content,
    })
}

fn set(groups: Vec<GroupId>) -> BTreeSet<GroupId> {
    groups.into_iter().collect()
}

fn map(pairs: Vec<(GroupId, u64)>) -> BTreeMap<GroupId, u64> {
    pairs.into_iter().collect()
}

fn lenient<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Error::UnknownGroup(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Runs `op` on `engine` (blocking: the caller decides where).
pub fn run(engine: &Engine, op: AdapterOp) -> Result<AdapterReply> {
    Ok(match op {
        AdapterOp::StoreGroupsAt { groups, now_ms } => {
            let parsed = groups.into_iter().map(parse).collect::<Result<Vec<_>>>()?;
            let new: Vec<NewGroup<'_>> = parsed
                .iter()
                .map(|p| NewGroup {
                    id: None,
                    room_id: &p.room,
                    event_id: &p.event,
                    state: match &p.content {
                        Content::Full(s) => GroupState::Full(s),
                        Content::Delta(Some(prev), delta) => GroupState::Delta { prev: *prev, delta },
                        Content::Delta(None, delta) => GroupState::DeltaOnPrevious { delta },
                    },
                })
                .collect();
            AdapterReply::Ids(engine.store_groups_at(&new, now_ms)?)
        }
        AdapterOp::StatesOrMissing { groups, filter } => {
            let filter = wire::filter_in(filter)?;
            let mut out = Vec::with_capacity(groups.len());
            for g in groups {
                let state = lenient(engine.state_view(g, &filter))?.map(|v| {
                    v.iter()
                        .map(|(t, k, e)| (t.to_owned(), k.to_owned(), e.to_owned()))
                        .collect()
                });
                out.push((g, state));
            }
            AdapterReply::MaybeStates(out)
        }
        AdapterOp::PreviousGroups(g) => AdapterReply::Pairs(engine.previous_groups(&set(g))?.into_iter().collect()),
        AdapterOp::NextGroups(g) => AdapterReply::Pairs(engine.next_groups(&set(g))?.into_iter().collect()),
        AdapterOp::GroupRoom(g) => AdapterReply::Name(lenient(engine.group_room(g))?.map(|r| r.as_str().to_owned())),
        AdapterOp::GroupEvent(g) => AdapterReply::Name(lenient(engine.group_event(g))?.map(|e| e.as_str().to_owned())),
        AdapterOp::ExistingGroups(groups) => {
            let mut out = Vec::new();
            for g in groups {
                if engine.has_group(g)? {
                    out.push(g);
                }
            }
            AdapterReply::Ids(out)
        }
        AdapterOp::GroupsBelow { before, limit } => {
            let limit = usize::try_from(limit).map_err(|_| Error::InvalidRequest("limit too large".into()))?;
            AdapterReply::Ids(engine.groups_below(before, limit)?)
        }
        AdapterOp::MaxGroup => AdapterReply::MaybeId(engine.max_group()?),
        AdapterOp::CheckAndBumpDeletion { groups, now_ms } => {
            AdapterReply::Ids(engine.check_and_bump_deletion(&set(groups), now_ms)?)
        }
        AdapterOp::MarkPersisting {
            groups,
            instance,
            now_ms,
        } => AdapterReply::Ids(engine.mark_persisting(&set(groups), &instance, now_ms)?),
        AdapterOp::FinishPersisting {
            groups,
            instance,
            error,
            now_ms,
        } => {
            engine.finish_persisting(&set(groups), &instance, error, now_ms)?;
            AdapterReply::Done
        }
        AdapterOp::ClearPersisting {
            instance,
            older_than_ms,
        } => AdapterReply::Ids(engine.clear_persisting(&instance, older_than_ms)?.into_iter().collect()),
        AdapterOp::PersistingMarks => AdapterReply::Marks(engine.persisting_marks()?),
        AdapterOp::MarkPendingDeletion { groups, now_ms } => {
            engine.mark_pending_deletion(&set(groups), now_ms)?;
            AdapterReply::Done
        }
        AdapterOp::MarkUsed(groups) => {
            engine.mark_used(&set(groups))?;
            AdapterReply::Done
        }
        AdapterOp::PendingDeletions(groups) => {
            AdapterReply::Sequences(engine.pending_deletions(&set(groups))?.into_iter().collect())
        }
        AdapterOp::NextDeletionCandidates { now_ms, delay_ms } => AdapterReply::Candidates(
            engine
                .next_deletion_candidates(now_ms, delay_ms)?
                .map(|(r, m)| (r.as_str().to_owned(), m.into_iter().collect())),
        ),
        AdapterOp::ReadyForDeletion {
            candidates,
            now_ms,
            delay_ms,
        } => AdapterReply::Ids(
            engine
                .ready_for_deletion(&map(candidates), now_ms, delay_ms)?
                .into_iter()
                .collect(),
        ),
        AdapterOp::PurgeIfReady {
            room,
            candidates,
            now_ms,
            delay_ms,
        } => {
            let room = RoomId::parse(room)?;
            AdapterReply::Ids(match engine.purge_if_ready(&room, &map(candidates), now_ms, delay_ms) {
                Err(Error::UnknownRoom(_)) => Vec::new(),
                other => other?,
            })
        }
        AdapterOp::AddAuthMarked { rooms, mark } => {
            let rooms = rooms
                .into_iter()
                .map(|(room, events)| Ok((RoomId::parse(room)?, wire::auth_events_in(events)?)))
                .collect::<Result<Vec<_>>>()?;
            engine.add_auth_events_marked(&rooms, mark.map(|(min, max)| AuthMark { min, max }))?;
            AdapterReply::Done
        }
        AdapterOp::AuthMark => AdapterReply::Mark(engine.auth_mark()?.map(|m| (m.min, m.max))),
    })
}
