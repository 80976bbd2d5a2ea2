//! The requests of the Synapse integration that are not `StateStore`
//! calls: lenient reads (a missing group is an answer, not an error), the
//! lookups Synapse's stores make (prev and next groups, a group's room and
//! event, the id range) and the deletion protocol's bookkeeping (pending
//! deletions, persist marks, the "still deletable, re-base, delete" step).
//!
//! Each maps one-to-one onto an `Engine` method of the same name; the
//! service runs it against its engine exactly as the in-process extension
//! would, so a worker deployment and a single process behave the same.
//! Clients call them through [`RemoteStore::adapter`](crate::RemoteStore::adapter).

use serde::{Deserialize, Serialize};

use mxstate_api::GroupId;

use crate::wire::{WAuthEvents, WDelta, WFilter, WState};

/// Where a group to store gets its state from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum WBase {
    /// `entries` is the whole state (every entry `Some`).
    Full,
    /// `entries` is a delta on this group.
    Prev(GroupId),
    /// `entries` is a delta on the group stored just before in the same request.
    Previous,
}

/// A group to store (ids are always allocated by the service).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WNewGroup {
    pub room: String,
    pub event: String,
    pub base: WBase,
    pub entries: WDelta,
}

/// One request of the Synapse integration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum AdapterOp {
    /// Stores groups in one transaction; with `now_ms`, pending deletions
    /// of the prev groups are bumped in it (`Engine::store_groups_at`).
    StoreGroupsAt {
        groups: Vec<WNewGroup>,
        now_ms: Option<u64>,
    },
    /// Filtered states; a group that does not exist answers `None`.
    StatesOrMissing {
        groups: Vec<GroupId>,
        filter: WFilter,
    },
    PreviousGroups(Vec<GroupId>),
    NextGroups(Vec<GroupId>),
    /// A group's room, `None` if it does not exist.
    GroupRoom(GroupId),
    /// The event a group was stored for, `None` if it does not exist.
    GroupEvent(GroupId),
    ExistingGroups(Vec<GroupId>),
    GroupsBelow {
        before: GroupId,
        limit: u32,
    },
    MaxGroup,
    CheckAndBumpDeletion {
        groups: Vec<GroupId>,
        now_ms: u64,
    },
    MarkPersisting {
        groups: Vec<GroupId>,
        instance: String,
        now_ms: u64,
    },
    FinishPersisting {
        groups: Vec<GroupId>,
        instance: String,
        error: bool,
        now_ms: u64,
    },
    ClearPersisting {
        instance: String,
        older_than_ms: u64,
    },
    PersistingMarks,
    MarkPendingDeletion {
        groups: Vec<GroupId>,
        now_ms: u64,
    },
    MarkUsed(Vec<GroupId>),
    PendingDeletions(Vec<GroupId>),
    NextDeletionCandidates {
        now_ms: u64,
        delay_ms: u64,
    },
    ReadyForDeletion {
        candidates: Vec<(GroupId, u64)>,
        now_ms: u64,
        delay_ms: u64,
    },
    PurgeIfReady {
        room: String,
        candidates: Vec<(GroupId, u64)>,
        now_ms: u64,
        delay_ms: u64,
    },
    /// Auth events of several rooms, and the homeserver's mark widened to
    /// `(min, max)`, in one transaction (`Engine::add_auth_events_marked`).
    AddAuthMarked {
        rooms: Vec<(String, WAuthEvents)>,
        mark: Option<(i64, i64)>,
    },
    /// The homeserver's auth mark (`Engine::auth_mark`).
    AuthMark,
}

impl AdapterOp {
    /// Whether the request may write (the service runs those where an
    /// fsync may be waited for).
    pub fn writes(&self) -> bool {
        matches!(
            self,
            AdapterOp::StoreGroupsAt { .. }
                | AdapterOp::CheckAndBumpDeletion { .. }
                | AdapterOp::MarkPersisting { .. }
                | AdapterOp::FinishPersisting { .. }
                | AdapterOp::ClearPersisting { .. }
                | AdapterOp::MarkPendingDeletion { .. }
                | AdapterOp::MarkUsed(_)
                | AdapterOp::ReadyForDeletion { .. }
                | AdapterOp::PurgeIfReady { .. }
                | AdapterOp::AddAuthMarked { .. }
        )
    }
}

/// One answer to an [`AdapterOp`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum AdapterReply {
    Ids(Vec<GroupId>),
    MaybeStates(Vec<(GroupId, Option<WState>)>),
    /// `(group, other group)` pairs: `(group, prev)` or `(child, prev)`.
    Pairs(Vec<(GroupId, GroupId)>),
    Name(Option<String>),
    MaybeId(Option<GroupId>),
    Sequences(Vec<(GroupId, u64)>),
    Marks(Vec<(GroupId, String, u64)>),
    Candidates(Option<(String, Vec<(GroupId, u64)>)>),
    Done,
    /// The auth mark, `(min, max)`.
    Mark(Option<(i64, i64)>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_told_apart() {
        assert!(AdapterOp::MarkUsed(vec![1]).writes());
        assert!(!AdapterOp::MaxGroup.writes());
        assert!(!AdapterOp::PendingDeletions(vec![1]).writes());
    }
}
