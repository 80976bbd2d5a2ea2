//! Packs: many records of one family in one row of `mxstate_packs`.
//!
//! A record as its own row costs PostgreSQL a tuple header, a line pointer
//! and an index entry (about 60 bytes) on top of its key and value, which
//! are themselves small (an event mapping is 38 bytes). A pack holds the
//! records of a key range, sorted, prefix-compressed and zstd-compressed:
//!
//! ```text
//! 01 | raw length varint | zstd( count varint | per record: shared varint,
//!                                 suffix length varint, suffix,
//!                                 value length varint, value )
//! ```
//!
//! `shared` is the number of leading bytes the key shares with the
//! previous key (0 for the first). Keys are strictly increasing.

use mxstate_api::{Error, Result};
use mxstate_engine::varint::{put_u64, Reader};

/// The version byte of a pack.
const VERSION: u8 = 1;
/// The largest raw size a pack may claim (a damaged length must not
/// allocate without bound).
const MAX_RAW: u64 = 1 << 26;
/// zstd level of packs written by folding, after writes: fast.
pub const FOLD_LEVEL: i32 = 3;
/// zstd level of packs written by `compact` (repacking): about 3% smaller
/// than level 3 on the 10k-member compare database, for a few seconds of
/// CPU per hundred megabytes; decoding is as fast.
pub const COMPACT_LEVEL: i32 = 19;

/// One record: key and value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Encodes `entries` (strictly increasing keys) as a pack, compressed at
/// zstd `level`.
pub fn encode(entries: &[Entry], level: i32) -> Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(entries.iter().map(|(k, v)| k.len() + v.len() + 3).sum::<usize>() + 4);
    put_u64(&mut raw, entries.len() as u64);
    let mut prev: &[u8] = &[];
    for (k, v) in entries {
        let shared = prev.iter().zip(k.iter()).take_while(|(a, b)| a == b).count();
        let suffix = k.get(shared..).unwrap_or_default();
        put_u64(&mut raw, shared as u64);
        put_u64(&mut raw, suffix.len() as u64);
        raw.extend_from_slice(suffix);
        put_u64(&mut raw, v.len() as u64);
        raw.extend_from_slice(v);
        prev = k;
    }
    let packed = zstd::bulk::compress(&raw, level).map_err(|e| Error::internal(format!("zstd: {e}")))?;
    let mut out = Vec::with_capacity(packed.len() + 6);
    out.push(VERSION);
    put_u64(&mut out, raw.len() as u64);
    out.extend_from_slice(&packed);
    Ok(out)
}

/// A decompressed pack.
pub struct Pack {
    raw: Vec<u8>,
    location: String,
}

impl Pack {
    /// Decompresses `data`, the pack stored at `location` (named in errors).
    pub fn decode(data: &[u8], location: impl Into<String>) -> Result<Pack> {
        let location = location.into();
        let bad = |detail: String| Error::corrupt("pack", location.clone(), detail);
        let mut r = Reader::new(data, "pack");
        let version = r.u8().map_err(|e| bad(e.to_string()))?;
        if version != VERSION {
            return Err(bad(format!("unknown pack version {version}")));
        }
        let len = r.u64().map_err(|e| bad(e.to_string()))?;
        if len > MAX_RAW {
            return Err(bad(format!("raw length {len} exceeds {MAX_RAW}")));
        }
        let raw = zstd::bulk::decompress(r.remaining(), len as usize).map_err(|e| bad(format!("zstd: {e}")))?;
        if raw.len() as u64 != len {
            return Err(bad(format!("{} bytes decompressed, {len} announced", raw.len())));
        }
        Ok(Pack { raw, location })
    }

    fn bad(&self, e: Error) -> Error {
        Error::corrupt("pack", self.location.clone(), e.to_string())
    }

    /// Visits the records in key order with a key buffer reused between
    /// records; stops when `visit` returns false.
    fn walk(&self, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        let mut r = Reader::new(&self.raw, "pack");
        let n = r.count(3).map_err(|e| self.bad(e))?;
        let mut key: Vec<u8> = Vec::new();
        for i in 0..n {
            let shared = r.u64().map_err(|e| self.bad(e))?;
            if shared > key.len() as u64 {
                return Err(self.bad(r.error(format!("record {i} shares {shared} bytes of a {}-byte key", key.len()))));
            }
            let suffix_len = r.u64().map_err(|e| self.bad(e))?;
            let suffix = r
                .bytes(usize::try_from(suffix_len).unwrap_or(usize::MAX))
                .map_err(|e| self.bad(e))?;
            let before = std::mem::take(&mut key);
            key.extend_from_slice(before.get(..shared as usize).unwrap_or_default());
            key.extend_from_slice(suffix);
            if i > 0 && key.as_slice() <= before.as_slice() {
                return Err(self.bad(r.error(format!("record {i}'s key does not follow the previous one"))));
            }
            let value_len = r.u64().map_err(|e| self.bad(e))?;
            let value = r
                .bytes(usize::try_from(value_len).unwrap_or(usize::MAX))
                .map_err(|e| self.bad(e))?;
            if !visit(&key, value) {
                return Ok(());
            }
        }
        r.finish().map_err(|e| self.bad(e))
    }

