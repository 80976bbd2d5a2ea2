//! Interned strings: `text -> nid` and `nid -> text`, through the caches.

use std::sync::Arc;

use crate::format::event_key;
use crate::format::keys::{self, StrKind};
use crate::format::nid_block;
use crate::format::values;
use crate::kv::{Cf, KvStore};
use mxstate_api::{Error, PackedTexts, Result};

use super::cache::Caches;

/// The nid of `s`, if interned.
pub fn lookup(kv: &dyn KvStore, caches: &Caches, kind: StrKind, s: &str) -> Result<Option<u64>> {
    if let Some(n) = caches.nid(kind, s) {
        return Ok(Some(n));
    }
    if kind == StrKind::Event && crate::format::event_key::hash_form(s).is_some() {
        // Format 6: in its `event_groups` bucket, not in `strings`.
        return super::event_index::interned_nid(kv, caches, s);
    }
    let Some(v) = kv.get(Cf::Strings, &keys::string_key(kind, s))? else {
        return Ok(None);
    };
    let n = values::decode_string_nid(&v)?;
    caches.remember(kind, n, Arc::from(s));
    Ok(Some(n))
}

fn decode_text(kind: StrKind, nid: u64, bytes: &[u8]) -> Result<Arc<str>> {
    let at = || format!("nids/{}/{nid}", kind as u8 as char);
    match kind {
        StrKind::Event => crate::format::event_key::decode_arc(bytes, at),
        _ => std::str::from_utf8(bytes)
            .map(Arc::from)
            .map_err(|_| Error::corrupt("interned string", at(), "not UTF-8")),
    }
}

/// Parses the packed block `block` of `kind`'s texts, naming it in the
/// error.
fn parse_block(kind: StrKind, block: u64, value: &[u8]) -> Result<nid_block::Block<'_>> {
    nid_block::Block::parse(value).map_err(|e| {
        Error::corrupt(
            "interned strings block",
            format!("nids/{}/block {block}", (kind as u8).to_ascii_lowercase() as char),
            e.to_string(),
        )
    })
}

fn missing(kind: StrKind, nid: u64) -> Error {
    Error::corrupt(
        "interned string",
        format!("nids/{}/{nid}", kind as u8 as char),
        "missing",
    )
}

/// The texts of `nids`, in order. Misses are read in one multi-get of the
/// packed blocks they fall in, and one of single keys for the nids of
/// blocks not packed yet; each is remembered in the text cache.
pub fn resolve(kv: &dyn KvStore, caches: &Caches, kind: StrKind, nids: &[u64]) -> Result<Vec<Arc<str>>> {
    resolve_with(kv, caches, kind, nids, true)
}

/// [`resolve`] for a caller that caches what it builds from the texts (a
/// snapshot section's table), packed in one buffer (one allocation for
/// the column, not one per text). The texts are read from their packed
/// blocks without probing the text cache, and are not remembered one by
/// one: a section's texts are mostly in no other cached table, and probing
/// tens of thousands of misses cost a tenth of a cold full state. Each
/// block's value is decoded where the store holds it (no copy). The nids
/// of blocks not packed yet take [`resolve`]'s path (the cache, then
/// single keys).
pub fn resolve_packed(kv: &dyn KvStore, caches: &Caches, kind: StrKind, nids: &[u64]) -> Result<PackedTexts> {
    let n = u32::try_from(nids.len())
        .map_err(|_| Error::corrupt("interned strings", "a table", "more than 2^32 entries"))?;
    let at = |i: u32| nids.get(i as usize).copied().unwrap_or_default();
    // Positions in nid order (a section's state keys already are).
    let mut order: Vec<u32> = (0..n).collect();
    if !nids.is_sorted() {
        order.sort_unstable_by_key(|&i| at(i));
    }
    let runs: Vec<&[u32]> = order
        .chunk_by(|&a, &b| nid_block::block_of(at(a)) == nid_block::block_of(at(b)))
        .collect();
    let block_of_run = |r: &[u32]| nid_block::block_of(at(r.first().copied().unwrap_or_default()));
    let ks: Vec<Vec<u8>> = runs
        .iter()
        .map(|r| keys::nid_block_key(kind, block_of_run(r)).to_vec())
        .collect();
    // An event id of the hash form is 44 bytes; state keys are mostly user
    // ids (the buffer grows when they are longer, and is trimmed after).
    let per_text = if kind == StrKind::Event { 44 } else { 24 };
    let mut out = PackedTexts::new(nids.len(), per_text * nids.len());
    let too_large = || Error::internal(format!("a table's texts of kind {} pass 4 GiB", kind as u8 as char));
    let mut scratch = String::new();
    kv.multi_get_visit(Cf::Nids, &ks, &mut |r, v| {
        let Some(run) = runs.get(r) else { return Ok(()) };
        let block = parse_block(kind, block_of_run(run), v)?;
        let mut last: Option<(u64, usize)> = None;
        for &i in *run {
            let (i, nid) = (i as usize, at(i));
            let set = match last {
                Some((l, j)) if l == nid => out.set_same(i, j),
                _ => {
                    let bytes = block.text(nid).ok_or_else(|| missing(kind, nid))?;
                    last = Some((nid, i));
                    let where_ = || format!("nids/{}/{nid}", kind as u8 as char);
                    if kind == StrKind::Event {
                        scratch.clear();
                        event_key::decode_into(bytes, &mut scratch, where_)?;
                        out.set(i, &scratch)
                    } else {
                        let text = std::str::from_utf8(bytes)
                            .map_err(|_| Error::corrupt("interned string", where_(), "not UTF-8"))?;
                        out.set(i, text)
                    }
                }
            };
            if !set {
                return Err(too_large());
            }
        }
        Ok(())
    })?;
    // Blocks not packed yet (or packed since: `resolve_with` looks again).
    let unpacked: Vec<usize> = (0..out.len()).filter(|&i| !out.is_set(i)).collect();
    if !unpacked.is_empty() {
        let wanted: Vec<u64> = unpacked
            .iter()
            .map(|&i| nids.get(i).copied().unwrap_or_default())
            .collect();
        for (i, s) in unpacked
            .into_iter()
            .zip(resolve_with(kv, caches, kind, &wanted, false)?)
        {
            if !out.set(i, &s) {
                return Err(too_large());
            }
        }
    }
    out.shrink_to_fit();
    Ok(out)
}

