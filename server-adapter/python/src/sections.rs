//! Python objects for snapshot sections, made once and reused.
//!
//! A full state is mostly whole snapshot sections, and a section never
//! changes once written: the `(type, state_key)` tuples and the event-id
//! strings of a section are built once, kept here (bounded), and every
//! later dict of a state that contains the section inserts the same
//! objects. A 10,000-entry state then costs the dict inserts, not 40,000
//! new Python objects.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use mxstate_engine::{StateTable, TableId};
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

/// One section as Python objects, by entry index.
pub struct PySection {
    pub keys: Vec<Py<PyTuple>>,
    pub events: Vec<Py<PyString>>,
}

/// Sections by id, the oldest dropped first beyond a number of entries;
/// and the objects of entries outside sections, by interned id.
pub struct SectionCache {
    map: HashMap<(u64, u32), Arc<PySection>>,
    order: VecDeque<(u64, u32)>,
    entries: usize,
    limit: usize,
    keys_by_id: HashMap<u64, Py<PyTuple>>,
    events_by_id: HashMap<u64, Py<PyString>>,
}

impl SectionCache {
    /// A cache of at most `limit` entries in all.
    pub fn new(limit: usize) -> Self {
        SectionCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            entries: 0,
            limit,
            keys_by_id: HashMap::new(),
            events_by_id: HashMap::new(),
        }
    }

    /// The `(type, state_key)` tuple of interned key `id`.
    pub fn key(&mut self, py: Python<'_>, id: u64, t: &str, k: &str) -> PyResult<Py<PyTuple>> {
        if let Some(o) = self.keys_by_id.get(&id) {
            return Ok(o.clone_ref(py));
        }
        if self.keys_by_id.len() >= self.limit / 4 {
            self.keys_by_id.clear();
        }
        let o = PyTuple::new(py, [PyString::new(py, t), PyString::new(py, k)])?.unbind();
        self.keys_by_id.insert(id, o.clone_ref(py));
        Ok(o)
    }

    /// The event-id string of interned event `id`.
    pub fn event(&mut self, py: Python<'_>, id: u64, e: &str) -> Py<PyString> {
        if let Some(o) = self.events_by_id.get(&id) {
            return o.clone_ref(py);
        }
        if self.events_by_id.len() >= self.limit / 4 {
            self.events_by_id.clear();
        }
        let o = PyString::new(py, e).unbind();
        self.events_by_id.insert(id, o.clone_ref(py));
        o
    }

    /// The Python objects of section table `table` (identity `id`), made
    /// now if not kept.
    pub fn get(&mut self, py: Python<'_>, id: TableId, table: &StateTable) -> PyResult<Arc<PySection>> {
        if let Some(s) = self.map.get(&id) {
            return Ok(s.clone());
        }
        let ty = PyString::new(py, table.single_type().unwrap_or_default());
        let mut keys = Vec::with_capacity(table.len());
        let mut events = Vec::with_capacity(table.len());
        for (_, k, e) in (0..table.len()).filter_map(|i| table.entry(i)) {
            keys.push(PyTuple::new(py, [ty.clone(), PyString::new(py, k)])?.unbind());
            events.push(PyString::new(py, e).unbind());
        }
        let s = Arc::new(PySection { keys, events });
        if table.len() <= self.limit {
            self.entries += table.len();
            self.map.insert(id, s.clone());
            self.order.push_back(id);
            while self.entries > self.limit {
                let Some(old) = self.order.pop_front() else { break };
                if let Some(gone) = self.map.remove(&old) {
                    self.entries -= gone.keys.len();
                }
            }
        }
        Ok(s)
    }
}
