//! [`StateView`]: a state as shared, immutable tables of strings, the
//! answer a store can give without copying each entry.
//!
//! A store that keeps decoded tables in its caches (the engine keeps one per
//! snapshot section and one per stored delta) answers a read with a few
//! reference-counted tables and, per table, which of its entries are in the
//! state. Reading a 100k-member state then costs the bookkeeping of the
//! chain, not 100k string copies or hash inserts; [`StateView::to_map`]
//! gives the [`StateMap`] form when a caller needs lookups by key.

use std::sync::Arc;

use crate::ids::EventId;
use crate::state::{StateKey, StateMap};

/// The identity of a table that never changes for the life of the database
/// (the engine's snapshot sections: `(snapshot id, type id)`). A caller may
/// keep objects derived from such a table by this id and entry index.
pub type TableId = (u64, u32);

/// Entries shared between answers. Entry `i` is `(types[type_of[i]],
/// skeys[i], events[i])`; a table whose entries all have one type keeps
/// `type_of` empty.
#[derive(Debug, Default)]
pub struct StateTable {
    id: Option<TableId>,
    types: Vec<Arc<str>>,
    type_of: Vec<u32>,
    skeys: Vec<Arc<str>>,
    events: Vec<Arc<str>>,
    ids: Vec<(u64, u64)>,
}

impl StateTable {
    /// A table of one event type: `skeys[i]` maps to `events[i]`. `ids`,
    /// when not empty, holds a stable `(key id, event id)` pair per entry.
    ///
    /// # Panics
    /// When the lengths differ (a bug in the caller, never input).
    pub fn of_type(
        id: Option<TableId>,
        ty: Arc<str>,
        skeys: Vec<Arc<str>>,
        events: Vec<Arc<str>>,
        ids: Vec<(u64, u64)>,
    ) -> Self {
        assert_eq!(skeys.len(), events.len(), "a table's keys and events differ in length");
        assert!(
            ids.is_empty() || ids.len() == skeys.len(),
            "a table's ids differ in length"
        );
        StateTable {
            id,
            types: vec![ty],
            type_of: Vec::new(),
            skeys,
            events,
            ids,
        }
    }

    /// A table of several event types: entry `i` has type `types[type_of[i]]`.
    ///
    /// # Panics
    /// When the lengths differ or a type index is out of range (a bug in
    /// the caller, never input).
    pub fn of_types(
        types: Vec<Arc<str>>,
        type_of: Vec<u32>,
        skeys: Vec<Arc<str>>,
        events: Vec<Arc<str>>,
        ids: Vec<(u64, u64)>,
    ) -> Self {
        assert_eq!(type_of.len(), skeys.len(), "a table's types and keys differ in length");
        assert_eq!(skeys.len(), events.len(), "a table's keys and events differ in length");
        assert!(
            ids.is_empty() || ids.len() == skeys.len(),
            "a table's ids differ in length"
        );
        assert!(
            type_of.iter().all(|&t| (t as usize) < types.len()),
            "a table's type index is out of range"
        );
        StateTable {
            id: None,
            types,
            type_of,
            skeys,
            events,
            ids,
        }
    }

    /// A table holding a copy of `state`'s entries (for stores that keep no
    /// shared tables).
    pub fn from_map(state: &StateMap) -> Self {
        let mut types: Vec<Arc<str>> = Vec::new();
        let mut type_index: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
        let (mut type_of, mut skeys, mut events) = (Vec::new(), Vec::new(), Vec::new());
        for (k, e) in state {
            let t = *type_index.entry(k.event_type()).or_insert_with(|| {
                types.push(Arc::from(k.event_type()));
                (types.len() - 1) as u32
            });
            type_of.push(t);
            skeys.push(Arc::from(k.state_key()));
            events.push(Arc::from(e.as_str()));
        }
        StateTable::of_types(types, type_of, skeys, events, Vec::new())
    }

    /// The table's stable identity, if it has one.
    pub fn id(&self) -> Option<TableId> {
        self.id
    }

