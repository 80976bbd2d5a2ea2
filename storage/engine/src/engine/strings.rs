//! From interned ids back to strings: maps, views, cached section strings.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use mxstate_api::{Error, EventId, PackedTexts, Result, StateKey, StateMap, StateTable, StateView, Visible};

use crate::access::intern;
use crate::access::Source;
use crate::format::group::Physical;
use crate::format::keys::{ikey, ikey_skey, ikey_type, EventNid, IKey, StrKind};
use crate::kv::no_wait;
use crate::read::resolve::{self, DeltaPart, Resolved, SectionPart};
use crate::read::IFilter;

use super::Engine;

/// From this many texts (state keys and event ids) to read for a state's
/// cold sections and deltas on, a view reads them on two threads: starting
/// a thread costs about 80 µs, the 43,000 texts of a 20k-member room's
/// state 5 ms.
const PARALLEL_MIN_TEXTS: usize = 16_384;

/// The texts of one column of a section's table (its state keys or its
/// event ids).
type Column = PackedTexts;

/// `(type, state_key, event_id)` of one entry.
type Texts = (Arc<str>, Arc<str>, Arc<str>);

/// Builds a [`StateTable`] of several types, entry by entry.
struct TableBuilder {
    types: Vec<Arc<str>>,
    type_index: FxHashMap<u32, u32>,
    type_of: Vec<u32>,
    skeys: Vec<Arc<str>>,
    events: Vec<Arc<str>>,
    ids: Vec<(IKey, EventNid)>,
}

impl TableBuilder {
    fn with_capacity(n: usize) -> Self {
        TableBuilder {
            types: Vec::new(),
            type_index: FxHashMap::default(),
            type_of: Vec::with_capacity(n),
            skeys: Vec::with_capacity(n),
            events: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
        }
    }

    /// Adds entry `(key, event)` with its strings.
    fn push(&mut self, key: IKey, event: EventNid, (ty, skey, ev): Texts) {
        let types = &mut self.types;
        let t = *self.type_index.entry(ikey_type(key)).or_insert_with(|| {
            types.push(ty);
            u32::try_from(types.len() - 1).unwrap_or(u32::MAX)
        });
        self.type_of.push(t);
        self.skeys.push(skey);
        self.events.push(ev);
        self.ids.push((key, event));
    }

    fn finish(self) -> StateTable {
        StateTable::of_types(self.types, self.type_of, self.skeys, self.events, self.ids)
    }
}

impl Engine {
    /// Group `g`'s state under `f`, resolved: a full state on the cached
    /// base of its nearest checkpoint.
    pub(super) fn resolved(&self, src: &dyn Source, g: u64, f: &IFilter) -> Result<Resolved> {
        if f.is_all() {
            resolve::resolve_full(src, &self.caches, g)
        } else {
            resolve::resolve(src, g, f)
        }
    }

    /// A resolved state as a view over cached tables: one per snapshot
    /// section and one per delta record, each resolved to strings once.
    pub(super) fn view(&self, r: Resolved) -> Result<StateView> {
        let mut parts = Vec::with_capacity(r.sections.len() + r.deltas.len() + 1);
        if !r.loose.is_empty() {
            parts.push((Arc::new(self.table_of(&r.loose)?), Visible::All));
        }
        // The sections' cached tables; those not cached are a cold read.
        let mut tables: Vec<Option<Arc<StateTable>>> = r
            .sections
            .iter()
            .map(|p| self.caches.section_tables.get(&(p.snap, p.t)))
            .collect();
        let cold: Vec<&SectionPart> = r
            .sections
            .iter()
            .zip(&tables)
            .filter_map(|(p, t)| t.is_none().then_some(p))
            .collect();
        // Texts to read: two an entry of the cold sections and of the
        // deltas whose tables are not cached.
        let cold_texts: usize = cold.iter().map(|p| 2 * p.sec.events.len()).sum::<usize>()
            + r.deltas
                .iter()
                .filter(|d| self.caches.delta_tables.get(&d.g).is_none())
                .map(|d| match &d.rec.physical {
                    Physical::Delta { delta, .. } => 2 * delta.len(),
                    Physical::Snapshot(_) => 0,
                })
                .sum::<usize>();
        let read_events = || -> Result<Vec<Column>> {
            cold.iter()
                .map(|p| intern::resolve_packed(&*self.kv, &self.caches, StrKind::Event, &p.sec.events))
                .collect()
        };
        let read_skeys = || -> Result<Vec<Column>> {
            cold.iter()
                .map(|p| {
                    let skeys: Vec<u64> = p.sec.skeys.iter().map(|&s| u64::from(s)).collect();
                    intern::resolve_packed(&*self.kv, &self.caches, StrKind::Skey, &skeys)
                })
                .collect()
        };
        // A read that must not wait reads no text: it fails at its first
        // store access, without starting a thread that would.
        let (deltas, skeys, events) = if cold_texts < PARALLEL_MIN_TEXTS || no_wait::forbidden() {
            (self.delta_tables(&r.deltas), read_skeys(), read_events())
        } else {
            // A large cold state, read by two threads: a helper reads the
            // sections' event ids while this thread reads the delta tables;
            // the sections' state keys go to whichever is done first.
            let skeys_taken = AtomicBool::new(false);
            let take_skeys = || (!skeys_taken.swap(true, Ordering::Relaxed)).then(read_skeys);
            std::thread::scope(|scope| {
                let helper = std::thread::Builder::new()
                    .name("mxstate-read".into())
                    .spawn_scoped(scope, || (read_events(), take_skeys()));
                let deltas = self.delta_tables(&r.deltas);
                let mine = take_skeys();
                // Joined here, error or not: a scope re-raises the panic of
                // a thread it has to join itself.
                let (events, theirs) = match helper {
                    Ok(h) => h.join().unwrap_or_else(|_| {
                        let e = || Err(Error::internal("a state read's helper thread panicked"));
                        (e(), Some(e()))
                    }),
                    // No thread to be had: read them here.
                    Err(_) => (read_events(), None),
                };
                let skeys = match (mine, theirs) {
                    (Some(s), _) | (None, Some(s)) => s,
                    (None, None) => read_skeys(),
                };
                (deltas, skeys, events)
            })
        };
        let (deltas, skeys, events) = (deltas?, skeys?, events?);
        for (d, table) in r.deltas.iter().zip(deltas) {
            parts.push((table, Visible::Only(d.visible.clone())));
        }
        let mut cold_tables = self.section_tables(&cold, skeys, events)?.into_iter();
        for (part, table) in r.sections.iter().zip(tables.iter_mut()) {
            let visible = if part.hidden.is_empty() {
                Visible::All
            } else {
                Visible::Except(part.hidden.clone())
            };
            let table = match table.take() {
                Some(t) => t,
                None => cold_tables
                    .next()
                    .ok_or_else(|| Error::internal("a cold section's table was not built"))?,
            };
            parts.push((table, visible));
        }
        Ok(StateView::new(parts))
    }