    /// The records, in key order.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        self.walk(&mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            true
        })?;
        Ok(out)
    }

    /// The records with `lower <= key < upper` (no upper bound: `None`).
    pub fn entries_in(&self, lower: &[u8], upper: Option<&[u8]>) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        self.walk(&mut |k, v| {
            if upper.is_some_and(|u| k >= u) {
                return false;
            }
            if k >= lower {
                out.push((k.to_vec(), v.to_vec()));
            }
            true
        })?;
        Ok(out)
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut found = None;
        self.walk(&mut |k, v| match k.cmp(key) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Equal => {
                found = Some(v.to_vec());
                false
            }
            std::cmp::Ordering::Greater => false,
        })?;
        Ok(found)
    }
}

/// The most bytes a pack's `data` may take: its row then stays in its
/// heap page. `mxstate_packs` sets `toast_tuple_target` to 8,160 (the
/// default, about 2,032, would move any larger value to the TOAST table
/// in 2 KB chunks, each a row of its own with an index entry, read back
/// with an index lookup per chunk); a pack of this size and its row
/// header fill one 8 KB page. A single larger record is a pack of its own
/// and is TOASTed.
pub const MAX_STORED: usize = 8000;

/// Records of `entries` from the first whose keys and values (as `split`
/// counts them) fit in `budget` bytes: at least one.
fn prefix_within(entries: &[Entry], budget: usize) -> usize {
    let mut bytes = 0;
    let n = entries
        .iter()
        .take_while(|(k, v)| {
            bytes += k.len() + v.len() + 3;
            bytes <= budget
        })
        .count();
    n.max(1)
}

