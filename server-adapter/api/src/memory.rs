//! The in-memory reference store: Synapse's meaning, written as plainly as
//! possible. Every group keeps its prev and its delta; a state is the walk
//! to the root where the nearest group wins. Slow, and obviously right.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::auth::{AuthDifference, AuthEvents, ConflictedSubgraph};
use crate::error::{Error, Result};
use crate::filter::StateFilter;
use crate::ids::{EventId, GroupId, RoomId};
use crate::state::{GroupDelta, StateDelta, StateKey, StateMap};
use crate::store::{GroupContent, GroupWrite, StateStore};
use async_trait::async_trait;

#[derive(Clone)]
struct Group {
    room: RoomId,
    prev: Option<GroupId>,
    delta: StateDelta,
}

#[derive(Clone, Default)]
struct Model {
    groups: BTreeMap<GroupId, Group>,
    next: GroupId,
    events: BTreeMap<EventId, GroupId>,
    current: BTreeMap<RoomId, StateMap>,
    rooms: BTreeSet<RoomId>,
    /// Each room's events and their auth events, as added.
    auth: BTreeMap<RoomId, BTreeMap<EventId, Vec<EventId>>>,
}

impl Model {
    fn group(&self, g: GroupId) -> Result<&Group, Error> {
        self.groups.get(&g).ok_or(Error::UnknownGroup(g))
    }

    fn state(&self, g: GroupId) -> Result<StateMap, Error> {
        let mut walk = Vec::new();
        let mut cur = Some(g);
        while let Some(id) = cur {
            let grp = self.group(id)?;
            walk.push(grp);
            cur = grp.prev;
        }
        let mut merged: BTreeMap<StateKey, Option<EventId>> = BTreeMap::new();
        for grp in walk.iter().rev() {
            for (k, v) in &grp.delta {
                merged.insert(k.clone(), v.clone());
            }
        }
        Ok(merged.into_iter().filter_map(|(k, v)| v.map(|e| (k, e))).collect())
    }

    fn store(&mut self, w: GroupWrite) -> Result<GroupId, Error> {
        let id = match w.id {
            Some(0) => return Err(Error::ReservedGroupId),
            Some(id) if self.groups.contains_key(&id) => return Err(Error::GroupIdTaken(id)),
            Some(id) => id,
            None => self.next.max(1),
        };
        let (prev, delta) = match w.content {
            GroupContent::Delta { prev, delta } => {
                let p = self.group(prev)?;
                if p.room != w.room_id {
                    return Err(Error::PrevGroupInOtherRoom {
                        group: id,
                        prev,
                        room: w.room_id.to_string(),
                        prev_room: p.room.to_string(),
                    });
                }
                (Some(prev), delta)
            }
            GroupContent::Full(s) => (None, s.into_iter().map(|(k, v)| (k, Some(v))).collect()),
        };
        self.rooms.insert(w.room_id.clone());
        self.groups.insert(
            id,
            Group {
                room: w.room_id,
                prev,
                delta,
            },
        );
        self.next = self.next.max(id + 1);
        Ok(id)
    }

    fn purge_group(&mut self, room: &RoomId, g: GroupId) -> Result<(), Error> {
        let grp = self.group(g)?.clone();
        if &grp.room != room {
            return Err(Error::GroupNotInRoom {
                group: g,
                room: room.to_string(),
            });
        }
        let children: Vec<GroupId> = self
            .groups
            .iter()
            .filter(|(_, c)| c.prev == Some(g))
            .map(|(&id, _)| id)
            .collect();
        for c in children {
            let new = match grp.prev {
                Some(p) => {
                    let mut delta = grp.delta.clone();
                    for (k, v) in &self.group(c)?.delta {
                        delta.insert(k.clone(), v.clone());
                    }
                    (Some(p), delta)
                }
                None => (None, self.state(c)?.into_iter().map(|(k, v)| (k, Some(v))).collect()),
            };
            if let Some(child) = self.groups.get_mut(&c) {
                (child.prev, child.delta) = new;
            }
        }
        self.groups.remove(&g);
        self.events.retain(|_, v| *v != g);
        Ok(())
    }
}

/// Everything reachable from `from` by zero or more auth edges.
fn reach(edges: &BTreeMap<EventId, Vec<EventId>>, from: impl IntoIterator<Item = EventId>) -> BTreeSet<EventId> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<EventId> = from.into_iter().collect();
    while let Some(e) = todo.pop() {
        if seen.insert(e.clone()) {
            todo.extend(edges.get(&e).into_iter().flatten().cloned());
        }
    }
    seen
}

/// The reference [`StateStore`].
#[derive(Default)]
pub struct MemoryStore {
    model: Mutex<Model>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on a copy of the model and keeps the copy only on success,
    /// so a failed call changes nothing.
    fn update<T>(&self, f: impl FnOnce(&mut Model) -> Result<T, Error>) -> Result<T> {
        let mut guard = self
            .model
            .lock()
            .map_err(|_| Error::internal("memory store: a caller panicked while holding the model lock"))?;
        let mut copy = guard.clone();
        let out = f(&mut copy)?;
        *guard = copy;
        Ok(out)
    }

    fn read<T>(&self, f: impl FnOnce(&Model) -> Result<T, Error>) -> Result<T> {
        let guard = self
            .model
            .lock()
            .map_err(|_| Error::internal("memory store: a caller panicked while holding the model lock"))?;
        f(&guard)
    }
}