    /// `view` as a map. The first map over a packed section table makes
    /// and keeps a shared string per text (`StateView::to_map`): the
    /// section cache then holds more than it counted, so a table whose
    /// weight grew is inserted again, to be weighed anew.
    pub(super) fn map_of(&self, view: &StateView) -> StateMap {
        let before: Vec<u64> = view.parts().iter().map(|p| p.table().weight()).collect();
        let map = view.to_map();
        for (part, weight) in view.parts().iter().zip(before) {
            let table = part.table();
            let Some(key) = table.id().filter(|_| table.weight() != weight) else {
                continue;
            };
            if self
                .caches
                .section_tables
                .get(&key)
                .is_some_and(|cached| Arc::ptr_eq(&cached, table))
            {
                self.caches.section_tables.insert(key, table.clone());
            }
        }
        map
    }

    /// The tables of `deltas`, their texts read in one batch per kind.
    fn delta_tables(&self, deltas: &[DeltaPart]) -> Result<Vec<Arc<StateTable>>> {
        self.preload_delta_texts(deltas)?;
        deltas.iter().map(|d| self.delta_table(d)).collect()
    }

    /// Reads the texts of the deltas whose tables are not cached in one
    /// batch per kind, into the text cache: a chain's checkpoint deltas name
    /// thousands of texts, many of them the same, and each delta's table
    /// would otherwise read its own from the store.
    fn preload_delta_texts(&self, deltas: &[DeltaPart]) -> Result<()> {
        let (mut skeys, mut events) = (Vec::new(), Vec::new());
        let mut cold = 0;
        for d in deltas {
            if self.caches.delta_tables.get(&d.g).is_some() {
                continue;
            }
            if let Physical::Delta { delta, .. } = &d.rec.physical {
                cold += 1;
                for &(k, v) in delta.iter() {
                    skeys.push(u64::from(ikey_skey(k)));
                    events.extend(v);
                }
            }
        }
        if cold < 2 {
            return Ok(());
        }
        for (kind, mut nids) in [(StrKind::Skey, skeys), (StrKind::Event, events)] {
            nids.sort_unstable();
            nids.dedup();
            intern::resolve(&*self.kv, &self.caches, kind, &nids)?;
        }
        Ok(())
    }

    /// The tables of snapshot sections not cached, given their state keys
    /// and event ids (`skeys[i]` and `events[i]` of `cold[i]`); each is
    /// cached.
    fn section_tables(
        &self,
        cold: &[&SectionPart],
        skeys: Vec<Column>,
        events: Vec<Column>,
    ) -> Result<Vec<Arc<StateTable>>> {
        cold.iter()
            .zip(skeys.into_iter().zip(events))
            .map(|(part, (skeys, events))| {
                let ids = part
                    .sec
                    .skeys
                    .iter()
                    .zip(&part.sec.events)
                    .map(|(&s, &e)| (ikey(part.t, s), e))
                    .collect();
                let table = Arc::new(StateTable::of_type(
                    Some((part.snap, part.t)),
                    self.text(StrKind::Type, u64::from(part.t))?,
                    skeys,
                    events,
                    ids,
                ));
                self.caches.section_tables.insert((part.snap, part.t), table.clone());
                Ok(table)
            })
            .collect()
    }

