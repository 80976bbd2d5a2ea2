//! The engine: opens the database and answers the homeserver's calls.

mod cache;
mod chain;
mod counters;
mod ifilter;
mod intern;
mod purge;
mod read;
mod room_index;
mod source;
mod stats;
mod txn;
mod view;
mod write;

pub use chain::ChainPolicy;
pub use stats::{CfStats, Stats};
pub use view::StateView;
pub use write::{GroupState, NewGroup};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::filter::StateFilter;
use crate::format::keys::{self, ikey_skey, ikey_type, meta, EventNid, IKey, RoomNid, StrKind};
use crate::format::varint::{put_u64, Reader};
use crate::format::version::FormatVersion;
use crate::ids::{EventId, GroupId, RoomId};
use crate::kv::{Batch, Cf, KvStore, RocksKv};
use crate::state::{GroupDelta, StateKey, StateMap};

pub use crate::kv::rocks::RocksConfig;

use cache::Caches;
use counters::Counters;
use ifilter::IFilter;
use source::{Committed, Source};
use txn::Txn;

/// How to open a database.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Create the database if the directory is missing or empty.
    pub create: bool,
    /// Bytes for the decoded-record and string caches.
    pub cache_bytes: u64,
    pub rocks: RocksConfig,
    pub policy: ChainPolicy,
    /// Open even if an import did not finish (the importer itself does).
    pub allow_incomplete_import: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            create: true,
            cache_bytes: 512 << 20,
            rocks: RocksConfig::default(),
            policy: ChainPolicy::default(),
            allow_incomplete_import: false,
        }
    }
}

/// An open mxstate database.
pub struct Engine {
    kv: Box<dyn KvStore>,
    caches: Caches,
    /// Held by the one writer while it builds and commits a batch: the id
    /// counters and the room index's memory of last ranges.
    writer: Mutex<(Counters, room_index::Appender)>,
    /// Readers hold it shared; a commit holds it exclusively, so a read
    /// never sees half of a batch's effects in the caches or the store.
    gate: RwLock<()>,
    policy: ChainPolicy,
    path: PathBuf,
}

fn poisoned<T>(_: T) -> Error {
    Error::corrupt("engine lock", "memory", "a writer panicked")
}