fn filtered(state: StateMap, filter: &StateFilter) -> StateMap {
    state
        .into_iter()
        .filter(|(k, _)| filter.matches(k.event_type(), k.state_key()))
        .collect()
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn store_state_groups(&self, groups: Vec<GroupWrite>) -> Result<Vec<GroupId>> {
        self.update(|m| groups.into_iter().map(|w| m.store(w)).collect())
    }

    async fn state_for_groups(&self, groups: Vec<GroupId>, filter: StateFilter) -> Result<BTreeMap<GroupId, StateMap>> {
        self.read(|m| {
            groups
                .iter()
                .map(|&g| Ok((g, filtered(m.state(g)?, &filter))))
                .collect()
        })
    }

    async fn state_group_delta(&self, group: GroupId) -> Result<Option<GroupDelta>> {
        self.read(|m| {
            let g = m.group(group)?;
            Ok(g.prev.map(|prev_group| GroupDelta {
                prev_group,
                delta: g.delta.clone(),
            }))
        })
    }

    async fn set_state_groups_for_events(&self, pairs: Vec<(EventId, GroupId)>) -> Result<()> {
        self.update(|m| {
            for (e, g) in pairs {
                m.group(g)?;
                m.events.insert(e, g);
            }
            Ok(())
        })
    }

    async fn state_groups_for_events(&self, events: Vec<EventId>) -> Result<BTreeMap<EventId, GroupId>> {
        self.read(|m| {
            Ok(events
                .into_iter()
                .filter_map(|e| m.events.get(&e).map(|&g| (e, g)))
                .collect())
        })
    }

    async fn set_current_state(&self, room: RoomId, state: StateMap) -> Result<()> {
        self.update(|m| {
            m.rooms.insert(room.clone());
            m.current.insert(room, state);
            Ok(())
        })
    }

    async fn current_state(&self, room: RoomId, filter: StateFilter) -> Result<StateMap> {
        self.read(|m| Ok(filtered(m.current.get(&room).cloned().unwrap_or_default(), &filter)))
    }

    async fn room_groups(&self, room: RoomId) -> Result<Vec<GroupId>> {
        self.read(|m| {
            Ok(m.groups
                .iter()
                .filter(|(_, g)| g.room == room)
                .map(|(&id, _)| id)
                .collect())
        })
    }

    async fn purge_room(&self, room: RoomId) -> Result<()> {
        self.update(|m| {
            if !m.rooms.contains(&room) {
                return Err(Error::UnknownRoom(room.to_string()));
            }
            let gone: BTreeSet<GroupId> = m
                .groups
                .iter()
                .filter(|(_, g)| g.room == room)
                .map(|(&id, _)| id)
                .collect();
            m.groups.retain(|id, _| !gone.contains(id));
            m.events.retain(|_, g| !gone.contains(g));
            m.current.remove(&room);
            m.auth.remove(&room);
            Ok(())
        })
    }

    async fn purge_unreferenced_groups(&self, room: RoomId, groups: Vec<GroupId>) -> Result<()> {
        self.update(|m| {
            if !m.rooms.contains(&room) {
                return Err(Error::UnknownRoom(room.to_string()));
            }
            for g in groups {
                m.purge_group(&room, g)?;
            }
            Ok(())
        })
    }

    async fn add_auth_events(&self, room: RoomId, events: AuthEvents) -> Result<()> {
        self.update(|m| {
            m.rooms.insert(room.clone());
            let edges = m.auth.entry(room).or_default();
            for (e, auth) in events {
                match edges.get(&e) {
                    Some(old) if old.iter().collect::<BTreeSet<_>>() == auth.iter().collect() => {}
                    Some(_) => return Err(Error::AuthEventsDiffer(e.to_string())),
                    None => {
                        edges.insert(e, auth);
                    }
                }
            }
            Ok(())
        })
    }

    async fn auth_chain(&self, room: RoomId, events: Vec<EventId>, include_given: bool) -> Result<BTreeSet<EventId>> {
        self.read(|m| {
            let empty = BTreeMap::new();
            let edges = m.auth.get(&room).unwrap_or(&empty);
            let first: Vec<EventId> = events
                .iter()
                .flat_map(|e| edges.get(e).into_iter().flatten().cloned())
                .collect();
            let mut out = reach(edges, first);
            if include_given {
                out.extend(events);
            }
            Ok(out)
        })
    }

    async fn auth_chain_difference(
        &self,
        room: RoomId,
        state_sets: Vec<BTreeSet<EventId>>,
        conflicted: Option<ConflictedSubgraph>,
    ) -> Result<AuthDifference> {
        self.read(|m| {
            let empty = BTreeMap::new();
            let edges = m.auth.get(&room).unwrap_or(&empty);
            let chains: Vec<BTreeSet<EventId>> = state_sets.iter().map(|s| reach(edges, s.iter().cloned())).collect();
            let union: BTreeSet<EventId> = chains.iter().flatten().cloned().collect();
            let auth_difference = union
                .into_iter()
                .filter(|e| !chains.iter().all(|c| c.contains(e)))
                .collect();
            let conflicted_subgraph = conflicted.map(|c| {
                let back = reach(
                    edges,
                    c.conflicted.iter().chain(&c.additional_backwards_reachable).cloned(),
                );
                back.into_iter()
                    .filter(|e| !reach(edges, [e.clone()]).is_disjoint(&c.conflicted))
                    .collect()
            });
            Ok(AuthDifference {
                auth_difference,
                conflicted_subgraph,
            })
        })
    }
}