    /// A delta record with its strings, resolved once and cached by group.
    /// Entry `i` is the physical delta's entry `i`; a removal has an empty
    /// event id and is never visible.
    fn delta_table(&self, part: &DeltaPart) -> Result<Arc<StateTable>> {
        if let Some(t) = self.caches.delta_tables.get(&part.g) {
            return Ok(t);
        }
        let delta: &[(IKey, Option<EventNid>)] = match &part.rec.physical {
            Physical::Delta { delta, .. } => delta,
            Physical::Snapshot(_) => &[],
        };
        let set: Vec<(IKey, EventNid)> = delta.iter().filter_map(|&(k, v)| Some((k, v?))).collect();
        let mut resolved = self.table_parts(&set)?.into_iter();
        let empty: Arc<str> = Arc::from("");
        let mut b = TableBuilder::with_capacity(delta.len());
        for &(k, v) in delta {
            let (ty, skey, ev) = match v {
                Some(_) => resolved
                    .next()
                    .ok_or_else(|| Error::internal("a delta entry resolved above is missing"))?,
                None => (
                    self.text(StrKind::Type, u64::from(ikey_type(k)))?,
                    self.text(StrKind::Skey, u64::from(ikey_skey(k)))?,
                    empty.clone(),
                ),
            };
            b.push(k, v.unwrap_or(0), (ty, skey, ev));
        }
        let table = Arc::new(b.finish());
        self.caches.delta_tables.insert(part.g, table.clone());
        Ok(table)
    }

    /// A fresh table of interned entries (point lookups).
    fn table_of(&self, entries: &[(IKey, EventNid)]) -> Result<StateTable> {
        let mut b = TableBuilder::with_capacity(entries.len());
        for (&(k, e), texts) in entries.iter().zip(self.table_parts(entries)?) {
            b.push(k, e, texts);
        }
        Ok(b.finish())
    }

    /// The strings of interned entries: `(type, state_key, event_id)`.
    fn table_parts(&self, entries: &[(IKey, EventNid)]) -> Result<Vec<Texts>> {
        let mut types: FxHashMap<u32, Arc<str>> = FxHashMap::default();
        for &(k, _) in entries {
            if let std::collections::hash_map::Entry::Vacant(slot) = types.entry(ikey_type(k)) {
                slot.insert(self.text(StrKind::Type, u64::from(ikey_type(k)))?);
            }
        }
        let skeys: Vec<u64> = entries.iter().map(|&(k, _)| u64::from(ikey_skey(k))).collect();
        let skeys = intern::resolve(&*self.kv, &self.caches, StrKind::Skey, &skeys)?;
        let events: Vec<u64> = entries.iter().map(|&(_, e)| e).collect();
        let events = intern::resolve(&*self.kv, &self.caches, StrKind::Event, &events)?;
        let mut out = Vec::with_capacity(entries.len());
        for ((&(key, _), skey), ev) in entries.iter().zip(skeys).zip(events) {
            let ty = types
                .get(&ikey_type(key))
                .cloned()
                .ok_or_else(|| Error::internal(format!("type nid {} resolved above is missing", ikey_type(key))))?;
            out.push((ty, skey, ev));
        }
        Ok(out)
    }

    /// The text of one interned id.
    pub(super) fn text(&self, kind: StrKind, nid: u64) -> Result<Arc<str>> {
        intern::resolve_one(&*self.kv, &self.caches, kind, nid)
    }

    /// Interned entries to strings.
    pub(super) fn materialize(&self, entries: &[(IKey, EventNid)]) -> Result<StateMap> {
        let mut types: FxHashMap<u32, Arc<str>> = FxHashMap::default();
        for &(k, _) in entries {
            let t = ikey_type(k);
            if let std::collections::hash_map::Entry::Vacant(slot) = types.entry(t) {
                slot.insert(self.text(StrKind::Type, u64::from(t))?);
            }
        }
        let skeys: Vec<u64> = entries.iter().map(|&(k, _)| u64::from(ikey_skey(k))).collect();
        let skeys = intern::resolve(&*self.kv, &self.caches, StrKind::Skey, &skeys)?;
        let events: Vec<u64> = entries.iter().map(|&(_, e)| e).collect();
        let events = intern::resolve(&*self.kv, &self.caches, StrKind::Event, &events)?;
        let mut out = StateMap::with_capacity_and_hasher(entries.len(), Default::default());
        for ((&(k, _), s), e) in entries.iter().zip(skeys).zip(events) {
            let t = types
                .get(&ikey_type(k))
                .cloned()
                .ok_or_else(|| Error::internal(format!("type nid {} resolved above is missing", ikey_type(k))))?;
            out.insert(StateKey::from_validated(t, s), EventId::from_validated(e));
        }
        Ok(out)
    }
}
