//! [`StateView`]: a state as shared, immutable tables of strings, the
//! answer a store can give without copying each entry.
//!
//! A store that keeps decoded tables in its caches (the engine keeps one per
//! snapshot section and one per stored delta) answers a read with a few
//! reference-counted tables and, per table, which of its entries are in the
//! state. Reading a 100k-member state then costs the bookkeeping of the
//! chain, not 100k string copies or hash inserts; [`StateView::to_map`]
//! gives the [`StateMap`] form when a caller needs lookups by key.

use std::sync::{Arc, OnceLock};

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
    skeys: Texts,
    events: Texts,
    ids: Vec<(u64, u64)>,
}

/// Texts packed end to end in one buffer, each entry a span of it: a
/// column of tens of thousands of texts (a snapshot section's state keys or
/// event ids, read cold) in one allocation instead of one shared string
/// each. Entries may share a span, and are set in any order.
#[derive(Debug, Default)]
pub struct PackedTexts {
    text: String,
    /// `(start, length)` in `text` of each entry; `UNSET` until set.
    spans: Vec<(u32, u32)>,
    /// One shared string per entry, made on first use by
    /// [`StateView::to_map`] (a map's keys and values are shared strings),
    /// with their heap bytes.
    shared: OnceLock<(Box<[Arc<str>]>, u64)>,
}

/// Heap bytes of one shared string of `len` bytes held in a column: its
/// pointer (16) and its allocation (two counts, the text, the allocator's
/// header and rounding).
fn shared_string_bytes(len: usize) -> u64 {
    (16 + 16 + len.next_multiple_of(8) + 8) as u64
}

/// The start of an entry not set yet.
const UNSET: u32 = u32::MAX;

impl PackedTexts {
    /// `entries` entries, none set, with room for `bytes` bytes of text.
    pub fn new(entries: usize, bytes: usize) -> Self {
        PackedTexts {
            text: String::with_capacity(bytes),
            spans: vec![(UNSET, 0); entries],
            shared: OnceLock::new(),
        }
    }

    /// Sets entry `i` to `s`, appended to the buffer. False, with nothing
    /// changed, when `i` is out of range or the buffer would reach 4 GiB.
    pub fn set(&mut self, i: usize, s: &str) -> bool {
        let (Ok(start), Ok(len)) = (u32::try_from(self.text.len()), u32::try_from(s.len())) else {
            return false;
        };
        match (start.checked_add(len), self.spans.get_mut(i)) {
            (Some(end), Some(span)) if end < UNSET => {
                *span = (start, len);
                self.text.push_str(s);
                true
            }
            _ => false,
        }
    }

    /// Sets entry `i` to the text of entry `j` (set before), without a
    /// copy. False, with nothing changed, when either is out of range or
    /// `j` is not set.
    pub fn set_same(&mut self, i: usize, j: usize) -> bool {
        match self.spans.get(j).copied() {
            Some(span) if span.0 != UNSET && i < self.spans.len() => {
                if let Some(slot) = self.spans.get_mut(i) {
                    *slot = span;
                }
                true
            }
            _ => false,
        }
    }

    /// The text of entry `i`; `None` when out of range or not set.
    pub fn get(&self, i: usize) -> Option<&str> {
        let &(start, len) = self.spans.get(i)?;
        if start == UNSET {
            return None;
        }
        let start = start as usize;
        self.text.get(start..start + len as usize)
    }

    /// Whether entry `i` is set.
    pub fn is_set(&self, i: usize) -> bool {
        self.spans.get(i).is_some_and(|&(start, _)| start != UNSET)
    }

    /// Number of entries, set or not.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Frees the buffer's unused room.
    pub fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
    }

    /// One shared string per entry (an unset entry gives an empty one),
    /// made once.
    fn shared(&self) -> &[Arc<str>] {
        &self
            .shared
            .get_or_init(|| {
                let empty: Arc<str> = Arc::from("");
                let strings: Box<[Arc<str>]> = (0..self.spans.len())
                    .map(|i| self.get(i).map_or_else(|| empty.clone(), Arc::from))
                    .collect();
                let bytes = strings.iter().map(|s| shared_string_bytes(s.len())).sum();
                (strings, bytes)
            })
            .0
    }

    /// Approximate heap bytes: the buffer, the spans and, once made, the
    /// shared strings.
    fn weight(&self) -> u64 {
        (self.text.capacity() + 8 * self.spans.len()) as u64 + self.shared.get().map_or(0, |(_, bytes)| *bytes)
    }
}

/// A table's column of texts, as given to [`StateTable::of_type`] and
/// [`StateTable::of_types`]: shared strings (`Vec<Arc<str>>`) or
/// [`PackedTexts`].
#[derive(Debug)]
pub struct TextColumn(Texts);

impl From<Vec<Arc<str>>> for TextColumn {
    fn from(v: Vec<Arc<str>>) -> Self {
        TextColumn(Texts::Shared(v))
    }
}

impl From<PackedTexts> for TextColumn {
    fn from(p: PackedTexts) -> Self {
        TextColumn(Texts::Packed(p))
    }
}

#[derive(Debug)]
enum Texts {
    /// A shared string per entry (shared with a store's string caches).
    Shared(Vec<Arc<str>>),
    Packed(PackedTexts),
}

impl Default for Texts {
    fn default() -> Self {
        Texts::Shared(Vec::new())
    }
}

impl Texts {
    fn len(&self) -> usize {
        match self {
            Texts::Shared(v) => v.len(),
            Texts::Packed(p) => p.len(),
        }
    }

