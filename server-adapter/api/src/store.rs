//! The `StateStore` trait: Synapse's state-group storage calls, async.

use std::collections::{BTreeMap, BTreeSet};

use crate::auth::{AuthDifference, AuthEvents, ConflictedSubgraph};
use crate::error::{Error, Result};
use crate::filter::StateFilter;
use crate::ids::{EventId, GroupId, RoomId};
use crate::state::{GroupDelta, StateDelta, StateMap};
use crate::view::StateView;
use async_trait::async_trait;

/// The state of a group to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupContent {
    /// `prev`'s state with `delta` applied (`None` values remove keys).
    Delta { prev: GroupId, delta: StateDelta },
    /// The whole state; the group has no prev.
    Full(StateMap),
}

/// One group to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupWrite {
    /// A caller-chosen id (migration keeps Synapse's ids), or `None`.
    pub id: Option<GroupId>,
    pub room_id: RoomId,
    pub event_id: EventId,
    pub content: GroupContent,
}

/// Room-state storage as a homeserver needs it, with Synapse's meaning.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Stores groups atomically, in order; returns their ids.
    async fn store_state_groups(&self, groups: Vec<GroupWrite>) -> Result<Vec<GroupId>>;

    /// Synapse's `store_state_group`: with a prev group and a delta, the new
    /// state is prev's with the delta applied; otherwise `current_state` is
    /// the whole state.
    async fn store_state_group(
        &self,
        event_id: EventId,
        room_id: RoomId,
        prev_group: Option<GroupId>,
        delta: Option<StateDelta>,
        current_state: StateMap,
    ) -> Result<GroupId> {
        let content = match (prev_group, delta) {
            (Some(prev), Some(delta)) => GroupContent::Delta { prev, delta },
            _ => GroupContent::Full(current_state),
        };
        let ids = self
            .store_state_groups(vec![GroupWrite {
                id: None,
                room_id,
                event_id,
                content,
            }])
            .await?;
        ids.into_iter()
            .next()
            .ok_or_else(|| Error::internal("store_state_groups returned no id for one group"))
    }

    /// Synapse's `get_state_for_groups`: each group's state under `filter`.
    async fn state_for_groups(&self, groups: Vec<GroupId>, filter: StateFilter) -> Result<BTreeMap<GroupId, StateMap>>;

    /// One group's state under `filter` as a [`StateView`]: shared tables,
    /// no per-entry copy (the fast form of a full state). Fails with
    /// [`Error::UnknownGroup`] as `state_for_groups` does.
    async fn state_view(&self, group: GroupId, filter: StateFilter) -> Result<StateView> {
        let mut states = self.state_for_groups(vec![group], filter).await?;
        let state = states
            .remove(&group)
            .ok_or_else(|| Error::internal("state_for_groups left out the group it was asked for"))?;
        Ok(StateView::from_map(&state))
    }

    /// The state at an event in one call: its group (as
    /// `state_groups_for_events` finds it) and that group's state under
    /// `filter`; `None` for an event with no group.
    async fn state_view_at_event(&self, event: EventId, filter: StateFilter) -> Result<Option<(GroupId, StateView)>> {
        let Some(&group) = self.state_groups_for_events(vec![event.clone()]).await?.get(&event) else {
            return Ok(None);
        };
        Ok(Some((group, self.state_view(group, filter).await?)))
    }

    /// Synapse's `get_state_group_delta`: prev group and delta as stored;
    /// `None` for a group stored with a full state.
    async fn state_group_delta(&self, group: GroupId) -> Result<Option<GroupDelta>>;

    /// Records which group holds the state at each event.
    async fn set_state_groups_for_events(&self, pairs: Vec<(EventId, GroupId)>) -> Result<()>;

    /// The groups of the given events; unknown events are left out.
    async fn state_groups_for_events(&self, events: Vec<EventId>) -> Result<BTreeMap<EventId, GroupId>>;

    /// Replaces a room's current state.
    async fn set_current_state(&self, room: RoomId, state: StateMap) -> Result<()>;

    /// A room's current state under `filter`.
    async fn current_state(&self, room: RoomId, filter: StateFilter) -> Result<StateMap>;

    /// The groups of a room, ascending.
    async fn room_groups(&self, room: RoomId) -> Result<Vec<GroupId>>;

    /// Deletes everything of a room.
    async fn purge_room(&self, room: RoomId) -> Result<()>;

    /// Deletes groups no event refers to; every other group keeps its state.
    async fn purge_unreferenced_groups(&self, room: RoomId, groups: Vec<GroupId>) -> Result<()>;

    /// Records each event's auth events (Synapse's `event_auth` rows),
    /// atomically. An event's auth events may be named before they are
    /// added themselves. Adding an event again with the same auth events
    /// (in any order) changes nothing; with others it fails with
    /// [`Error::AuthEventsDiffer`] and nothing is written. `purge_room`
    /// deletes a room's.
    async fn add_auth_events(&self, room: RoomId, events: AuthEvents) -> Result<()>;

    /// Synapse's `get_auth_chain_ids`: the events reachable from `events`
    /// by one or more auth edges, plus `events` themselves with
    /// `include_given`.
    async fn auth_chain(&self, room: RoomId, events: Vec<EventId>, include_given: bool) -> Result<BTreeSet<EventId>>;

    /// Synapse's `get_auth_chain_difference_extended`: the auth chain
    /// difference of `state_sets` and, when asked, state res v2.1's
    /// conflicted subgraph. Events never added have no auth events.
    async fn auth_chain_difference(
        &self,
        room: RoomId,
        state_sets: Vec<BTreeSet<EventId>>,
        conflicted: Option<ConflictedSubgraph>,
    ) -> Result<AuthDifference>;
}
