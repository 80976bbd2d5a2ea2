//! Opening a database written in an older format version. Each change is
//! made in bounded batches, and every step can be interrupted and run
//! again: the new format version is written only after the last step.

use roaring::RoaringTreemap;

use mxstate_api::{Error, Result};

use std::collections::BTreeMap;

use crate::access::event_index;
use crate::format::counters::Counters;
use crate::format::event_bucket::{self, Slot};
use crate::format::event_key;
use crate::format::keys::{self, meta, StrKind};
use crate::format::nid_block;
use crate::format::record::{decode_record, Record};
use crate::format::values;
use crate::format::version::FormatVersion;
use crate::kv::{Batch, Cf, KvStore};

/// Entries read and rewritten per batch.
const BATCH: usize = 10_000;

/// Brings a database of format `from` to the current format.
pub(super) fn migrate(kv: &dyn KvStore, from: FormatVersion) -> Result<()> {
    // Versions 2 and 3 add the `deletion` and `auth` column families,
    // which the backend created empty: nothing to rewrite.
    let rewrites = (from as u32) < (FormatVersion::V6 as u32);
    if (from as u32) < (FormatVersion::V4 as u32) {
        tracing::info!(from = from as u32, "migrating event ids to format 4");
        event_ids(kv)?;
    }
    if (from as u32) < (FormatVersion::V5 as u32) {
        tracing::info!(from = from as u32, "packing interned strings (format 5)");
        pack_nids(kv)?;
    }
    if (from as u32) < (FormatVersion::V6 as u32) {
        tracing::info!(from = from as u32, "moving hash-form event ids into buckets (format 6)");
        buckets(kv)?;
    }
    let mut b = Batch::default();
    b.put(
        Cf::Meta,
        meta::FORMAT.to_vec(),
        FormatVersion::CURRENT.to_bytes().to_vec(),
    );
    kv.write(b)?;
    // The rewritten families hold the old records as deletions until a
    // compaction: a migrated database would take more room than before
    // (a 51-room database: 62 MiB on disk after the rewrite, 17.7 MiB
    // compacted; 28.3 MiB in format 3).
    if rewrites {
        if let Some(m) = kv.maintenance() {
            m.compact()?;
        }
    }
    Ok(())
}

/// Format 4: event mappings keyed by the stored event id, event ids in
/// their stored form, and events that only had a mapping no longer
/// interned.
fn event_ids(kv: &dyn KvStore) -> Result<()> {
    mappings(kv)?;
    let used = interned_events_in_use(kv)?;
    let kind = StrKind::Event as u8;
    // `strings`: `E` + text -> nid. Stored forms of hash ids sort before
    // `$` and are not visited again.
    in_batches(kv, Cf::Strings, &[kind, b'$'], &[kind, b'$' + 1], |items, b| {
        for (k, v) in items {
            let nid = values::decode_string_nid(v)?;
            let at = || format!("strings/{}", crate::format::record::shown(k));
            let text = keys::text_from_bytes(StrKind::Event, k.get(1..).unwrap_or_default(), at)?;
            if !used.contains(nid) {
                b.delete(Cf::Strings, k.clone());
            } else if event_key::hash_form(&text).is_some() {
                b.delete(Cf::Strings, k.clone());
                b.put(Cf::Strings, keys::string_key(StrKind::Event, &text), v.clone());
            }
        }
        Ok(())
    })?;
    // `nids`: `E` + nid -> text.
    in_batches(kv, Cf::Nids, &[kind], &[kind + 1], |items, b| {
        for (k, v) in items {
            let nid = keys::suffix_u64(k, 1, "nids key")?;
            if !used.contains(nid) {
                b.delete(Cf::Nids, k.clone());
            } else if v.first() == Some(&b'$') {
                let at = || format!("nids/E/{nid}");
                let text = keys::text_from_bytes(StrKind::Event, v, at)?;
                if let Some(h) = event_key::hash_form(&text) {
                    b.put(Cf::Nids, k.clone(), h.to_vec());
                }
            }
        }
        Ok(())
    })
}