    fn get(&self, i: usize) -> Option<&str> {
        match self {
            Texts::Shared(v) => v.get(i).map(|s| &**s),
            Texts::Packed(p) => p.get(i),
        }
    }

    /// Every entry as a shared string.
    fn shared(&self) -> &[Arc<str>] {
        match self {
            Texts::Shared(v) => v,
            Texts::Packed(p) => p.shared(),
        }
    }

    /// Approximate heap bytes: the pointers of shared strings (the strings
    /// are shared with the store's caches), the whole of a packed column
    /// (with its shared strings once a map has made them).
    fn weight(&self) -> u64 {
        match self {
            Texts::Shared(v) => 16 * v.len() as u64,
            Texts::Packed(p) => p.weight(),
        }
    }
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
        skeys: impl Into<TextColumn>,
        events: impl Into<TextColumn>,
        ids: Vec<(u64, u64)>,
    ) -> Self {
        let (TextColumn(skeys), TextColumn(events)) = (skeys.into(), events.into());
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
        skeys: impl Into<TextColumn>,
        events: impl Into<TextColumn>,
        ids: Vec<(u64, u64)>,
    ) -> Self {
        let (TextColumn(skeys), TextColumn(events)) = (skeys.into(), events.into());
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
        let (mut type_of, mut skeys, mut events): (Vec<u32>, Vec<Arc<str>>, Vec<Arc<str>>) =
            (Vec::new(), Vec::new(), Vec::new());
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
        self.skeys.len() == 0
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

    /// Approximate heap bytes (shared strings are counted as pointers: they
    /// are shared with the store's string caches). A packed column's shared
    /// strings, made by the first [`StateView::to_map`] over the table, are
    /// counted from then on: a cache that holds the table re-weighs it
    /// after a map.
    pub fn weight(&self) -> u64 {
        64 + 8 * self.types.len() as u64
            + 4 * self.type_of.len() as u64
            + 16 * self.ids.len() as u64
            + self.skeys.weight()
            + self.events.weight()
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
            let (skeys, events) = (t.skeys.shared(), t.events.shared());
            for i in p.visible() {
                let (Some(sk), Some(ev)) = (skeys.get(i), events.get(i)) else {
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
        let skeys: Vec<Arc<str>> = (0..n).map(|i| Arc::from(format!("@u{i}:x").as_str())).collect();
        let events: Vec<Arc<str>> = (0..n).map(|i| Arc::from(format!("$e{i}").as_str())).collect();
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

    #[test]
    fn packed_texts_set_in_any_order_and_shared() {
        let mut p = PackedTexts::new(4, 8);
        assert_eq!(p.get(0), None);
        assert!(p.set(2, "$two"));
        assert!(p.set(0, "@zero:x"));
        assert!(p.set_same(3, 2));
        assert!(!p.set_same(1, 1), "an unset entry is not copied");
        assert!(!p.set(4, "out"), "out of range");
        assert_eq!(p.get(1), None);
        assert!(!p.is_set(1) && p.is_set(3) && !p.is_set(9));
        assert!(p.set(1, ""));
        let got: Vec<Option<&str>> = (0..5).map(|i| p.get(i)).collect();
        assert_eq!(got, [Some("@zero:x"), Some(""), Some("$two"), Some("$two"), None]);
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn packed_tables_read_and_map_as_shared_ones() {
        let names = ["@b:x", "@a:x", "@c:x"];
        let mut skeys = PackedTexts::new(3, 0);
        let mut events = PackedTexts::new(3, 0);
        // Set back to front, as a reader in another order would.
        for i in (0..3).rev() {
            assert!(skeys.set(i, names[i]));
            assert!(events.set(i, &format!("$e{i}")));
        }
        let shared: Vec<Arc<str>> = names.iter().map(|&n| Arc::from(n)).collect();
        let shared_events: Vec<Arc<str>> = (0..3).map(|i| Arc::from(format!("$e{i}").as_str())).collect();
        let ty: Arc<str> = Arc::from("m.room.member");
        let packed = Arc::new(StateTable::of_type(None, ty.clone(), skeys, events, Vec::new()));
        let plain = Arc::new(StateTable::of_type(None, ty, shared, shared_events, Vec::new()));
        let (unmapped, plain_weight) = (packed.weight(), plain.weight());
        for visible in [
            Visible::All,
            Visible::Except(vec![1].into()),
            Visible::Only(vec![0, 2].into()),
        ] {
            let a = StateView::new(vec![(packed.clone(), visible.clone())]);
            let b = StateView::new(vec![(plain.clone(), visible)]);
            assert_eq!(a.iter().collect::<Vec<_>>(), b.iter().collect::<Vec<_>>());
            assert_eq!(a.to_map(), b.to_map());
            // The shared strings are made once.
            assert_eq!(a.to_map(), b.to_map());
        }
        assert_eq!(packed.entry(1), Some(("m.room.member", "@a:x", "$e1")));
        // A packed table owns its texts: its weight counts them.
        let texts = names.iter().map(|n| n.len()).sum::<usize>() + 3 * "$e0".len();
        assert!(unmapped >= (64 + texts) as u64, "a packed table owns its texts");
        // Once mapped, it also holds a shared string per entry of each
        // column: counted too.
        assert!(
            packed.weight() >= unmapped + 6 * 32 + texts as u64,
            "the shared strings a map made are counted: {} then {}",
            unmapped,
            packed.weight()
        );
        assert_eq!(
            plain.weight(),
            plain_weight,
            "a shared-string table's weight does not move"
        );
    }
}
