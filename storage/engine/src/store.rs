//! [`EngineStore`]: the async [`StateStore`] over an [`Engine`], with the
//! blocking engine work moved off the async threads. A view of a cached
//! state, and the map of a few named keys of cached groups, are answered
//! on the caller's thread: they never wait for the store. Any key-value
//! backend gets the whole trait this way.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use mxstate_api::{
    AuthDifference, AuthEvents, ConflictedSubgraph, Error, EventId, GroupContent, GroupDelta, GroupId, GroupWrite,
    Result, RoomId, StateFilter, StateMap, StateStore, StateView,
};

use crate::engine::Engine;
use crate::write::{GroupState, NewGroup};

/// The most entries a map answer may have to be built on the caller's
/// thread (a hash insert each, about 50 ns): larger maps take the pool.
const INLINE_MAP_ENTRIES: usize = 256;

/// How many entries a state under `filter` can have at most, when the
/// filter names its keys one by one (no whole type, nothing else).
fn point_entries(filter: &StateFilter) -> Option<usize> {
    if filter.include_others() {
        return None;
    }
    filter
        .types()
        .values()
        .try_fold(0usize, |n, keys| keys.as_ref().map(|k| n.saturating_add(k.len())))
}

/// A [`StateStore`] over an open engine.
#[derive(Clone)]
pub struct EngineStore {
    engine: Arc<Engine>,
}

impl EngineStore {
    /// Wraps an open engine.
    pub fn new(engine: Arc<Engine>) -> Self {
        EngineStore { engine }
    }
    /// The engine underneath.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce(&Engine) -> Result<T> + Send + 'static) -> Result<T> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|e| Error::internal(format!("storage task failed: {e}")))?
    }
}

#[async_trait]
impl StateStore for EngineStore {
    async fn store_state_groups(&self, groups: Vec<GroupWrite>) -> Result<Vec<GroupId>> {
        self.run(move |e| {
            let new: Vec<NewGroup<'_>> = groups
                .iter()
                .map(|g| NewGroup {
                    id: g.id,
                    room_id: &g.room_id,
                    event_id: &g.event_id,
                    state: match &g.content {
                        GroupContent::Delta { prev, delta } => GroupState::Delta { prev: *prev, delta },
                        GroupContent::Full(s) => GroupState::Full(s),
                    },
                })
                .collect();
            e.store_groups(&new)
        })
        .await
    }

    async fn state_for_groups(&self, groups: Vec<GroupId>, filter: StateFilter) -> Result<BTreeMap<GroupId, StateMap>> {
        // Named keys of a few groups: a small map, answered here when cached.
        if point_entries(&filter).is_some_and(|keys| keys.saturating_mul(groups.len()) <= INLINE_MAP_ENTRIES) {
            if let Some(states) = self.engine.without_waiting(|e| e.state_for_groups(&groups, &filter)) {
                return Ok(states);
            }
        }
        self.run(move |e| e.state_for_groups(&groups, &filter)).await
    }

    async fn state_view(&self, group: GroupId, filter: StateFilter) -> Result<StateView> {
        // A cached state is answered here: the hand-off to the blocking
        // pool costs more than the read (8-10 µs against 1-2 µs for a key).
        if let Some(view) = self.engine.state_view_cached(group, &filter) {
            return Ok(view);
        }
        self.run(move |e| e.state_view(group, &filter)).await
    }

    async fn state_view_at_event(&self, event: EventId, filter: StateFilter) -> Result<Option<(GroupId, StateView)>> {
        self.run(move |e| e.state_view_at_event(&event, &filter)).await
    }

    async fn state_group_delta(&self, group: GroupId) -> Result<Option<GroupDelta>> {
        self.run(move |e| e.state_group_delta(group)).await
    }

    async fn set_state_groups_for_events(&self, pairs: Vec<(EventId, GroupId)>) -> Result<()> {
        self.run(move |e| e.set_event_groups(&pairs)).await
    }

    async fn state_groups_for_events(&self, events: Vec<EventId>) -> Result<BTreeMap<EventId, GroupId>> {
        self.run(move |e| e.event_groups(&events)).await
    }

    async fn set_current_state(&self, room: RoomId, state: StateMap) -> Result<()> {
        self.run(move |e| e.set_current_state(&room, &state)).await
    }

    async fn current_state(&self, room: RoomId, filter: StateFilter) -> Result<StateMap> {
        self.run(move |e| e.current_state(&room, &filter)).await
    }