/// Format 5: the single `nids` keys of every block the kind's counter has
/// passed packed into one value (`format::nid_block`). A block and the
/// deletion of its single keys are written in one batch, so a run
/// interrupted anywhere leaves only whole blocks, and the next run packs
/// what is still single.
fn pack_nids(kv: &dyn KvStore) -> Result<()> {
    let counters = match kv.get(Cf::Meta, meta::COUNTERS)? {
        Some(v) => Counters::decode(&v)?,
        None => Counters::default(),
    };
    for kind in [StrKind::Room, StrKind::Type, StrKind::Skey, StrKind::Event] {
        // Blocks below this one are complete.
        let complete = counters.peek_nid(kind) >> nid_block::BLOCK_BITS;
        let upper = keys::nid_key(kind, nid_block::first_nid(complete));
        let mut lower = keys::nid_key(kind, 0);
        loop {
            let mut items: Vec<(u64, Vec<u8>)> = Vec::new();
            kv.scan_range(Cf::Nids, &lower, &upper, &mut |k, v| {
                items.push((keys::suffix_u64(k, 1, "nids key")?, v.to_vec()));
                Ok(items.len() < BATCH)
            })?;
            let full = items.len() >= BATCH;
            if full {
                // The last block read may go on past the batch: leave it
                // for the next round.
                let last = items.last().map(|(n, _)| nid_block::block_of(*n));
                items.retain(|(n, _)| Some(nid_block::block_of(*n)) != last);
            }
            let Some(last_nid) = items.last().map(|(n, _)| *n) else {
                if full {
                    return Err(Error::internal("a batch of nids held no whole block"));
                }
                break;
            };
            let mut b = Batch::default();
            for texts in items.chunk_by(|(a, _), (b, _)| nid_block::block_of(*a) == nid_block::block_of(*b)) {
                let block = nid_block::block_of(texts.first().map_or(0, |(n, _)| *n));
                for (n, _) in texts {
                    b.delete(Cf::Nids, keys::nid_key(kind, *n).to_vec());
                }
                b.put(
                    Cf::Nids,
                    keys::nid_block_key(kind, block).to_vec(),
                    nid_block::encode(texts.iter().map(|(n, t)| (*n, t.as_slice()))),
                );
            }
            kv.write(b)?;
            if !full {
                break;
            }
            lower = keys::nid_key(kind, nid_block::first_nid(nid_block::block_of(last_nid) + 1));
        }
    }
    Ok(())
}

/// Format 6: hash-form event ids into `event_groups` buckets. First the
/// interned ones (their `strings` entries, with their mappings), then the
/// mapped ones left. Each batch writes the buckets it changed and deletes
/// the entries it moved, so a run interrupted anywhere leaves every id in
/// one place, and the next run moves what is left.
fn buckets(kv: &dyn KvStore) -> Result<()> {
    let e = StrKind::Event as u8;
    let (lo, hi) = (event_key::STANDARD, event_key::URL_SAFE + 1);
    in_batches(kv, Cf::Strings, &[e, lo], &[e, hi], |items, b| {
        let mut moved = Vec::with_capacity(items.len());
        for (k, v) in items {
            if let Some((key, rest)) = event_bucket::split(k.get(1..).unwrap_or_default()) {
                moved.push((k, key, rest, values::decode_string_nid(v)?));
            }
        }
        let olds: Vec<Vec<u8>> = moved.iter().map(|m| event_bucket::join(&m.1, &m.2)).collect();
        let old_groups = kv.multi_get(Cf::EventGroups, &olds)?;
        let mut buckets = read_buckets(kv, moved.iter().map(|m| m.1))?;
        for ((k, key, rest, nid), (old_key, old)) in moved.into_iter().zip(olds.into_iter().zip(old_groups)) {
            let slots = buckets.entry(key).or_default();
            let mut group = old.as_deref().map(values::decode_event_group).transpose()?;
            if let Some(i) = slots
                .iter()
                .position(|s| matches!(s, Slot::Mapped { rest: r, .. } if *r == rest))
            {
                group = group.or(slots.get(i).and_then(Slot::group));
                slots.remove(i);
            }
            if !slots
                .iter()
                .any(|s| matches!(s, Slot::Interned { nid: n, .. } if *n == nid))
            {
                slots.push(Slot::Interned { nid, group });
            }
            if old.is_some() {
                b.delete(Cf::EventGroups, old_key);
            }
            b.delete(Cf::Strings, k.clone());
        }
        write_buckets(b, buckets);
        Ok(())
    })?;
    in_batches(kv, Cf::EventGroups, &[lo], &[hi], |items, b| {
        let mut moved = Vec::with_capacity(items.len());
        for (k, v) in items {
            // Buckets written by earlier batches are in the range too.
            if let Some((key, rest)) = event_bucket::split(k) {
                moved.push((k, key, rest, values::decode_event_group(v)?));
            }
        }
        let mut buckets = read_buckets(kv, moved.iter().map(|m| m.1))?;
        for (k, key, rest, g) in moved {
            let slots = buckets.entry(key).or_default();
            match slots
                .iter_mut()
                .find(|s| matches!(s, Slot::Mapped { rest: r, .. } if *r == rest))
            {
                Some(Slot::Mapped { group, .. }) => *group = g,
                _ => slots.push(Slot::Mapped { rest, group: g }),
            }
            b.delete(Cf::EventGroups, k.clone());
        }
        write_buckets(b, buckets);
        Ok(())
    })
}