    /// Number of entries (not all need be in a given view).
    pub fn len(&self) -> usize {
        self.skeys.len()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.skeys.is_empty()
    }

    /// The event type of entry `i`.
    fn type_at(&self, i: usize) -> &str {
        let t = if self.type_of.is_empty() {
            0
        } else {
            self.type_of.get(i).copied().unwrap_or(0) as usize
        };
        self.types.get(t).map_or("", |t| t)
    }

    /// Entry `i`: `(type, state_key, event_id)`.
    pub fn entry(&self, i: usize) -> Option<(&str, &str, &str)> {
        Some((self.type_at(i), self.skeys.get(i)?, self.events.get(i)?))
    }

    /// The stable `(key id, event id)` of entry `i`, when the store gives them.
    pub fn ids(&self, i: usize) -> Option<(u64, u64)> {
        self.ids.get(i).copied()
    }

    /// The single event type of a one-type table.
    pub fn single_type(&self) -> Option<&str> {
        (self.type_of.is_empty())
            .then(|| self.types.first().map(|t| &**t))
            .flatten()
    }

    /// Approximate heap bytes (the strings are counted as pointers: they
    /// are shared with the store's string caches).
    pub fn weight(&self) -> u64 {
        64 + 8 * self.types.len() as u64 + 4 * self.type_of.len() as u64 + 48 * self.skeys.len() as u64
    }
}

/// Which entries of a table a view holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visible {
    /// Every entry.
    All,
    /// Every entry but these indexes (ascending; shared between views).
    Except(Arc<[u32]>),
    /// Only these indexes (ascending; shared between views).
    Only(Arc<[u32]>),
}

impl Visible {
    fn count(&self, table_len: usize) -> usize {
        match self {
            Visible::All => table_len,
            Visible::Except(x) => table_len.saturating_sub(x.len()),
            Visible::Only(x) => x.len(),
        }
    }
}

/// One table of a view and the entries of it the view holds.
#[derive(Debug, Clone)]
pub struct ViewPart {
    table: Arc<StateTable>,
    visible: Visible,
}

impl ViewPart {
    /// The shared table.
    pub fn table(&self) -> &Arc<StateTable> {
        &self.table
    }

    /// Which entries are in the view.
    pub fn visible_set(&self) -> &Visible {
        &self.visible
    }

    /// The indexes of the entries in the view, ascending.
    pub fn visible(&self) -> impl Iterator<Item = usize> + '_ {
        let n = self.table.len();
        let (all, except, only): (bool, &[u32], &[u32]) = match &self.visible {
            Visible::All => (true, &[], &[]),
            Visible::Except(x) => (true, x, &[]),
            Visible::Only(x) => (false, &[], x),
        };
        let mut skip = except.iter().peekable();
        (0..if all { n } else { 0 })
            .filter(move |&i| {
                while skip.peek().is_some_and(|&&s| (s as usize) < i) {
                    skip.next();
                }
                skip.peek().is_none_or(|&&s| s as usize != i)
            })
            .chain(only.iter().map(|&i| i as usize).filter(move |&i| i < n))
    }

    /// The entries in the view: `(type, state_key, event_id)`.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &str)> + '_ {
        self.visible().filter_map(|i| self.table.entry(i))
    }

    /// Number of entries in the view.
    pub fn len(&self) -> usize {
        self.visible.count(self.table.len())
    }

    /// Whether the view holds none of the table's entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A state, read-only, as parts of shared tables. No two parts hold an
/// entry with the same `(type, state_key)`.
#[derive(Debug, Clone, Default)]
pub struct StateView {
    parts: Vec<ViewPart>,
    len: usize,
}

