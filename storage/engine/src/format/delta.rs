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

/// Decodes a delta written by [`encode`], checking order and ranges.
pub fn decode(r: &mut Reader<'_>, ref_event: EventNid) -> Result<Vec<Entry>> {
    let n = r.count(3)?;
    let mut out = Vec::with_capacity(n);
    let (mut pt, mut ps) = (0u32, 0u32);
    for i in 0..n {
        let dt = r.u32()?;
        let t = pt.checked_add(dt).ok_or_else(|| r.error("type nid overflow"))?;
        let sv = r.u32()?;
        let s = if dt == 0 {
            if i > 0 && sv == 0 {
                return Err(r.error("delta keys not strictly increasing"));
            }
            ps.checked_add(sv).ok_or_else(|| r.error("state key nid overflow"))?
        } else {
            sv
        };
        let code = r.u64()?;
        let ev = match code {
            0 => None,
            c => Some(ref_event.wrapping_add(super::varint::unzigzag(c - 1) as u64)),
        };
        out.push((ikey(t, s), ev));
        (pt, ps) = (t, s);
    }
    Ok(out)
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

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&bytes, "delta");
            let _ = decode(&mut r, 7);
        }
    }
}
