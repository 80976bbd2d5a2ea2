//! [`GraphCache`]: the loaded auth graphs of rooms, within a byte budget.

use std::sync::{Arc, Mutex, RwLock};

use rustc_hash::FxHashMap;

use mxstate_api::{Error, Result};

use super::graph::AuthGraph;
use crate::format::keys::RoomNid;

/// A room's graph, shared by the queries reading it and the writer
/// appending to it.
pub type SharedGraph = Arc<RwLock<AuthGraph>>;

struct Entry {
    graph: SharedGraph,
    /// Recency, for eviction.
    used: u64,
}

/// Loaded graphs by room. Over the budget, the least recently used other
/// rooms are dropped (a query holding one keeps its copy until done).
pub struct GraphCache {
    budget: usize,
    inner: Mutex<(FxHashMap<RoomNid, Entry>, u64)>,
}

fn poisoned<T>(_: T) -> Error {
    Error::internal("auth graph cache lock poisoned: a thread panicked while holding it")
}

impl GraphCache {
    /// An empty cache holding about `budget` bytes of graphs.
    pub fn new(budget: usize) -> Self {
        GraphCache {
            budget,
            inner: Mutex::new((FxHashMap::default(), 0)),
        }
    }

    /// The graph of `room`, if loaded.
    pub fn get(&self, room: RoomNid) -> Result<Option<SharedGraph>> {
        let mut g = self.inner.lock().map_err(poisoned)?;
        let (map, clock) = &mut *g;
        *clock += 1;
        Ok(map.get_mut(&room).map(|e| {
            e.used = *clock;
            e.graph.clone()
        }))
    }

    /// Keeps `graph` as `room`'s, evicting others over the budget.
    pub fn insert(&self, room: RoomNid, graph: AuthGraph) -> Result<SharedGraph> {
        let shared = Arc::new(RwLock::new(graph));
        let mut g = self.inner.lock().map_err(poisoned)?;
        let (map, clock) = &mut *g;
        *clock += 1;
        map.insert(
            room,
            Entry {
                graph: shared.clone(),
                used: *clock,
            },
        );
        let size = |e: &Entry| e.graph.read().map_or(0, |g| g.heap_bytes());
        let mut total: usize = map.values().map(size).sum();
        while total > self.budget {
            let Some((&victim, e)) = map.iter().filter(|(&r, _)| r != room).min_by_key(|(_, e)| e.used) else {
                break;
            };
            total = total.saturating_sub(size(e));
            map.remove(&victim);
        }
        Ok(shared)
    }

    /// Forgets `room`'s graph (its records changed other than by adding).
    pub fn remove(&self, room: RoomNid) -> Result<()> {
        self.inner.lock().map_err(poisoned)?.0.remove(&room);
        Ok(())
    }
}
