//! Packs: many records of one family in one row of `mxstate_packs`.
//!
//! A record as its own row costs PostgreSQL a tuple header, a line pointer
//! and an index entry (about 60 bytes) on top of its key and value, which
//! are themselves small (an event mapping is 38 bytes). A pack holds the
//! records of a key range, sorted, prefix-compressed and zstd-compressed,
//! column by column:
//!
//! ```text
//! 02 | raw length varint | zstd( count varint
//!                                | per record: shared varint
//!                                | per record: suffix length varint
//!                                | per record: value length varint
//!                                | the suffixes, in order | the values, in order )
//! ```
//!
//! `shared` is the number of leading bytes the key shares with the
//! previous key (0 for the first). Keys are strictly increasing. The
//! lengths come first, apart from the bytes, so that zstd sees runs of
//! alike numbers instead of numbers scattered among hash bytes it cannot
//! compress: on the event mapping (33-byte hash ids) this made the packs
//! 6% smaller than version 1.
//!
//! Version 1, written by the first builds with packs, interleaved the
//! columns (`count | per record: shared, suffix length, suffix, value
//! length, value`); it is still read, and `compact` rewrites it.

use std::ops::Range;

use mxstate_api::{Error, Result};
use mxstate_engine::varint::{put_u64, Reader};

/// The version byte of the packs written now (columns apart).
const VERSION: u8 = 2;
/// The version byte of interleaved packs, still read.
const VERSION_INTERLEAVED: u8 = 1;
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
    let bytes: usize = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
    let mut raw = Vec::with_capacity(bytes + 3 * entries.len() + 4);
    put_u64(&mut raw, entries.len() as u64);
    let mut suffixes = Vec::with_capacity(bytes);
    let mut values = Vec::with_capacity(bytes);
    let mut prev: &[u8] = &[];
    for (k, _) in entries {
        let shared = prev.iter().zip(k.iter()).take_while(|(a, b)| a == b).count();
        put_u64(&mut raw, shared as u64);
        suffixes.extend_from_slice(k.get(shared..).unwrap_or_default());
        prev = k;
    }
    prev = &[];
    for (k, _) in entries {
        let shared = prev.iter().zip(k.iter()).take_while(|(a, b)| a == b).count();
        put_u64(&mut raw, (k.len() - shared) as u64);
        prev = k;
    }
    for (_, v) in entries {
        put_u64(&mut raw, v.len() as u64);
        values.extend_from_slice(v);
    }
    raw.extend_from_slice(&suffixes);
    raw.extend_from_slice(&values);
    let packed = zstd::bulk::compress(&raw, level).map_err(|e| Error::internal(format!("zstd: {e}")))?;
    let mut out = Vec::with_capacity(packed.len() + 6);
    out.push(VERSION);
    put_u64(&mut out, raw.len() as u64);
    out.extend_from_slice(&packed);
    Ok(out)
}

/// Where one record's parts are in a decompressed pack.
struct Rec {
    /// Leading bytes shared with the previous key.
    shared: usize,
    suffix: Range<usize>,
    value: Range<usize>,
}

/// A decompressed pack.
pub struct Pack {
    raw: Vec<u8>,
    recs: Vec<Rec>,
    location: String,
}