fn resolve_with(
    kv: &dyn KvStore,
    caches: &Caches,
    kind: StrKind,
    nids: &[u64],
    remember: bool,
) -> Result<Vec<Arc<str>>> {
    let mut out: Vec<Option<Arc<str>>> = nids.iter().map(|&n| caches.text(kind, n)).collect();
    let mut missing_at: Vec<usize> = (0..nids.len()).filter(|&i| out[i].is_none()).collect();
    if !missing_at.is_empty() {
        // In nid order, to hand each text read to its places in one pass:
        // moved to the last of them, shared with the others.
        missing_at.sort_by_key(|&i| nids[i]);
        let found = read_texts(kv, kind, missing_at.iter().map(|&i| nids[i]))?;
        let mut places = missing_at.into_iter().peekable();
        for (nid, s) in found {
            let mut first = None;
            while let Some(i) = places.next_if(|&i| nids[i] == nid) {
                if let Some(prev) = first.replace(i) {
                    out[prev] = Some(s.clone());
                }
            }
            if let Some(i) = first {
                if remember {
                    caches.remember_text(kind, nid, s.clone());
                }
                out[i] = Some(s);
            }
        }
        if let Some(i) = places.next() {
            return Err(missing(kind, nids[i]));
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, s)| s.ok_or_else(|| Error::corrupt("interned string", format!("#{i}"), "unresolved")))
        .collect()
}

/// Reads the texts of `nids` from the store: blocks first, then single
/// keys for the nids whose block is not written. A nid missing from both
/// is looked for in its block once more: the writer packs a block (its
/// single keys deleted in the same batch) while readers run. Returns
/// `(nid, text)` sorted by nid.
fn read_texts(kv: &dyn KvStore, kind: StrKind, nids: impl Iterator<Item = u64>) -> Result<Vec<(u64, Arc<str>)>> {
    let mut wanted: Vec<u64> = nids.collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found = Vec::with_capacity(wanted.len());
    let singles = from_blocks(kv, kind, &wanted, &mut found)?;
    if singles.is_empty() {
        // Blocks may be visited in any order.
        if !found.is_sorted_by_key(|(n, _)| *n) {
            found.sort_unstable_by_key(|(n, _)| *n);
        }
        return Ok(found);
    }
    let ks: Vec<Vec<u8>> = singles.iter().map(|&n| keys::nid_key(kind, n).to_vec()).collect();
    let mut moved = Vec::new();
    for (&nid, v) in singles.iter().zip(kv.multi_get(Cf::Nids, &ks)?) {
        match v {
            Some(v) => found.push((nid, decode_text(kind, nid, &v)?)),
            None => moved.push(nid),
        }
    }
    if !moved.is_empty() {
        let still = from_blocks(kv, kind, &moved, &mut found)?;
        if let Some(&nid) = still.first() {
            return Err(missing(kind, nid));
        }
    }
    found.sort_unstable_by_key(|(n, _)| *n);
    Ok(found)
}

