//! [`AuthGraph`]: one room's auth edges with dense local ids.

use rustc_hash::FxHashMap;

use crate::format::keys::EventNid;

/// One room's auth graph. Every event named (added, or only named as an
/// auth event) has a local id, in the order first seen; an event that was
/// added has its auth events' local ids.
#[derive(Default)]
pub struct AuthGraph {
    local: FxHashMap<EventNid, u32>,
    nids: Vec<EventNid>,
    /// `None`: named as an auth event, not added itself.
    auth: Vec<Option<Box<[u32]>>>,
    edges: usize,
}

impl AuthGraph {
    /// The local id of `event`, if the graph names it.
    pub fn get(&self, event: EventNid) -> Option<u32> {
        self.local.get(&event).copied()
    }

    /// The event nid of a local id.
    pub fn nid(&self, local: u32) -> EventNid {
        // Local ids are only made by `node`, as indexes into `nids`.
        self.nids.get(local as usize).copied().unwrap_or_default()
    }

    /// The auth events of a local id (empty when it was not added).
    pub fn auth(&self, local: u32) -> &[u32] {
        self.auth
            .get(local as usize)
            .and_then(|a| a.as_deref())
            .unwrap_or_default()
    }

    /// The auth events `event` was added with (`None`: not added).
    pub fn auth_of(&self, event: EventNid) -> Option<Vec<EventNid>> {
        let l = self.get(event)?;
        let a = self.auth.get(l as usize)?.as_deref()?;
        Some(a.iter().map(|&x| self.nid(x)).collect())
    }

    fn node(&mut self, event: EventNid) -> u32 {
        if let Some(&l) = self.local.get(&event) {
            return l;
        }
        // A room's events stay far below 2^32 (the format's group and
        // snapshot counters are what bound a database).
        let l = self.nids.len() as u32;
        self.local.insert(event, l);
        self.nids.push(event);
        self.auth.push(None);
        l
    }

    /// Records that `event` has the auth events `auth`. Adding an event
    /// again changes nothing (its auth events are part of the signed
    /// event; the caller checks they are the same).
    pub fn add(&mut self, event: EventNid, auth: &[EventNid]) {
        let l = self.node(event);
        if self.auth.get(l as usize).is_some_and(Option::is_some) {
            return;
        }
        let targets: Box<[u32]> = auth.iter().map(|&a| self.node(a)).collect();
        self.edges += targets.len();
        if let Some(slot) = self.auth.get_mut(l as usize) {
            *slot = Some(targets);
        }
    }

    /// Approximate heap bytes held, for the cache's budget.
    pub fn heap_bytes(&self) -> usize {
        self.nids.len() * (8 + 16 + 16 + 8) + self.edges * 4
    }
}
