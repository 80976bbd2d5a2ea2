//! The RocksDB-backed store: the engine, with blocking work moved off the
//! async threads.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use mxstate_storage::{
    Engine, EngineOptions, EventId, GroupDelta, GroupId, GroupState, NewGroup, RoomId, StateFilter, StateMap,
};

use crate::error::{AdapterError, AdapterResult};
use crate::store::{GroupContent, GroupWrite, StateStore};

/// A [`StateStore`] over an mxstate database.
#[derive(Clone)]
pub struct RocksStore {
    engine: Arc<Engine>,
}

impl RocksStore {
    /// Opens (or creates) the database in `path`.
    pub fn open(path: &Path, opts: EngineOptions) -> AdapterResult<Self> {
        Ok(RocksStore {
            engine: Arc::new(Engine::open(path, opts)?),
        })
    }
    /// Wraps an open engine.
    pub fn new(engine: Arc<Engine>) -> Self {
        RocksStore { engine }
    }
    /// The engine underneath.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> mxstate_storage::Result<T> + Send + 'static,
    ) -> AdapterResult<T> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|e| AdapterError::Task(e.to_string()))?
            .map_err(AdapterError::from)
    }
}

#[async_trait]
impl StateStore for RocksStore {
    async fn store_state_groups(&self, groups: Vec<GroupWrite>) -> AdapterResult<Vec<GroupId>> {
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

    async fn state_for_groups(
        &self,
        groups: Vec<GroupId>,
        filter: StateFilter,
    ) -> AdapterResult<BTreeMap<GroupId, StateMap>> {
        self.run(move |e| e.state_for_groups(&groups, &filter)).await
    }

    async fn state_group_delta(&self, group: GroupId) -> AdapterResult<Option<GroupDelta>> {
        self.run(move |e| e.state_group_delta(group)).await
    }

    async fn set_state_groups_for_events(&self, pairs: Vec<(EventId, GroupId)>) -> AdapterResult<()> {
        self.run(move |e| e.set_event_groups(&pairs)).await
    }

    async fn state_groups_for_events(&self, events: Vec<EventId>) -> AdapterResult<BTreeMap<EventId, GroupId>> {
        self.run(move |e| e.event_groups(&events)).await
    }

    async fn set_current_state(&self, room: RoomId, state: StateMap) -> AdapterResult<()> {
        self.run(move |e| e.set_current_state(&room, &state)).await
    }

    async fn current_state(&self, room: RoomId, filter: StateFilter) -> AdapterResult<StateMap> {
        self.run(move |e| e.current_state(&room, &filter)).await
    }

    async fn room_groups(&self, room: RoomId) -> AdapterResult<Vec<GroupId>> {
        self.run(move |e| e.room_groups(&room)).await
    }

    async fn purge_room(&self, room: RoomId) -> AdapterResult<()> {
        self.run(move |e| e.purge_room(&room)).await
    }

    async fn purge_unreferenced_groups(&self, room: RoomId, groups: Vec<GroupId>) -> AdapterResult<()> {
        self.run(move |e| e.purge_groups(&room, &groups)).await
    }
}
