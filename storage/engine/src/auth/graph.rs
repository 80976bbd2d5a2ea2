//! [`AuthGraph`]: one room's auth edges with dense local ids.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::format::keys::EventNid;

/// The span of an event that was not added (only named).
const NOT_ADDED: (u32, u32) = (0, u32::MAX);

/// One room's auth graph. Every event named (added, or only named as an
/// auth event) has a local id, in the order first seen; an event that was
/// added has its auth events' local ids. The graph also keeps each event's
/// id, so that questions are asked and answered without the string caches
/// (looking up 70,000 event ids there was most of a question's time).
#[derive(Default)]
pub struct AuthGraph {
    local: FxHashMap<EventNid, u32>,
    nids: Vec<EventNid>,
    /// Per local id, where its auth events are in `edges`: `(start, len)`;
    /// [`NOT_ADDED`] for an event only named as an auth event. One array
    /// for all edges (rather than a box per event): walks read it in
    /// order, not through a pointer per event.
    spans: Vec<(u32, u32)>,
    edges: Vec<u32>,
    names: Vec<Option<Arc<str>>>,
    by_name: FxHashMap<Arc<str>, u32>,
    name_bytes: usize,
}

impl AuthGraph {
    /// The local id of `event`, if the graph names it.
    pub fn get(&self, event: EventNid) -> Option<u32> {
        self.local.get(&event).copied()
    }

    /// The local id of the event with this id, if the graph names it.
    pub fn by_name(&self, event: &str) -> Option<u32> {
        self.by_name.get(event).copied()
    }

    /// The event id of a local id (every node has one once the graph is
    /// complete: see [`AuthGraph::unnamed`]).
    pub fn name(&self, local: u32) -> Option<&Arc<str>> {
        self.names.get(local as usize).and_then(Option::as_ref)
    }

    /// Number of events named (local ids are `0..event_count()`).
    pub fn event_count(&self) -> usize {
        self.nids.len()
    }

    /// The event nid of a local id.
    pub fn nid(&self, local: u32) -> EventNid {
        // Local ids are only made by `node`, as indexes into `nids`.
        self.nids.get(local as usize).copied().unwrap_or_default()
    }

    /// The auth events of a local id (empty when it was not added).
    pub fn auth(&self, local: u32) -> &[u32] {
        self.span(local).unwrap_or_default()
    }

    /// The auth events of a local id, `None` when it was not added.
    fn span(&self, local: u32) -> Option<&[u32]> {
        let &(start, len) = self.spans.get(local as usize)?;
        if len == NOT_ADDED.1 {
            return None;
        }
        self.edges.get(start as usize..start as usize + len as usize)
    }

    /// The auth events `event` was added with (`None`: not added).
    pub fn auth_of(&self, event: EventNid) -> Option<Vec<EventNid>> {
        let a = self.span(self.get(event)?)?;
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
        self.spans.push(NOT_ADDED);
        self.names.push(None);
        l
    }

    /// Records that `event` has the auth events `auth`. Adding an event
    /// again changes nothing (its auth events are part of the signed
    /// event; the caller checks they are the same).
    pub fn add(&mut self, event: EventNid, auth: &[EventNid]) {
        let l = self.node(event);
        if self.span(l).is_some() {
            return;
        }
        let targets: Vec<u32> = auth.iter().map(|&a| self.node(a)).collect();
        // A room's edges stay far below 2^32, as its events do.
        let span = (self.edges.len() as u32, targets.len() as u32);
        self.edges.extend(targets);
        if let Some(slot) = self.spans.get_mut(l as usize) {
            *slot = span;
        }
    }

    /// Gives `event` its id (once).
    pub fn set_name(&mut self, event: EventNid, name: &Arc<str>) {
        let l = self.node(event);
        if let Some(slot @ None) = self.names.get_mut(l as usize) {
            *slot = Some(name.clone());
            self.by_name.insert(name.clone(), l);
            self.name_bytes += name.len();
        }
    }

    /// The events without an id yet (after loading records by nid).
    pub fn unnamed(&self) -> Vec<EventNid> {
        self.names
            .iter()
            .zip(&self.nids)
            .filter(|(n, _)| n.is_none())
            .map(|(_, &e)| e)
            .collect()
    }

    /// Approximate heap bytes held, for the cache's budget: per event its
    /// nid (twice, with the map's), its span, its id (shared with the name
    /// map) and the id's text; 4 bytes per edge.
    pub fn heap_bytes(&self) -> usize {
        self.nids.len() * (8 + 16 + 8 + 16 + 16 + 8 + 16) + self.edges.capacity() * 4 + self.name_bytes
    }
}