/// Reads the blocks of `nids` (sorted) into `found`; returns the nids
/// whose block is absent. A nid absent from its present block is an error.
fn from_blocks(kv: &dyn KvStore, kind: StrKind, nids: &[u64], found: &mut Vec<(u64, Arc<str>)>) -> Result<Vec<u64>> {
    let runs: Vec<&[u64]> = nids
        .chunk_by(|&a, &b| nid_block::block_of(a) == nid_block::block_of(b))
        .collect();
    let blocks: Vec<u64> = runs
        .iter()
        .map(|r| nid_block::block_of(r.first().copied().unwrap_or_default()))
        .collect();
    let ks: Vec<Vec<u8>> = blocks.iter().map(|&b| keys::nid_block_key(kind, b).to_vec()).collect();
    let mut present = vec![false; runs.len()];
    kv.multi_get_visit(Cf::Nids, &ks, &mut |r, v| {
        let (Some(&b), Some(in_block), Some(seen)) = (blocks.get(r), runs.get(r), present.get_mut(r)) else {
            return Ok(());
        };
        *seen = true;
        let block = parse_block(kind, b, v)?;
        for &nid in *in_block {
            let text = block.text(nid).ok_or_else(|| missing(kind, nid))?;
            found.push((nid, decode_text(kind, nid, text)?));
        }
        Ok(())
    })?;
    let mut absent = Vec::new();
    for (in_block, seen) in runs.iter().zip(present) {
        if !seen {
            absent.extend_from_slice(in_block);
        }
    }
    Ok(absent)
}

/// The stored text of one nid (the checker's view): its single key, else
/// its slot in its block. Read in that order, a concurrent packing of the
/// block cannot hide it.
pub fn stored_text(kv: &dyn KvStore, kind: StrKind, nid: u64) -> Result<Option<Vec<u8>>> {
    if let Some(v) = kv.get(Cf::Nids, &keys::nid_key(kind, nid))? {
        return Ok(Some(v));
    }
    let Some(v) = kv.get(Cf::Nids, &keys::nid_block_key(kind, nid_block::block_of(nid)))? else {
        return Ok(None);
    };
    Ok(parse_block(kind, nid_block::block_of(nid), &v)?
        .text(nid)
        .map(<[u8]>::to_vec))
}

