//! Figures about a database, for `mxstate stats`.

use rustc_hash::FxHashMap;

use mxstate_api::Result;

use crate::format::counters::Counters;
use crate::format::event_bucket;
use crate::format::group::{GroupRecord, Physical};
use crate::format::keys::{self, StrKind};
use crate::format::snapshot::SnapHeader;
use crate::kv::{Cf, KvStore};

/// Size of one column family.
#[derive(Debug, Clone)]
pub struct CfStats {
    pub name: &'static str,
    pub bytes: u64,
    pub keys: u64,
}

/// Database figures.
#[derive(Debug, Clone)]
pub struct Stats {
    pub rooms: u64,
    pub groups: u64,
    pub ghost_groups: u64,
    pub snapshot_groups: u64,
    pub delta_groups: u64,
    pub snapshots: u64,
    pub events: u64,
    pub event_mappings: u64,
    pub event_types: u64,
    pub state_keys: u64,
    pub longest_chain: u64,
    pub delta_entries: u64,
    pub snapshot_entries: u64,
    /// `None` when the backend cannot tell (an in-memory store).
    pub bytes_on_disk: Option<u64>,
    /// Empty when the backend has no per-family figures.
    pub column_families: Vec<CfStats>,
}

/// Scans the database and gathers [`Stats`].
pub fn collect(kv: &dyn KvStore, counters: &Counters) -> Result<Stats> {
    let mut s = Stats {
        rooms: 0,
        groups: 0,
        ghost_groups: 0,
        snapshot_groups: 0,
        delta_groups: 0,
        snapshots: 0,
        events: counters.event,
        event_mappings: 0,
        event_types: counters.event_type,
        state_keys: counters.skey,
        longest_chain: 0,
        delta_entries: 0,
        snapshot_entries: 0,
        bytes_on_disk: match kv.maintenance() {
            Some(m) => Some(m.bytes_on_disk()?),
            None => None,
        },
        column_families: Vec::new(),
    };
    let mut bases: FxHashMap<u64, u64> = FxHashMap::default();
    kv.scan_prefix(Cf::Groups, &[], &mut |k, v| {
        let g = keys::parse_u64(k, "groups key")?;
        let rec = GroupRecord::decode(g, v)?;
        if rec.ghost {
            s.ghost_groups += 1;
        } else {
            s.groups += 1;
        }
        match &rec.physical {
            Physical::Snapshot(_) => s.snapshot_groups += 1,
            Physical::Delta { base, delta } => {
                s.delta_groups += 1;
                s.delta_entries += delta.len() as u64;
                bases.insert(g, *base);
            }
        }
        Ok(true)
    })?;
    let mut depth: FxHashMap<u64, u64> = FxHashMap::default();
    for &g in bases.keys() {
        let mut stack = Vec::new();
        let mut cur = g;
        let mut d = loop {
            if let Some(&d) = depth.get(&cur) {
                break d;
            }
            match bases.get(&cur) {
                Some(&b) if stack.len() <= bases.len() => {
                    stack.push(cur);
                    cur = b;
                }
                _ => break 0,
            }
        };
        while let Some(p) = stack.pop() {
            d += 1;
            depth.insert(p, d);
        }
        s.longest_chain = s.longest_chain.max(d);
    }
    kv.scan_prefix(Cf::Snapshots, &[], &mut |k, v| {
        if k.len() == 8 {
            let h = SnapHeader::decode(v)?;
            s.snapshots += 1;
            s.snapshot_entries += h.entries;
        }
        Ok(true)
    })?;
    kv.scan_prefix(Cf::EventGroups, &[], &mut |k, v| {
        if event_bucket::is_bucket_key(k) {
            let slots = event_bucket::decode(v, || format!("event_groups/{}", crate::format::record::shown(k)))?;
            s.event_mappings += slots.iter().filter(|s| s.group().is_some()).count() as u64;
        } else {
            s.event_mappings += 1;
        }
        Ok(true)
    })?;
    kv.scan_prefix(Cf::Strings, &[StrKind::Room as u8], &mut |_, _| {
        s.rooms += 1;
        Ok(true)
    })?;
    if let Some(m) = kv.maintenance() {
        for cf in m.sizes()? {
            s.column_families.push(CfStats {
                name: cf.name,
                bytes: cf.stored_bytes + cf.buffered_bytes,
                keys: cf.keys_estimate,
            });
        }
    }
    Ok(s)
}
