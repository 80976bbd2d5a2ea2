//! Auth chain types: what state resolution asks besides the state itself.

use std::collections::BTreeSet;

use crate::ids::EventId;

/// Events with their auth events, in order (one room's `event_auth` rows,
/// grouped by event).
pub type AuthEvents = Vec<(EventId, Vec<EventId>)>;

/// State res v2.1's extra question: the conflicted subgraph of these
/// conflicted events (Synapse's `conflicted_set` and
/// `additional_backwards_reachable_conflicted_events`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConflictedSubgraph {
    pub conflicted: BTreeSet<EventId>,
    pub additional_backwards_reachable: BTreeSet<EventId>,
}

/// The answer to [`StateStore::auth_chain_difference`](crate::StateStore::auth_chain_difference)
/// (Synapse's `StateDifference`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthDifference {
    /// The events in the full auth chain of some state sets but not all
    /// (a set's full auth chain includes the set's own events).
    pub auth_difference: BTreeSet<EventId>,
    /// With a [`ConflictedSubgraph`] asked for: the events reachable by
    /// auth edges from a conflicted or additional event (or one of them)
    /// that also reach a conflicted event (or are one).
    pub conflicted_subgraph: Option<BTreeSet<EventId>>,
}