impl StateView {
    /// A view of `parts`. The caller guarantees that no `(type, state_key)`
    /// is visible in two parts, and that the indexes are in range.
    pub fn new(parts: Vec<(Arc<StateTable>, Visible)>) -> Self {
        let parts: Vec<ViewPart> = parts
            .into_iter()
            .map(|(table, visible)| ViewPart { table, visible })
            .filter(|p| !p.is_empty())
            .collect();
        let len = parts.iter().map(ViewPart::len).sum();
        StateView { parts, len }
    }

    /// A view holding a copy of `state` (for stores without shared tables).
    pub fn from_map(state: &StateMap) -> Self {
        StateView::new(vec![(Arc::new(StateTable::from_map(state)), Visible::All)])
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the state is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The parts: shared tables and the entries of each in the view.
    pub fn parts(&self) -> &[ViewPart] {
        &self.parts
    }

    /// Every `(type, state_key, event_id)`, unordered.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &str)> + '_ {
        self.parts.iter().flat_map(ViewPart::entries)
    }

    /// The event at `(event_type, state_key)`, if any: a scan, for the odd
    /// lookup (use [`StateView::to_map`] for many).
    pub fn get(&self, event_type: &str, state_key: &str) -> Option<&str> {
        self.iter()
            .find(|&(t, k, _)| t == event_type && k == state_key)
            .map(|(_, _, e)| e)
    }

    /// The view copied into a map (one reference-count increment per
    /// string, no string copy).
    pub fn to_map(&self) -> StateMap {
        let mut out = StateMap::with_capacity_and_hasher(self.len, Default::default());
        for p in &self.parts {
            let t = &p.table;
            let single = if t.type_of.is_empty() { t.types.first() } else { None };
            for i in p.visible() {
                let (Some(sk), Some(ev)) = (t.skeys.get(i), t.events.get(i)) else {
                    continue;
                };
                let ty = match single {
                    Some(ty) => ty.clone(),
                    None => t
                        .type_of
                        .get(i)
                        .and_then(|&x| t.types.get(x as usize))
                        .cloned()
                        .unwrap_or_else(|| Arc::from("")),
                };
                out.insert(
                    StateKey::from_validated(ty, sk.clone()),
                    EventId::from_validated(ev.clone()),
                );
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn table(n: usize) -> Arc<StateTable> {
        let skeys = (0..n).map(|i| Arc::from(format!("@u{i}:x").as_str())).collect();
        let events = (0..n).map(|i| Arc::from(format!("$e{i}").as_str())).collect();
        Arc::new(StateTable::of_type(
            Some((1, 2)),
            Arc::from("m.room.member"),
            skeys,
            events,
            Vec::new(),
        ))
    }

    #[test]
    fn visible_sets_select_the_entries() {
        let t = table(5);
        let all = StateView::new(vec![(t.clone(), Visible::All)]);
        assert_eq!(all.len(), 5);
        let except = StateView::new(vec![(t.clone(), Visible::Except(vec![0, 3].into()))]);
        let keys: Vec<&str> = except.iter().map(|(_, k, _)| k).collect();
        assert_eq!(keys, ["@u1:x", "@u2:x", "@u4:x"]);
        assert_eq!(except.len(), 3);
        let only = StateView::new(vec![(t.clone(), Visible::Only(vec![1, 4].into()))]);
        let keys: Vec<&str> = only.iter().map(|(_, k, _)| k).collect();
        assert_eq!(keys, ["@u1:x", "@u4:x"]);
        assert_eq!(only.to_map().len(), 2);
        assert_eq!(only.get("m.room.member", "@u4:x"), Some("$e4"));
        assert_eq!(only.get("m.room.member", "@u3:x"), None);
    }

    #[test]
    fn from_map_round_trips() {
        let mut m = StateMap::default();
        m.insert(
            StateKey::new("m.room.create", "").unwrap(),
            EventId::parse("$a").unwrap(),
        );
        m.insert(
            StateKey::new("m.room.member", "@a:x").unwrap(),
            EventId::parse("$b").unwrap(),
        );
        let v = StateView::from_map(&m);
        assert_eq!(v.to_map(), m);
        assert_eq!(v.len(), 2);
    }
}