/// The buckets `keys` as stored (empty when absent), in one multi-get.
fn read_buckets(
    kv: &dyn KvStore,
    keys: impl Iterator<Item = [u8; event_bucket::KEY_LEN]>,
) -> Result<BTreeMap<[u8; event_bucket::KEY_LEN], Vec<Slot>>> {
    let mut wanted: Vec<[u8; event_bucket::KEY_LEN]> = keys.collect();
    wanted.sort_unstable();
    wanted.dedup();
    let ks: Vec<Vec<u8>> = wanted.iter().map(|k| k.to_vec()).collect();
    let mut out = BTreeMap::new();
    for (key, v) in wanted.into_iter().zip(kv.multi_get(Cf::EventGroups, &ks)?) {
        out.insert(key, event_index::decode_bucket(&key, v.as_deref())?);
    }
    Ok(out)
}

fn write_buckets(b: &mut Batch, buckets: BTreeMap<[u8; event_bucket::KEY_LEN], Vec<Slot>>) {
    for (key, slots) in buckets {
        if !slots.is_empty() {
            b.put(Cf::EventGroups, key.to_vec(), event_bucket::encode(&slots));
        }
    }
}

/// `event_groups` from `event nid (u64 BE) -> group` to `stored id ->
/// group`, and `group_events` from `group + event nid` to `group + part
/// of the stored id`. Old keys are 8 bytes starting with `00` (nids are
/// far below 2^56); new keys never start with `00`.
fn mappings(kv: &dyn KvStore) -> Result<()> {
    in_batches(kv, Cf::EventGroups, &[0], &[1], |items, b| {
        let mut nks = Vec::with_capacity(items.len());
        for (k, _) in items {
            let nid = keys::parse_u64(k, "event_groups key (format 3)")?;
            nks.push(keys::nid_key(StrKind::Event, nid).to_vec());
        }
        for ((k, v), text) in items.iter().zip(kv.multi_get(Cf::Nids, &nks)?) {
            let nid = keys::parse_u64(k, "event_groups key (format 3)")?;
            let at = || format!("nids/E/{nid}");
            let text = text.ok_or_else(|| Error::corrupt("interned string", at(), "missing"))?;
            let text = keys::text_from_bytes(StrKind::Event, &text, at)?;
            let g = values::decode_event_group(v)?;
            let ek = keys::event_key(&text);
            let mut old_reverse = g.to_be_bytes().to_vec();
            old_reverse.extend_from_slice(k);
            b.delete(Cf::EventGroups, k.clone());
            b.delete(Cf::GroupEvents, old_reverse);
            b.put(Cf::GroupEvents, keys::group_event_key(g, &ek), Vec::new());
            b.put(Cf::EventGroups, ek, v.clone());
        }
        Ok(())
    })
}

/// The event nids that records still name: groups' own events and
/// deltas, snapshot sections, current state, and the auth index.
fn interned_events_in_use(kv: &dyn KvStore) -> Result<RoaringTreemap> {
    let mut used = RoaringTreemap::new();
    for cf in [Cf::Groups, Cf::Snapshots, Cf::CurrentState, Cf::Auth] {
        kv.scan_prefix(cf, &[], &mut |k, v| {
            match decode_record(cf, k, v)? {
                Record::Group { record, .. } => {
                    used.insert(record.event);
                    if let crate::format::group::Physical::Delta { delta, .. } = &record.physical {
                        used.extend(delta.iter().filter_map(|e| e.1));
                    }
                    if let Some(d) = &record.logical {
                        used.extend(d.iter().filter_map(|e| e.1));
                    }
                }
                Record::SnapSection { section, .. } => used.extend(section.events.iter().copied()),
                Record::Current { event, .. } => {
                    used.insert(event);
                }
                Record::Auth { event, auth, .. } => {
                    used.insert(event);
                    used.extend(auth);
                }
                _ => {}
            }
            Ok(true)
        })?;
    }
    Ok(used)
}

/// Visits the entries of `cf` in `lower..upper`, highest key first, up to
/// [`BATCH`] at a time; `step` fills a batch that is written before the
/// next entries are read. Entries `step` writes back inside the range are
/// not visited again.
fn in_batches(
    kv: &dyn KvStore,
    cf: Cf,
    lower: &[u8],
    upper: &[u8],
    mut step: impl FnMut(&[(Vec<u8>, Vec<u8>)], &mut Batch) -> Result<()>,
) -> Result<()> {
    let mut upper = upper.to_vec();
    loop {
        let mut items = Vec::new();
        kv.scan_range_rev(cf, lower, &upper, &mut |k, v| {
            items.push((k.to_vec(), v.to_vec()));
            Ok(items.len() < BATCH)
        })?;
        let Some((lowest, _)) = items.last() else {
            return Ok(());
        };
        let lowest = lowest.clone();
        let mut b = Batch::default();
        step(&items, &mut b)?;
        if !b.is_empty() {
            kv.write(b)?;
        }
        if items.len() < BATCH {
            return Ok(());
        }
        upper = lowest;
    }
}
