//! String-level state types the engine takes and returns.

use ahash::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ids::EventId;

/// A `(type, state_key)` pair. The type is never empty; the state key may be.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct StateKey {
    event_type: Arc<str>,
    state_key: Arc<str>,
}

impl StateKey {
    /// Builds a key, refusing an empty event type.
    pub fn new(event_type: impl AsRef<str>, state_key: impl AsRef<str>) -> Result<Self> {
        let (t, k) = (event_type.as_ref(), state_key.as_ref());
        if t.is_empty() {
            return Err(Error::EmptyEventType(k.to_owned()));
        }
        Ok(StateKey {
            event_type: Arc::from(t),
            state_key: Arc::from(k),
        })
    }
    /// Builds a key from shared strings that were validated before (a store
    /// reading back what it checked on the way in): no check, no copy.
    pub fn from_validated(event_type: Arc<str>, state_key: Arc<str>) -> Self {
        StateKey { event_type, state_key }
    }
    /// The event type.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }
    /// The state key.
    pub fn state_key(&self) -> &str {
        &self.state_key
    }
}

/// The state of a group: `(type, state_key) -> event_id`, unordered like
/// Synapse's dict. Sort it where order reaches output.
///
/// State keys come from other servers, so the map uses a keyed hash with
/// random keys, never an unkeyed one an attacker could flood with
/// collisions: aHash's `RandomState` (random keys per map, drawn from the
/// operating system's random source once per process), several times
/// faster than the standard library's SipHash on the short keys of a
/// state, where building the map of a large state was mostly hashing.
pub type StateMap = HashMap<StateKey, EventId, RandomState>;

/// A change to a state: `Some(event)` sets a key, `None` removes it.
pub type StateDelta = BTreeMap<StateKey, Option<EventId>>;

/// What `state_group_delta` returns: the prev group and the delta as stored.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GroupDelta {
    pub prev_group: u64,
    pub delta: StateDelta,
}

/// Returns the entries of `state` sorted by type then state key.
pub fn sorted_entries(state: &StateMap) -> Vec<(&StateKey, &EventId)> {
    let mut v: Vec<_> = state.iter().collect();
    v.sort_unstable_by(|a, b| a.0.cmp(b.0));
    v
}