impl Pack {
    /// Decompresses `data`, the pack stored at `location` (named in errors).
    pub fn decode(data: &[u8], location: impl Into<String>) -> Result<Pack> {
        let location = location.into();
        let bad = |detail: String| Error::corrupt("pack", location.clone(), detail);
        let mut r = Reader::new(data, "pack");
        let version = r.u8().map_err(|e| bad(e.to_string()))?;
        if version != VERSION && version != VERSION_INTERLEAVED {
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
        let recs = if version == VERSION {
            columns(&raw)
        } else {
            interleaved(&raw)
        }
        .map_err(|e| bad(e.to_string()))?;
        Ok(Pack { raw, recs, location })
    }

    fn bad(&self, detail: String) -> Error {
        Error::corrupt("pack", self.location.clone(), detail)
    }

    /// Visits the records in key order with a key buffer reused between
    /// records; stops when `visit` returns false.
    fn walk(&self, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        let mut key: Vec<u8> = Vec::new();
        for (i, rec) in self.recs.iter().enumerate() {
            if rec.shared > key.len() {
                return Err(self.bad(format!(
                    "record {i} shares {} bytes of a {}-byte key",
                    rec.shared,
                    key.len()
                )));
            }
            let (Some(suffix), Some(value)) = (self.raw.get(rec.suffix.clone()), self.raw.get(rec.value.clone()))
            else {
                return Err(self.bad(format!("record {i} lies outside the pack")));
            };
            if i > 0
                && suffix
                    .first()
                    .is_none_or(|&b| key.get(rec.shared).is_some_and(|&was| b <= was))
            {
                return Err(self.bad(format!("record {i}'s key does not follow the previous one")));
            }
            key.truncate(rec.shared);
            key.extend_from_slice(suffix);
            if !visit(&key, value) {
                return Ok(());
            }
        }
        Ok(())
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

/// The records of a version 2 pack: the three columns of lengths, then
/// the suffixes and values they measure.
fn columns(raw: &[u8]) -> Result<Vec<Rec>> {
    let mut r = Reader::new(raw, "pack");
    let n = r.count(3)?;
    let mut lens = Vec::with_capacity(n * 3);
    for _ in 0..n * 3 {
        lens.push(usize::try_from(r.u64()?).unwrap_or(usize::MAX));
    }
    let mut at = raw.len() - r.remaining().len();
    let mut recs = Vec::with_capacity(n);
    for i in 0..n {
        let (shared, len) = (lens[i], lens[n + i]);
        let end = at
            .checked_add(len)
            .filter(|&e| e <= raw.len())
            .ok_or_else(|| r.error(format!("record {i}'s key suffix runs past the end")))?;
        recs.push(Rec {
            shared,
            suffix: at..end,
            value: 0..0,
        });
        at = end;
    }
    for (i, rec) in recs.iter_mut().enumerate() {
        let len = lens[2 * n + i];
        let end = at
            .checked_add(len)
            .filter(|&e| e <= raw.len())
            .ok_or_else(|| r.error(format!("record {i}'s value runs past the end")))?;
        rec.value = at..end;
        at = end;
    }
    if at != raw.len() {
        return Err(r.error(format!("{} bytes after the last value", raw.len() - at)));
    }
    Ok(recs)
}

/// The records of a version 1 pack (each record's lengths and bytes together).
fn interleaved(raw: &[u8]) -> Result<Vec<Rec>> {
    let mut r = Reader::new(raw, "pack");
    let n = r.count(3)?;
    let mut recs = Vec::with_capacity(n);
    for _ in 0..n {
        let shared = usize::try_from(r.u64()?).unwrap_or(usize::MAX);
        let len = usize::try_from(r.u64()?).unwrap_or(usize::MAX);
        let start = raw.len() - r.remaining().len();
        r.bytes(len)?;
        let suffix = start..start + len;
        let len = usize::try_from(r.u64()?).unwrap_or(usize::MAX);
        let start = raw.len() - r.remaining().len();
        r.bytes(len)?;
        recs.push(Rec {
            shared,
            suffix,
            value: start..start + len,
        });
    }
    r.finish()?;
    Ok(recs)
}

/// The largest row PostgreSQL keeps in a heap page (`MaxHeapTupleSize`
/// for 8 KB pages: the page less its 24-byte header and one 4-byte line
/// pointer, rounded down to 8). `mxstate_packs` sets `toast_tuple_target`
/// to this (the default, about 2,032, would move any larger value to the
/// TOAST table in 2 KB chunks, each a row of its own with an index entry,
/// read back with an index lookup per chunk).
const MAX_ROW: usize = 8160;
/// What a pack's row takes besides `lo`'s bytes and `data`'s: the tuple
/// header (24), `cf` (2), `lo`'s length header (1, or 4 from 127 bytes),
/// alignment before `n` (up to 3), `n` (4), alignment before `data` (up
/// to 3) and `data`'s length header (4): at most 44.
const ROW_OVERHEAD: usize = 44;

/// The most bytes the `data` of a pack stored under a `lo` of `lo_len`
/// bytes may take for its row to stay in one heap page: one pack a page,
/// filled (8,083 bytes under a 33-byte event key). A single record larger
/// than that is a pack of its own, TOASTed.
pub fn stored_limit(lo_len: usize) -> usize {
    MAX_ROW.saturating_sub(ROW_OVERHEAD + lo_len).max(MIN_LIMIT)
}

/// `stored_limit` for absurdly long keys: such a pack is TOASTed rather
/// than cut into packs of a record each.
const MIN_LIMIT: usize = 2048;

/// How close to its limit a pack is cut before the search stops: 1.5%
/// (at most 121 bytes of a page left empty).
const CLOSE_ENOUGH: f64 = 0.985;

/// Trials (encodings) spent on one cut at most.
const TRIALS: usize = 8;

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
/// whose encodings fill their row's page ([`stored_limit`]) as closely as
/// a few trials find. The first pack will be stored under a `lo` of
/// `first_lo_len` bytes, the others under their first key. A cut starts
/// from the raw size the compression ratio seen so far says fits, then
/// narrows the bracket between the longest run that fits and the
/// shortest that does not, until the pack is within 1.5% of its limit,
/// the bracket closes or [`TRIALS`] encodings were made (a single record
/// too large is a pack of its own). The runs and their encodings.
pub fn encode_runs(
    entries: Vec<Entry>,
    first_lo_len: usize,
    target: usize,
    level: i32,
) -> Result<Vec<(Vec<Entry>, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut rest: &[Entry] = &entries;
    // Encoded bytes per raw byte, as last seen.
    let mut ratio = 1.0_f64;
    let raw_of = |run: &[Entry]| run.iter().map(|(a, b)| a.len() + b.len() + 3).sum::<usize>();
    while !rest.is_empty() {
        let lo_len = if out.is_empty() {
            first_lo_len
        } else {
            rest.first().map_or(0, |(k, _)| k.len())
        };
        let limit = stored_limit(lo_len);
        // The most records the raw cap allows, and the bracket: `fits`
        // records are known to fit (with their encoding), `over` not to.
        let most = prefix_within(rest, target.max(1));
        let mut best: Option<(usize, Vec<u8>)> = None;
        let mut over = most + 1;
        for _ in 0..TRIALS {
            let fits = best.as_ref().map_or(0, |(k, _)| *k);
            if over <= fits + 1 {
                break;
            }
            let guess = prefix_within(rest, (limit as f64 * (CLOSE_ENOUGH + 1.0) / 2.0 / ratio) as usize).min(most);
            // Inside the bracket; its middle when the guess falls outside.
            let k = if guess > fits && guess < over {
                guess
            } else {
                fits + (over - fits) / 2
            };
            let run = rest.get(..k).unwrap_or_default();
            let data = encode(run, level)?;
            ratio = (data.len() as f64 / raw_of(run).max(1) as f64).max(1e-3);
            if data.len() <= limit || k == 1 {
                let close = data.len() as f64 >= limit as f64 * CLOSE_ENOUGH;
                best = Some((k, data));
                if close || k == most {
                    break;
                }
            } else {
                over = k;
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
            let encoded = encode_runs(entries.clone(), 8, 1 << 20, FOLD_LEVEL).unwrap();
            for (i, (r, d)) in encoded.iter().enumerate() {
                let lo_len = if i == 0 { 8 } else { r[0].0.len() };
                prop_assert!(d.len() <= stored_limit(lo_len) || r.len() == 1);
            }
            prop_assert_eq!(encoded.into_iter().flat_map(|(r, _)| r).collect::<Vec<_>>(), entries.clone());
            let runs = encode_runs(entries.clone(), 0, 10, COMPACT_LEVEL).unwrap();
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
        let runs = encode_runs(entries.clone(), 4, 1 << 20, FOLD_LEVEL).unwrap();
        assert!((12..=16).contains(&runs.len()), "{} runs", runs.len());
        let limit = stored_limit(4);
        assert!(runs.iter().all(|(_, d)| d.len() <= limit));
        // Runs are cut near the limit: all but the last fill 98.5% of it.
        let sizes: Vec<usize> = runs.iter().map(|(_, d)| d.len()).collect();
        assert!(
            sizes
                .iter()
                .filter(|&&n| n as f64 >= limit as f64 * CLOSE_ENOUGH)
                .count()
                >= sizes.len() - 1,
            "{sizes:?}"
        );
        for (run, data) in &runs {
            assert_eq!(&Pack::decode(data, "t").unwrap().entries().unwrap(), run);
        }
        assert_eq!(runs.into_iter().flat_map(|(r, _)| r).collect::<Vec<_>>(), entries);
    }

    /// A version 1 (interleaved) pack, as the first builds with packs wrote it.
    fn interleaved_pack(entries: &[Entry], level: i32) -> Vec<u8> {
        let mut raw = Vec::new();
        put_u64(&mut raw, entries.len() as u64);
        let mut prev: &[u8] = &[];
        for (k, v) in entries {
            let shared = prev.iter().zip(k.iter()).take_while(|(a, b)| a == b).count();
            put_u64(&mut raw, shared as u64);
            put_u64(&mut raw, (k.len() - shared) as u64);
            raw.extend_from_slice(&k[shared..]);
            put_u64(&mut raw, v.len() as u64);
            raw.extend_from_slice(v);
            prev = k;
        }
        let mut data = vec![VERSION_INTERLEAVED];
        put_u64(&mut data, raw.len() as u64);
        data.extend_from_slice(&zstd::bulk::compress(&raw, level).unwrap());
        data
    }

    #[test]
    fn version_1_packs_are_still_read() {
        let entries: Vec<Entry> = (0u32..300)
            .map(|i| {
                (
                    [b"k".as_slice(), &(i * 7).to_be_bytes()].concat(),
                    i.to_le_bytes()[..(i % 4) as usize].to_vec(),
                )
            })
            .collect();
        let pack = Pack::decode(&interleaved_pack(&entries, 1), "t").unwrap();
        assert_eq!(pack.entries().unwrap(), entries);
        assert_eq!(pack.get(&entries[123].0).unwrap(), Some(entries[123].1.clone()));
        let fresh = encode(&entries, FOLD_LEVEL).unwrap();
        assert_eq!(fresh[0], VERSION);
        assert_eq!(Pack::decode(&fresh, "t").unwrap().entries().unwrap(), entries);
    }

    #[test]
    fn hash_keys_pack_smaller_with_the_lengths_apart() {
        // Keys like the event mapping's: a tag and 32 hash bytes; values a
        // group id of two or three bytes.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut entries: Vec<Entry> = (0..220)
            .map(|_| {
                let mut k = vec![1u8];
                for _ in 0..4 {
                    k.extend_from_slice(&next().to_le_bytes());
                }
                let mut v = Vec::new();
                put_u64(&mut v, next() % 20_000);
                (k, v)
            })
            .collect();
        entries.sort();
        let apart = encode(&entries, COMPACT_LEVEL).unwrap().len();
        let together = interleaved_pack(&entries, COMPACT_LEVEL).len();
        // At least a byte a record (about 5% here: 7.6 against 8.0 KB).
        assert!(
            apart + entries.len() < together,
            "{apart} bytes apart, {together} together"
        );
    }

    #[test]
    fn unsorted_records_are_damage() {
        let keys = [b"b".to_vec(), b"a".to_vec()];
        // Version 2: the encoder does not check order; the reader does.
        let v2 = encode(&keys.iter().map(|k| (k.clone(), vec![])).collect::<Vec<_>>(), 1).unwrap();
        let v1 = interleaved_pack(&keys.iter().map(|k| (k.clone(), vec![])).collect::<Vec<_>>(), 1);
        for data in [v1, v2] {
            let err = Pack::decode(&data, "cf 3 at 00").unwrap().entries().unwrap_err();
            assert_eq!(err.kind(), mxstate_api::ErrorKind::Corrupt);
            assert!(err.to_string().contains("cf 3 at 00"), "{err}");
        }
    }
}
