//! Packed `nids` blocks (format 5): the texts of 64 consecutive nids of one
//! kind in one value, so that resolving the strings of a large state reads
//! a few hundred values instead of one key per string.
//!
//! A block is written once every nid of its range has been handed out (the
//! kind's counter is past its end); until then its nids are single keys.
//!
//! Value layout: `version u8`, `presence u64 LE` (bit `i` set when nid
//! `block * 64 + i` has a text; nids dropped by the format 4 migration
//! leave holes), then for each present slot in order: `len varint`, `len`
//! bytes of text in its stored form (`keys::text_bytes`).

use mxstate_api::Result;

use super::varint::{put_u64, Reader};
use super::version::{check_record, RECORD_VERSION};

/// log2 of the nids a block holds.
pub const BLOCK_BITS: u32 = 6;
/// The nids a block holds.
pub const BLOCK_LEN: u64 = 1 << BLOCK_BITS;

/// The block holding `nid`.
pub fn block_of(nid: u64) -> u64 {
    nid >> BLOCK_BITS
}

/// The first nid of `block`.
pub fn first_nid(block: u64) -> u64 {
    block << BLOCK_BITS
}

/// Whether every nid of `block` has been handed out, given the kind's
/// next free nid: only then is the block written packed.
pub fn is_complete(block: u64, next_nid: u64) -> bool {
    first_nid(block)
        .checked_add(BLOCK_LEN)
        .is_some_and(|end| end <= next_nid)
}

fn slot(nid: u64) -> u32 {
    (nid & (BLOCK_LEN - 1)) as u32
}

/// Encodes a block from `(nid, stored text)` pairs, all of one block, in
/// ascending nid order.
pub fn encode<'t>(texts: impl IntoIterator<Item = (u64, &'t [u8])>) -> Vec<u8> {
    let mut presence = 0u64;
    let mut body = Vec::new();
    for (nid, text) in texts {
        presence |= 1 << slot(nid);
        put_u64(&mut body, text.len() as u64);
        body.extend_from_slice(text);
    }
    let mut out = Vec::with_capacity(9 + body.len());
    out.push(RECORD_VERSION);
    out.extend_from_slice(&presence.to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// A decoded block: the text of each present slot, borrowed from the value.
pub struct Block<'a> {
    presence: u64,
    /// The text of each present slot, in slot order (the first
    /// `presence.count_ones()`; no allocation per block).
    texts: [&'a [u8]; BLOCK_LEN as usize],
}

impl<'a> Block<'a> {
    /// Parses and checks a whole block value.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "nids block");
        check_record(&mut r)?;
        let presence: [u8; 8] = r.bytes(8)?.try_into().map_err(|_| r.error("presence is not 8 bytes"))?;
        let presence = u64::from_le_bytes(presence);
        let mut texts: [&'a [u8]; BLOCK_LEN as usize] = [&[]; BLOCK_LEN as usize];
        for t in texts.iter_mut().take(presence.count_ones() as usize) {
            let len = usize::try_from(r.u64()?).map_err(|_| r.error("text length overflows"))?;
            *t = r.bytes(len)?;
        }
        r.finish()?;
        Ok(Block { presence, texts })
    }

    /// The stored text of `nid`, if its slot is present. `nid` must be of
    /// this block; only its slot is used.
    pub fn text(&self, nid: u64) -> Option<&'a [u8]> {
        let bit = 1u64 << slot(nid);
        if self.presence & bit == 0 {
            return None;
        }
        let index = (self.presence & (bit - 1)).count_ones() as usize;
        self.texts.get(index).copied()
    }

    /// `(slot, stored text)` of every present slot, in order.
    pub fn entries(&self) -> impl Iterator<Item = (u32, &'a [u8])> + '_ {
        (0..BLOCK_LEN as u32)
            .filter(|&s| self.presence & (1 << s) != 0)
            .zip(self.texts.iter().copied().take(self.presence.count_ones() as usize))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn blocks_round_trip(
            block in 0u64..1_000_000,
            texts in proptest::collection::btree_map(0u64..64, proptest::collection::vec(any::<u8>(), 0..40), 0..64),
        ) {
            let entries: Vec<(u64, Vec<u8>)> =
                texts.iter().map(|(s, t)| (first_nid(block) + s, t.clone())).collect();
            let v = encode(entries.iter().map(|(n, t)| (*n, t.as_slice())));
            let b = Block::parse(&v).unwrap();
            prop_assert_eq!(b.entries().count(), entries.len());
            for s in 0..64 {
                let n = first_nid(block) + s;
                prop_assert_eq!(b.text(n), texts.get(&s).map(Vec::as_slice));
            }
            let back: Vec<(u64, Vec<u8>)> =
                b.entries().map(|(s, t)| (first_nid(block) + u64::from(s), t.to_vec())).collect();
            prop_assert_eq!(back, entries);
        }

        #[test]
        fn damaged_blocks_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(b) = Block::parse(&bytes) {
                // Whatever parses names texts inside the value.
                let total: usize = b.entries().map(|(_, t)| t.len()).sum();
                prop_assert!(total <= bytes.len());
            }
        }
    }

    #[test]
    fn truncated_and_padded_blocks_are_refused() {
        let v = encode([(0, &b"abc"[..]), (5, &b""[..]), (63, &b"z"[..])]);
        for cut in 0..v.len() {
            assert!(Block::parse(&v[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = v.clone();
        long.push(0);
        assert!(Block::parse(&long).is_err());
        let b = Block::parse(&v).unwrap();
        assert_eq!(b.text(5), Some(&b""[..]));
        assert_eq!(b.text(6), None);
        assert_eq!(b.text(64 + 63), Some(&b"z"[..]));
    }

    #[test]
    fn completeness_follows_the_counter() {
        assert!(!is_complete(0, 63));
        assert!(is_complete(0, 64));
        assert!(!is_complete(1, 127));
        assert!(is_complete(1, 128));
        assert!(!is_complete(u64::MAX >> BLOCK_BITS, u64::MAX));
    }
}