/// The text of one nid.
pub fn resolve_one(kv: &dyn KvStore, caches: &Caches, kind: StrKind, nid: u64) -> Result<Arc<str>> {
    resolve(kv, caches, kind, &[nid])?
        .pop()
        .ok_or_else(|| Error::corrupt("interned string", format!("nid {nid}"), "unresolved"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::format::counters::Counters;
    use crate::format::keys::nid_block_key;
    use crate::kv::{Batch, MemKv, Visit};
    use crate::write::txn::{Txn, WriterMemory};

    fn text(kind: StrKind, i: u64) -> String {
        match kind {
            StrKind::Event => format!("$event{i}:example.org"),
            _ => format!("skey {i} ü"),
        }
    }

    /// `nids` keys: `(single, blocks)`.
    fn keys_of(kv: &MemKv) -> (usize, usize) {
        let (mut single, mut blocks) = (0, 0);
        kv.scan_prefix(Cf::Nids, &[], &mut |k, _| {
            if k[0].is_ascii_uppercase() {
                single += 1;
            } else {
                blocks += 1;
            }
            Ok(true)
        })
        .unwrap();
        (single, blocks)
    }

    #[test]
    fn texts_move_into_blocks_as_the_counter_passes_them() {
        // The writer's memory of unpacked texts: never kept (each block's
        // earlier texts read back), kept as the engine keeps it, or lost
        // every third transaction (a restart).
        for keep in [|_: usize| false, |_: usize| true, |r: usize| r % 3 != 2] {
            texts_move_into_blocks(keep);
        }
    }

    fn texts_move_into_blocks(keep: fn(usize) -> bool) {
        let kv = MemKv::default();
        let caches = Caches::new(1 << 20);
        let mut counters = Counters::default();
        let mut memory = WriterMemory::default();
        let mut n = 0u64;
        // Transactions of 1 to 150 strings of two kinds: blocks are
        // completed by one transaction, by several, and many at once.
        for (round, size) in [1u64, 5, 60, 1, 1, 150, 3, 64, 64, 17, 130, 40, 30, 63, 1]
            .into_iter()
            .enumerate()
        {
            let kept = if keep(round) { memory } else { WriterMemory::default() };
            let mut txn = Txn::new(&kv, &caches, counters, kept);
            for i in n..n + size {
                assert_eq!(txn.intern(StrKind::Event, &text(StrKind::Event, i)).unwrap(), i);
                assert_eq!(txn.intern(StrKind::Skey, &text(StrKind::Skey, i)).unwrap(), i);
            }
            let (batch, next, after, _) = txn.finish().unwrap();
            kv.write(batch).unwrap();
            counters = next;
            memory = after;
            n += size;
            // Read through empty caches: every text comes from the store.
            let fresh = Caches::new(1 << 20);
            for kind in [StrKind::Event, StrKind::Skey] {
                let nids: Vec<u64> = (0..n).rev().collect();
                let got = resolve(&kv, &fresh, kind, &nids).unwrap();
                for (&nid, s) in nids.iter().zip(&got) {
                    assert_eq!(&**s, text(kind, nid), "round {round}");
                }
                assert_eq!(
                    stored_text(&kv, kind, n - 1).unwrap(),
                    Some(keys::text_bytes(kind, &text(kind, n - 1)).into_owned())
                );
                assert_eq!(stored_text(&kv, kind, n).unwrap(), None);
            }
            // Repeated nids, some already cached, in no order.
            let some = Caches::new(1 << 20);
            resolve(&kv, &some, StrKind::Skey, &[n / 2]).unwrap();
            let mixed = [n - 1, 0, n / 2, n - 1, n / 3, 0, n / 2];
            let got = resolve(&kv, &some, StrKind::Skey, &mixed).unwrap();
            let want: Vec<String> = mixed.iter().map(|&i| text(StrKind::Skey, i)).collect();
            assert_eq!(got.iter().map(|s| s.to_string()).collect::<Vec<_>>(), want);
            let full = n / nid_block::BLOCK_LEN;
            let single = n % nid_block::BLOCK_LEN;
            assert_eq!(
                keys_of(&kv),
                (2 * single as usize, 2 * full as usize),
                "round {round}, {n} strings"
            );
        }
    }

    /// A store whose first read of blocks sees none: the reader looked
    /// before the writer packed them, and their single keys are gone when
    /// it looks for those.
    struct PackedMeanwhile {
        kv: MemKv,
        stale: AtomicBool,
    }

    impl KvStore for PackedMeanwhile {
        fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
            self.kv.get(cf, key)
        }
        fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
            let blocks = keys.first().is_some_and(|k| k[0].is_ascii_lowercase());
            if blocks && self.stale.swap(false, Ordering::SeqCst) {
                return Ok(vec![None; keys.len()]);
            }
            self.kv.multi_get(cf, keys)
        }
        fn write(&self, batch: Batch) -> Result<()> {
            self.kv.write(batch)
        }
        fn sync(&self) -> Result<()> {
            self.kv.sync()
        }
        fn scan_prefix(&self, cf: Cf, prefix: &[u8], visit: &mut Visit<'_>) -> Result<()> {
            self.kv.scan_prefix(cf, prefix, visit)
        }
        fn scan_range_rev(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
            self.kv.scan_range_rev(cf, lower, upper, visit)
        }
        fn last_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
            self.kv.last_with_prefix(cf, prefix)
        }
        fn location(&self) -> String {
            "test".into()
        }
    }

    #[test]
    fn a_block_packed_between_two_reads_is_found() {
        let kv = PackedMeanwhile {
            kv: MemKv::default(),
            stale: AtomicBool::new(false),
        };
        let caches = Caches::new(1 << 20);
        let mut txn = Txn::new(&kv, &caches, Counters::default(), WriterMemory::default());
        for i in 0..70 {
            txn.intern(StrKind::Skey, &text(StrKind::Skey, i)).unwrap();
        }
        let (batch, _, _, _) = txn.finish().unwrap();
        kv.write(batch).unwrap();
        assert!(kv.get(Cf::Nids, &nid_block_key(StrKind::Skey, 0)).unwrap().is_some());
        kv.stale.store(true, Ordering::SeqCst);
        let got = resolve(&kv, &Caches::new(1 << 20), StrKind::Skey, &[3, 65, 10]).unwrap();
        assert!(!kv.stale.load(Ordering::SeqCst), "the stale read was not made");
        let want: Vec<String> = [3, 65, 10].iter().map(|&i| text(StrKind::Skey, i)).collect();
        assert_eq!(got.iter().map(|s| s.to_string()).collect::<Vec<_>>(), want);
        // A nid in no block and no single key is an error, not a panic.
        kv.stale.store(true, Ordering::SeqCst);
        assert!(resolve(&kv, &Caches::new(1 << 20), StrKind::Skey, &[3, 70]).is_err());
    }
}