/// `entries` cut into packs of at most `target` bytes of keys and values
/// whose encodings fill `MAX_STORED` as closely as a few trials find: a
/// first cut by the budget, then cuts at the raw size the compression
/// ratio seen so far says fits, keeping the largest that fits (a single
/// record too large is a pack of its own). The runs and their encodings.
pub fn encode_runs(entries: Vec<Entry>, target: usize, level: i32) -> Result<Vec<(Vec<Entry>, Vec<u8>)>> {
    let aim = MAX_STORED * 97 / 100;
    let mut out = Vec::new();
    let mut rest: &[Entry] = &entries;
    // Encoded bytes per raw byte, as last seen.
    let mut ratio = 1.0_f64;
    while !rest.is_empty() {
        let mut best: Option<(usize, Vec<u8>)> = None;
        let mut tried = Vec::new();
        for _ in 0..6 {
            let budget = ((aim as f64 / ratio) as usize).min(target.max(1));
            let k = prefix_within(rest, budget);
            if tried.contains(&k) {
                break;
            }
            tried.push(k);
            let data = encode(rest.get(..k).unwrap_or_default(), level)?;
            let raw: usize = rest.iter().take(k).map(|(a, b)| a.len() + b.len() + 3).sum();
            let len = data.len();
            ratio = (len as f64 / raw.max(1) as f64).max(1e-3);
            let fits = len <= MAX_STORED || k == 1;
            if fits && best.as_ref().is_none_or(|(b, _)| k > *b) {
                best = Some((k, data));
            }
            if fits && (k == rest.len() || len >= aim * 95 / 100 || budget >= target) {
                break;
            }
        }
        let (k, data) = match best {
            Some(b) => b,
            None => (1, encode(rest.get(..1).unwrap_or_default(), level)?),
        };
        out.push((rest.get(..k).unwrap_or_default().to_vec(), data));
        rest = rest.get(k..).unwrap_or_default();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sorted(mut m: Vec<Entry>) -> Vec<Entry> {
        m.sort();
        m.dedup_by(|a, b| a.0 == b.0);
        m
    }

    proptest! {
        #[test]
        fn packs_give_back_their_records(
            raw in proptest::collection::vec(
                (proptest::collection::vec(0u8..4, 0..6), proptest::collection::vec(any::<u8>(), 0..9)), 0..40),
            probe in proptest::collection::vec(0u8..4, 0..6),
        ) {
            let entries = sorted(raw);
            let pack = Pack::decode(&encode(&entries, FOLD_LEVEL).unwrap(), "test").unwrap();
            prop_assert_eq!(pack.entries().unwrap(), entries.clone());
            let want = entries.iter().find(|(k, _)| *k == probe).map(|(_, v)| v.clone());
            prop_assert_eq!(pack.get(&probe).unwrap(), want);
            let upper = vec![2u8];
            let inside: Vec<Entry> = entries.iter().filter(|(k, _)| *k >= probe && *k < upper).cloned().collect();
            prop_assert_eq!(pack.entries_in(&probe, Some(&upper)).unwrap(), inside);
            let encoded = encode_runs(entries.clone(), 1 << 20, FOLD_LEVEL).unwrap();
            prop_assert!(encoded.iter().all(|(r, d)| d.len() <= MAX_STORED || r.len() == 1));
            prop_assert_eq!(encoded.into_iter().flat_map(|(r, _)| r).collect::<Vec<_>>(), entries.clone());
            let runs = encode_runs(entries.clone(), 10, COMPACT_LEVEL).unwrap();
            prop_assert!(runs.iter().all(|(r, _)| !r.is_empty()));
            prop_assert!(runs.iter().all(|(r, _)| r.len() == 1 || r.iter().map(|(k, v)| k.len() + v.len() + 3).sum::<usize>() <= 10));
            prop_assert_eq!(runs.into_iter().flat_map(|(r, _)| r).collect::<Vec<_>>(), entries);
        }

        #[test]
        fn damaged_packs_are_errors_not_panics(
            raw in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 1..6), any::<u8>()), 1..20),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
        ) {
            let entries = sorted(raw.into_iter().map(|(k, v)| (k, vec![v])).collect());
            let data = encode(&entries, FOLD_LEVEL).unwrap();
            let short = &data[..cut.index(data.len())];
            prop_assert!(Pack::decode(short, "t").and_then(|p| p.entries()).is_err());
            let mut bent = data.clone();
            let i = flip.index(bent.len());
            bent[i] ^= 0x5a;
            // A flipped byte decodes to an error or to records; never a panic.
            let _ = Pack::decode(&bent, "t").and_then(|p| p.entries());
        }
    }

    #[test]
    fn incompressible_records_are_cut_to_fill_a_page() {
        // 2,400 records of 40 pseudo-random bytes: about 108 KB that zstd cannot shrink.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let entries: Vec<Entry> = (0u32..2400)
            .map(|i| {
                let v = (0..40)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x.to_le_bytes()[0]
                    })
                    .collect();
                (i.to_be_bytes().to_vec(), v)
            })
            .collect();
        let runs = encode_runs(entries.clone(), 1 << 20, FOLD_LEVEL).unwrap();
        assert!(runs.len() >= 14 && runs.len() <= 16, "{} runs", runs.len());
        assert!(runs.iter().all(|(_, d)| d.len() <= MAX_STORED));
        // Runs are cut near the threshold: all but the last of each cut fill most of it.
        let sizes: Vec<usize> = runs.iter().map(|(_, d)| d.len()).collect();
        assert!(
            sizes.iter().filter(|&&n| n > MAX_STORED * 85 / 100).count() >= sizes.len() - 2,
            "{sizes:?}"
        );
        for (run, data) in &runs {
            assert_eq!(&Pack::decode(data, "t").unwrap().entries().unwrap(), run);
        }
        assert_eq!(runs.into_iter().flat_map(|(r, _)| r).collect::<Vec<_>>(), entries);
    }

    #[test]
    fn unsorted_records_are_damage() {
        let mut raw = Vec::new();
        put_u64(&mut raw, 2);
        for k in [b"b", b"a"] {
            put_u64(&mut raw, 0);
            put_u64(&mut raw, 1);
            raw.extend_from_slice(k);
            put_u64(&mut raw, 0);
        }
        let mut data = vec![VERSION];
        put_u64(&mut data, raw.len() as u64);
        data.extend_from_slice(&zstd::bulk::compress(&raw, 1).unwrap());
        let err = Pack::decode(&data, "cf 3 at 00").unwrap().entries().unwrap_err();
        assert_eq!(err.kind(), mxstate_api::ErrorKind::Corrupt);
        assert!(err.to_string().contains("cf 3 at 00"), "{err}");
    }
}
