//! [`EngineStore`]: the async [`StateStore`] over an [`Engine`], with the
//! blocking engine work moved off the async threads (a view of a cached
//! state is answered on the caller's thread: it never waits for the
//! store). Any key-value backend gets the whole trait this way.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use mxstate_api::{
    AuthDifference, AuthEvents, ConflictedSubgraph, Error, EventId, GroupContent, GroupDelta, GroupId, GroupWrite,
    Result, RoomId, StateFilter, StateMap, StateStore, StateView,
};

use crate::engine::Engine;
use crate::write::{GroupState, NewGroup};

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
