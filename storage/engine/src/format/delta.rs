//! Interned deltas: sorted `(IKey, Some(event) | None = removed)` lists.
//!
//! Encoding: `count` varint, then per entry three varints:
//! `type - prev_type`; the state key (absolute when the type changed, else
//! `skey - prev_skey`); and the event code: 0 for a removal, else
//! `zigzag(event - ref_event) + 1`, where `ref_event` is the owning group's
//! own event nid (events of nearby groups have nearby nids).

use super::keys::{ikey, ikey_skey, ikey_type, EventNid, IKey};
use super::varint::{put_u64, zigzag, Reader};
use mxstate_api::Result;

/// One delta entry.
pub type Entry = (IKey, Option<EventNid>);

/// Appends the encoding of `d` (sorted, unique keys).
pub fn encode(d: &[Entry], ref_event: EventNid, out: &mut Vec<u8>) {
    put_u64(out, d.len() as u64);
    let (mut pt, mut ps) = (0u32, 0u32);
    for &(k, ev) in d {
        let (t, s) = (ikey_type(k), ikey_skey(k));
        put_u64(out, u64::from(t - pt));
        put_u64(out, u64::from(if t == pt { s - ps } else { s }));
        let code = match ev {
            None => 0,
            Some(e) => zigzag(e.wrapping_sub(ref_event) as i64) + 1,
        };
        put_u64(out, code);
        (pt, ps) = (t, s);
    }
}

/// The entries of an encoded delta, read one at a time and checked as
/// [`decode`] checks them: what a lookup reads without decoding the rest.
pub struct Entries<'r, 'a> {
    r: &'r mut Reader<'a>,
    ref_event: EventNid,
    left: usize,
    first: bool,
    prev: (u32, u32),
}

impl<'r, 'a> Entries<'r, 'a> {
    /// Starts reading the delta at `r` (its count first).
    pub fn new(r: &'r mut Reader<'a>, ref_event: EventNid) -> Result<Self> {
        let left = r.count(3)?;
        Ok(Entries {
            r,
            ref_event,
            left,
            first: true,
            prev: (0, 0),
        })
    }

    /// Entries not read yet.
    fn left(&self) -> usize {
        self.left
    }

    fn read(&mut self) -> Result<Entry> {
        let (pt, ps) = self.prev;
        let r = &mut *self.r;
        let dt = r.u32()?;
        let t = pt.checked_add(dt).ok_or_else(|| r.error("type nid overflow"))?;
        let sv = r.u32()?;
        let s = if dt == 0 {
            if !self.first && sv == 0 {
                return Err(r.error("delta keys not strictly increasing"));
            }
            ps.checked_add(sv).ok_or_else(|| r.error("state key nid overflow"))?
        } else {
            sv
        };
        let ev = match r.u64()? {
            0 => None,
            c => Some(self.ref_event.wrapping_add(super::varint::unzigzag(c - 1) as u64)),
        };
        self.prev = (t, s);
        self.first = false;
        Ok((ikey(t, s), ev))
    }
}

impl Iterator for Entries<'_, '_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let e = self.read();
        if e.is_err() {
            self.left = 0;
        }
        Some(e)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// Decodes a delta written by [`encode`], checking order and ranges.
pub fn decode(r: &mut Reader<'_>, ref_event: EventNid) -> Result<Vec<Entry>> {
    let entries = Entries::new(r, ref_event)?;
    let mut out = Vec::with_capacity(entries.left());
    for e in entries {
        out.push(e?);
    }
    Ok(out)
}

/// Looks the ascending keys `keys` up in the delta at `r` without decoding
/// it whole: sets `found[i]` (`Some(None)` for a removal) for each key the
/// delta mentions whose `found[i]` is still `None`, reading entries only
/// up to the last key asked for.
pub fn find(
    r: &mut Reader<'_>,
    ref_event: EventNid,
    keys: &[IKey],
    found: &mut [Option<Option<EventNid>>],
) -> Result<()> {
    let Some(&last) = keys.last() else {
        return Ok(());
    };
    let mut i = 0;
    for e in Entries::new(r, ref_event)? {
        let (k, ev) = e?;
        if k > last {
            break;
        }
        while keys.get(i).is_some_and(|&want| want < k) {
            i += 1;
        }
        if keys.get(i) == Some(&k) {
            if let Some(slot @ None) = found.get_mut(i) {
                *slot = Some(ev);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_delta() -> impl Strategy<Value = Vec<Entry>> {
        proptest::collection::btree_map((0u32..5, 0u32..1000), proptest::option::of(0u64..5000), 0..50)
            .prop_map(|m| m.into_iter().map(|((t, s), e)| (ikey(t, s), e)).collect())
    }

    proptest! {
        #[test]
        fn round_trip(d in arb_delta(), ref_ev in 0u64..5000) {
            let mut buf = Vec::new();
            encode(&d, ref_ev, &mut buf);
            let mut r = Reader::new(&buf, "delta");
            prop_assert_eq!(decode(&mut r, ref_ev).unwrap(), d);
            r.finish().unwrap();
        }

        /// `find` answers what a search of the decoded delta answers, and
        /// leaves keys a nearer delta decided alone.
        #[test]
        fn find_is_lookup_on_the_decoded_delta(
            d in arb_delta(),
            asked in proptest::collection::btree_set((0u32..5, 0u32..1000), 0..8),
            decided in proptest::collection::vec(any::<bool>(), 8),
        ) {
            let mut buf = Vec::new();
            encode(&d, 77, &mut buf);
            let keys: Vec<IKey> = asked.iter().map(|&(t, s)| ikey(t, s)).collect();
            let mut found: Vec<Option<Option<EventNid>>> =
                keys.iter().zip(&decided).map(|(_, &x)| x.then_some(Some(1))).collect();
            let before = found.clone();
            find(&mut Reader::new(&buf, "delta"), 77, &keys, &mut found).unwrap();
            for (i, &k) in keys.iter().enumerate() {
                let want = match before[i] {
                    Some(x) => Some(x),
                    None => d.binary_search_by_key(&k, |e| e.0).ok().map(|j| d[j].1),
                };
                prop_assert_eq!(found[i], want, "key {}", i);
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&bytes, "delta");
            let _ = decode(&mut r, 7);
            let mut found = [None, None];
            let _ = find(&mut Reader::new(&bytes, "delta"), 7, &[ikey(0, 1), ikey(3, 5)], &mut found);
        }
    }
}