    async fn room_groups(&self, room: RoomId) -> Result<Vec<GroupId>> {
        self.run(move |e| e.room_groups(&room)).await
    }

    async fn purge_room(&self, room: RoomId) -> Result<()> {
        self.run(move |e| e.purge_room(&room)).await
    }

    async fn purge_unreferenced_groups(&self, room: RoomId, groups: Vec<GroupId>) -> Result<()> {
        self.run(move |e| e.purge_groups(&room, &groups)).await
    }

    async fn add_auth_events(&self, room: RoomId, events: AuthEvents) -> Result<()> {
        self.run(move |e| e.add_auth_events(&room, &events)).await
    }

    async fn auth_chain(&self, room: RoomId, events: Vec<EventId>, include_given: bool) -> Result<BTreeSet<EventId>> {
        self.run(move |e| e.auth_chain(&room, &events, include_given)).await
    }

    async fn auth_chain_difference(
        &self,
        room: RoomId,
        state_sets: Vec<BTreeSet<EventId>>,
        conflicted: Option<ConflictedSubgraph>,
    ) -> Result<AuthDifference> {
        self.run(move |e| e.auth_chain_difference(&room, &state_sets, conflicted.as_ref()))
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::kv::MemKv;
    use crate::EngineOptions;
    use mxstate_api::{StateDelta, StateKey};

    #[test]
    fn only_filters_naming_each_key_bound_the_answer() {
        assert_eq!(point_entries(&StateFilter::none()), Some(0));
        assert_eq!(point_entries(&StateFilter::all()), None);
        let mut two = StateFilter::from_types([("m.room.member", Some("@a:x.test"))]);
        two.add("m.room.name", Some(""));
        assert_eq!(point_entries(&two), Some(2));
        assert_eq!(point_entries(&two.clone().with_include_others(true)), None);
        let mut whole = two;
        whole.add("m.room.topic", None);
        assert_eq!(point_entries(&whole), None);
        assert_eq!(point_entries(&StateFilter::all_except_types(["m.room.member"])), None);
    }

    /// Through the trait, a map of named keys is the engine's answer,
    /// cold (on the blocking pool) and cached (on the caller's thread),
    /// and so is a map too large to be built on the caller's thread.
    #[tokio::test(flavor = "current_thread")]
    async fn maps_of_named_keys_answer_as_the_engine_does() {
        let engine = Arc::new(Engine::with_kv(Box::new(MemKv::new()), EngineOptions::default()).unwrap());
        let room = RoomId::parse("!r:x.test").unwrap();
        let key = |i: u32| StateKey::new("m.room.member", format!("@u{i}:x.test")).unwrap();
        let ev = |i: u32| EventId::parse(format!("$e{i}:x.test")).unwrap();
        let mut prev = None;
        let mut first = None;
        for i in 0..400u32 {
            let mut d = StateDelta::new();
            d.insert(key(i), Some(ev(i)));
            let content = match prev {
                Some(p) => GroupContent::Delta { prev: p, delta: d },
                None => GroupContent::Full(d.into_iter().filter_map(|(k, e)| Some((k, e?))).collect()),
            };
            let store = EngineStore::new(engine.clone());
            prev = store
                .store_state_groups(vec![GroupWrite {
                    id: None,
                    room_id: room.clone(),
                    event_id: ev(i),
                    content,
                }])
                .await
                .unwrap()
                .pop();
            first = first.or(prev);
        }
        let (g, first) = (prev.unwrap(), first.unwrap());
        let store = EngineStore::new(engine.clone());
        let mut few = StateFilter::from_types([("m.room.member", Some("@u3:x.test"))]);
        few.add("m.room.member", Some("@u399:x.test"));
        few.add("m.room.member", Some("@nobody:x.test"));
        let mut many = StateFilter::none();
        for i in 0..300 {
            many.add("m.room.member", Some(&format!("@u{i}:x.test")));
        }
        for f in [few, many] {
            let expected = engine.state_for_groups(&[g, first], &f).unwrap();
            for _ in 0..2 {
                assert_eq!(
                    store.state_for_groups(vec![g, first], f.clone()).await.unwrap(),
                    expected
                );
            }
        }
        let one = StateFilter::from_types([("m.room.member", Some("@u3:x.test"))]);
        let cached = engine.without_waiting(|e| e.state_for_groups(&[g], &one));
        assert_eq!(cached.map(|m| m.get(&g).map(StateMap::len)), Some(Some(1)));
    }
}