impl Engine {
    /// Opens (or, with `create`, makes) the database in directory `path`.
    pub fn open(path: &Path, opts: EngineOptions) -> Result<Engine> {
        let fresh = check_directory(path, opts.create)?;
        if !fresh {
            let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), path)
                .map_err(|_| Error::NotADatabase(path.to_owned()))?;
            if Cf::ALL.iter().any(|cf| !cfs.iter().any(|n| n == cf.name())) {
                return Err(Error::NotADatabase(path.to_owned()));
            }
        }
        let kv = RocksKv::open(path, fresh, &opts.rocks)?;
        let counters = match kv.get(Cf::Meta, meta::FORMAT)? {
            None if fresh => {
                let c = Counters::default();
                let mut b = Batch::default();
                b.put(
                    Cf::Meta,
                    meta::FORMAT.to_vec(),
                    FormatVersion::CURRENT.to_bytes().to_vec(),
                );
                b.put(Cf::Meta, meta::COUNTERS.to_vec(), c.encode());
                kv.write(b)?;
                c
            }
            None => return Err(Error::NotADatabase(path.to_owned())),
            Some(v) => {
                FormatVersion::from_bytes(&v)?;
                let c = kv
                    .get(Cf::Meta, meta::COUNTERS)?
                    .ok_or_else(|| Error::corrupt("counters", "meta/counters", "missing"))?;
                Counters::decode(&c)?
            }
        };
        if !opts.allow_incomplete_import {
            if let Some(m) = kv.get(Cf::Meta, meta::IMPORT)? {
                return Err(Error::ImportIncomplete(String::from_utf8_lossy(&m).into_owned()));
            }
        }
        Ok(Engine {
            kv: Box::new(kv),
            caches: Caches::new(opts.cache_bytes),
            writer: Mutex::new((counters, room_index::Appender::default())),
            gate: RwLock::new(()),
            policy: opts.policy,
            path: path.to_owned(),
        })
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn committed(&self) -> Committed<'_> {
        Committed {
            kv: &*self.kv,
            caches: &self.caches,
        }
    }

    /// Runs `f` in a write transaction and commits its batch atomically.
    fn write<T>(&self, f: impl FnOnce(&mut Txn<'_>) -> Result<T>) -> Result<T> {
        let mut writer = self.writer.lock().map_err(poisoned)?;
        let mut txn = Txn::new(&*self.kv, &self.caches, writer.0, std::mem::take(&mut writer.1));
        let out = f(&mut txn)?;
        let (batch, new_counters, appender, update) = txn.finish();
        let _excl = self.gate.write().map_err(poisoned)?;
        self.kv.write(batch)?;
        update.apply(&self.caches);
        *writer = (new_counters, appender);
        Ok(out)
    }

    /// Stores one group; returns its id.
    pub fn store_group(&self, group: NewGroup<'_>) -> Result<GroupId> {
        Ok(self.store_groups(&[group])?.into_iter().next().unwrap_or_default())
    }

    /// Stores groups atomically, in order (later ones may build on earlier ones).
    pub fn store_groups(&self, groups: &[NewGroup<'_>]) -> Result<Vec<GroupId>> {
        self.write(|txn| {
            let mut latest = write::Latest::default();
            groups
                .iter()
                .map(|g| write::store_group(txn, &self.policy, &mut latest, g))
                .collect()
        })
    }

    fn lookup(&self, kind: StrKind, s: &str) -> Result<Option<u64>> {
        intern::lookup(&*self.kv, &self.caches, kind, s)
    }

    fn ifilter(&self, filter: &StateFilter) -> Result<IFilter> {
        IFilter::new(filter, |k, s| self.lookup(k, s))
    }

    /// The state of each group, restricted to `filter`.
    pub fn state_for_groups(&self, groups: &[GroupId], filter: &StateFilter) -> Result<BTreeMap<GroupId, StateMap>> {
        let _shared = self.gate.read().map_err(poisoned)?;
        let f = self.ifilter(filter)?;
        let src = self.committed();
        let mut out = BTreeMap::new();
        for &g in groups {
            if src.existing(g)?.ghost {
                return Err(Error::UnknownGroup(g));
            }
            let resolved = read::resolve(&src, g, &f)?;
            out.insert(g, self.view(resolved)?.to_map());
        }
        Ok(out)
    }

    /// The state of one group, restricted to `filter`.
    pub fn state_for_group(&self, group: GroupId, filter: &StateFilter) -> Result<StateMap> {
        Ok(self
            .state_for_groups(&[group], filter)?
            .remove(&group)
            .unwrap_or_default())
    }

    /// A resolved state as a view over cached section strings.
    fn view(&self, r: read::Resolved) -> Result<StateView> {
        let loose = self.materialize(&r.loose)?;
        let mut len = loose.len();
        let mut parts = Vec::with_capacity(r.sections.len());
        for part in &r.sections {
            let ty = intern::resolve_one(&*self.kv, &self.caches, StrKind::Type, u64::from(part.t))?;
            let strings = self.section_strings(part)?;
            let hidden = r
                .shadowed
                .keys()
                .filter(|&&k| keys::ikey_type(k) == part.t && part.sec.get(keys::ikey_skey(k)).is_some())
                .count();
            len += part.sec.skeys.len() - hidden;
            parts.push(view::ViewPart {
                t: part.t,
                ty,
                sec: part.sec.clone(),
                strings,
            });
        }
        Ok(StateView {
            loose,
            parts,
            shadowed: r.shadowed,
            len,
        })
    }

    /// The state of a group under `filter`, as a view sharing the big
    /// snapshot parts with the caches (no per-entry copy).
    pub fn state_view(&self, group: GroupId, filter: &StateFilter) -> Result<StateView> {
        let _shared = self.gate.read().map_err(poisoned)?;
        let f = self.ifilter(filter)?;
        let src = self.committed();
        if src.existing(group)?.ghost {
            return Err(Error::UnknownGroup(group));
        }
        self.view(read::resolve(&src, group, &f)?)
    }

    /// The strings of a snapshot section, resolved once and cached.
    fn section_strings(&self, part: &read::SectionPart) -> Result<Arc<cache::SectionStrings>> {
        if let Some(s) = self.caches.section_strings.get(&(part.snap, part.t)) {
            return Ok(s);
        }
        let skeys: Vec<u64> = part.sec.skeys.iter().map(|&s| u64::from(s)).collect();
        let strings = Arc::new(cache::SectionStrings {
            skeys: intern::resolve(&*self.kv, &self.caches, StrKind::Skey, &skeys)?,
            events: intern::resolve(&*self.kv, &self.caches, StrKind::Event, &part.sec.events)?,
        });
        self.caches.section_strings.insert((part.snap, part.t), strings.clone());
        Ok(strings)
    }

    /// Interned entries to strings.
    fn materialize(&self, entries: &[(IKey, EventNid)]) -> Result<StateMap> {
        let mut types: FxHashMap<u32, Arc<str>> = FxHashMap::default();
        for &(k, _) in entries {
            let t = ikey_type(k);
            if !types.contains_key(&t) {
                types.insert(
                    t,
                    intern::resolve_one(&*self.kv, &self.caches, StrKind::Type, u64::from(t))?,
                );
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
                .ok_or_else(|| Error::corrupt("interned type", format!("{}", ikey_type(k)), "unresolved"))?;
            out.insert(StateKey::from_stored(t, s), EventId::from_stored(e));
        }
        Ok(out)
    }

    /// The prev group and the delta as the caller stored them; `None` for a
    /// group stored with a full state.
    pub fn state_group_delta(&self, group: GroupId) -> Result<Option<GroupDelta>> {
        let _shared = self.gate.read().map_err(poisoned)?;
        let rec = self.committed().existing(group)?;
        if rec.ghost {
            return Err(Error::UnknownGroup(group));
        }
        let (Some(prev), Some(d)) = (rec.prev, rec.logical_delta()) else {
            return Ok(None);
        };
        let mut delta = BTreeMap::new();
        for &(k, v) in d {
            let t = intern::resolve_one(&*self.kv, &self.caches, StrKind::Type, u64::from(ikey_type(k)))?;
            let s = intern::resolve_one(&*self.kv, &self.caches, StrKind::Skey, u64::from(ikey_skey(k)))?;
            let v = match v {
                Some(e) => Some(EventId::from_stored(intern::resolve_one(
                    &*self.kv,
                    &self.caches,
                    StrKind::Event,
                    e,
                )?)),
                None => None,
            };
            delta.insert(StateKey::from_stored(t, s), v);
        }
        Ok(Some(GroupDelta {
            prev_group: prev,
            delta,
        }))
    }

    /// The room of a group.
    pub fn group_room(&self, group: GroupId) -> Result<RoomId> {
        let _shared = self.gate.read().map_err(poisoned)?;
        let rec = self.committed().existing(group)?;
        if rec.ghost {
            return Err(Error::UnknownGroup(group));
        }
        let s = intern::resolve_one(&*self.kv, &self.caches, StrKind::Room, u64::from(rec.room))?;
        RoomId::parse(&*s)
    }

    /// Whether a group exists.
    pub fn has_group(&self, group: GroupId) -> Result<bool> {
        let _shared = self.gate.read().map_err(poisoned)?;
        Ok(self.committed().record(group)?.is_some_and(|r| !r.ghost))
    }

    /// Maps events to the groups holding the state at them.
    pub fn set_event_groups(&self, pairs: &[(EventId, GroupId)]) -> Result<()> {
        self.write(|txn| {
            let names: Vec<&str> = pairs.iter().map(|(e, _)| e.as_str()).collect();
            let nids = txn.intern_many(StrKind::Event, &names)?;
            // Only events interned before this call can have a mapping already.
            let known: Vec<u64> = nids.iter().filter(|n| !n.1).map(|n| n.0).collect();
            let ks: Vec<Vec<u8>> = known.iter().map(|&n| keys::event_key(n).to_vec()).collect();
            let mut current: FxHashMap<u64, GroupId> = FxHashMap::default();
            for (&n, v) in known.iter().zip(txn.kv.multi_get(Cf::EventGroups, &ks)?) {
                if let Some(v) = v {
                    current.insert(n, Reader::new(&v, "event group").u64()?);
                }
            }
            for ((_, g), &(en, _)) in pairs.iter().zip(&nids) {
                if txn.record(*g)?.is_none_or(|r| r.ghost) {
                    return Err(Error::UnknownGroup(*g));
                }
                if let Some(og) = current.insert(en, *g) {
                    if og != *g {
                        txn.batch
                            .delete(Cf::GroupEvents, keys::group_event_key(og, en).to_vec());
                    }
                }
                let mut v = Vec::new();
                put_u64(&mut v, *g);
                txn.batch.put(Cf::EventGroups, keys::event_key(en).to_vec(), v);
                txn.batch
                    .put(Cf::GroupEvents, keys::group_event_key(*g, en).to_vec(), Vec::new());
            }
            Ok(())
        })
    }

    /// The groups of the given events (unknown events are left out).
    pub fn event_groups(&self, events: &[EventId]) -> Result<BTreeMap<EventId, GroupId>> {
        let _shared = self.gate.read().map_err(poisoned)?;
        let mut found = Vec::new();
        let mut ks = Vec::new();
        for e in events {
            if let Some(n) = self.lookup(StrKind::Event, e.as_str())? {
                found.push(e);
                ks.push(keys::event_key(n).to_vec());
            }
        }
        let mut out = BTreeMap::new();
        for (e, v) in found.into_iter().zip(self.kv.multi_get(Cf::EventGroups, &ks)?) {
            if let Some(v) = v {
                let mut r = Reader::new(&v, "event group");
                out.insert(e.clone(), r.u64()?);
            }
        }
        Ok(out)
    }

    fn room_nid(&self, room: &RoomId) -> Result<Option<RoomNid>> {
        Ok(self.lookup(StrKind::Room, room.as_str())?.map(|n| n as RoomNid))
    }

    /// Replaces a room's current state.
    pub fn set_current_state(&self, room: &RoomId, state: &StateMap) -> Result<()> {
        self.write(|txn| {
            let rn = txn.intern(StrKind::Room, room.as_str())? as RoomNid;
            let mut old = Vec::new();
            txn.kv
                .scan_prefix(Cf::CurrentState, &keys::room_prefix(rn), &mut |k, _| {
                    old.push(k.to_vec());
                    Ok(true)
                })?;
            for k in old {
                txn.batch.delete(Cf::CurrentState, k);
            }
            for (k, e) in state {
                let ik = txn.intern_key(k.event_type(), k.state_key())?;
                let en = txn.intern(StrKind::Event, e.as_str())?;
                let mut v = Vec::new();
                put_u64(&mut v, en);
                txn.batch.put(Cf::CurrentState, keys::current_key(rn, ik).to_vec(), v);
            }
            Ok(())
        })
    }

    /// A room's current state, restricted to `filter`.
    pub fn current_state(&self, room: &RoomId, filter: &StateFilter) -> Result<StateMap> {
        let _shared = self.gate.read().map_err(poisoned)?;
        let Some(rn) = self.room_nid(room)? else {
            return Ok(StateMap::default());
        };
        let f = self.ifilter(filter)?;
        let mut entries = Vec::new();
        self.kv
            .scan_prefix(Cf::CurrentState, &keys::room_prefix(rn), &mut |k, v| {
                let ik = keys::suffix_u64(k, 4, "current_state key")?;
                if f.matches(ik) {
                    let mut r = Reader::new(v, "current state entry");
                    entries.push((ik, r.u64()?));
                }
                Ok(true)
            })?;
        self.materialize(&entries)
    }

    /// The groups of a room, ascending.
    pub fn room_groups(&self, room: &RoomId) -> Result<Vec<GroupId>> {
        let _shared = self.gate.read().map_err(poisoned)?;
        let Some(rn) = self.room_nid(room)? else {
            return Ok(Vec::new());
        };
        Ok(room_index::members(&*self.kv, rn)?
            .into_iter()
            .filter(|m| !m.1)
            .map(|m| m.0)
            .collect())
    }

    /// The ids of all rooms with groups or current state.
    pub fn rooms(&self) -> Result<Vec<RoomId>> {
        let _shared = self.gate.read().map_err(poisoned)?;
        let mut out = Vec::new();
        self.kv.scan_prefix(Cf::Strings, &[StrKind::Room as u8], &mut |k, _| {
            let s = std::str::from_utf8(k.get(1..).unwrap_or_default())
                .map_err(|_| Error::corrupt("room id", "strings/R", "not UTF-8"))?;
            out.push(RoomId::parse(s)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Deletes a room: its groups, snapshots, event mappings and current state.
    pub fn purge_room(&self, room: &RoomId) -> Result<()> {
        let Some(rn) = self.room_nid(room)? else {
            return Err(Error::UnknownRoom(room.to_string()));
        };
        self.write(|txn| purge::purge_room(txn, rn))
    }

    /// Deletes groups no event refers to, leaving every other group's state as it was.
    pub fn purge_groups(&self, room: &RoomId, groups: &[GroupId]) -> Result<()> {
        let Some(rn) = self.room_nid(room)? else {
            return Err(Error::UnknownRoom(room.to_string()));
        };
        self.write(|txn| purge::purge_groups(txn, rn, room.as_str(), groups))
    }

    /// A group as Synapse's tables would hold it: its room, event, prev and
    /// rows. A delta with removals (which Synapse cannot express) or a root
    /// comes back as a full state without prev.
    pub fn export_group(&self, group: GroupId) -> Result<ExportGroup> {
        let _shared = self.gate.read().map_err(poisoned)?;
        let src = self.committed();
        let rec = src.existing(group)?;
        if rec.ghost {
            return Err(Error::UnknownGroup(group));
        }
        let room = RoomId::parse(&*intern::resolve_one(
            &*self.kv,
            &self.caches,
            StrKind::Room,
            u64::from(rec.room),
        )?)?;
        let event = EventId::from_stored(intern::resolve_one(&*self.kv, &self.caches, StrKind::Event, rec.event)?);
        let (prev, entries) = match (rec.prev, rec.logical_delta()) {
            (Some(p), Some(d)) if d.iter().all(|e| e.1.is_some()) => {
                (Some(p), d.iter().filter_map(|&(k, e)| e.map(|e| (k, e))).collect())
            }
            _ => (None, read::full_sorted(&src, group)?),
        };
        let state = self.materialize(&entries)?;
        let mut rows: Vec<(StateKey, EventId)> = state.into_iter().collect();
        rows.sort_unstable();
        Ok(ExportGroup {
            room,
            event,
            prev,
            rows,
        })
    }

    /// Visits every group id in ascending order.
    pub fn for_each_group(&self, visit: &mut dyn FnMut(GroupId) -> Result<()>) -> Result<()> {
        self.kv.scan_prefix(Cf::Groups, &[], &mut |k, v| {
            let g = keys::parse_u64(k, "groups key")?;
            if !crate::format::group::GroupRecord::decode(g, v)?.ghost {
                visit(g)?;
            }
            Ok(true)
        })
    }

    /// Visits every `(event, group)` mapping.
    pub fn for_each_event_group(&self, visit: &mut dyn FnMut(&EventId, GroupId) -> Result<()>) -> Result<()> {
        self.kv.scan_prefix(Cf::EventGroups, &[], &mut |k, v| {
            let en = keys::parse_u64(k, "event_groups key")?;
            let g = Reader::new(v, "event group").u64()?;
            let e = EventId::from_stored(intern::resolve_one(&*self.kv, &self.caches, StrKind::Event, en)?);
            visit(&e, g)?;
            Ok(true)
        })
    }

    /// Marks an import as running; `finish_import` clears it.
    pub fn begin_import(&self, description: &str) -> Result<()> {
        let mut b = Batch::default();
        b.put(Cf::Meta, meta::IMPORT.to_vec(), description.as_bytes().to_vec());
        self.kv.write(b)
    }

    /// Marks the import as complete.
    pub fn finish_import(&self) -> Result<()> {
        let mut b = Batch::default();
        b.delete(Cf::Meta, meta::IMPORT.to_vec());
        self.kv.write(b)
    }

    /// The running import's description, if one did not finish.
    pub fn import_marker(&self) -> Result<Option<String>> {
        Ok(self
            .kv
            .get(Cf::Meta, meta::IMPORT)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Flushes and compacts the store.
    pub fn compact(&self) -> Result<()> {
        self.kv.compact()
    }

    /// Figures about the database.
    pub fn stats(&self) -> Result<Stats> {
        let _shared = self.gate.read().map_err(poisoned)?;
        let counters = self.writer.lock().map_err(poisoned)?.0;
        stats::collect(&*self.kv, &counters, &self.path)
    }
}

/// A group as Synapse's tables hold it (see [`Engine::export_group`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportGroup {
    pub room: RoomId,
    pub event: EventId,
    pub prev: Option<GroupId>,
    /// Sorted rows.
    pub rows: Vec<(StateKey, EventId)>,
}

/// Checks the directory; returns whether a new database is to be made.
fn check_directory(path: &Path, create: bool) -> Result<bool> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !create {
                return Err(Error::NoDatabase(path.to_owned()));
            }
            std::fs::create_dir_all(path).map_err(io)?;
            Ok(true)
        }
        Err(e) => Err(io(e)),
        Ok(m) if !m.is_dir() => Err(Error::NotADatabase(path.to_owned())),
        Ok(_) => {
            let empty = std::fs::read_dir(path).map_err(io)?.next().is_none();
            if empty && !create {
                return Err(Error::NoDatabase(path.to_owned()));
            }
            if !empty && !path.join("CURRENT").is_file() {
                return Err(Error::NotADatabase(path.to_owned()));
            }
            Ok(empty)
        }
    }
}
