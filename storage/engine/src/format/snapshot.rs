//! `snapshots` values: a full state, split into one section per event type.
//!
//! Header (key = snapshot id): `version u8`, `room` varint, `hash` 16 bytes
//! LE, `refs` varint
//! (groups using it), `entries` varint, `ntypes` varint, then the type nids
//! delta-coded ascending.
//!
//! Section (key = snapshot id, type): `version u8`, `codec u8` (0 raw,
//! 1 zstd: then the raw length varint and the zstd frame), and the payload:
//! the portable serialization of a roaring bitmap of state-key nids
//! (length-prefixed varint), then one varint per key in ascending key order:
//! `zigzag(event - previous event)`, starting from 0.

use std::io::Read;

use roaring::RoaringBitmap;

use super::keys::{EventNid, RoomNid, SkeyNid, TypeNid};
use super::varint::{put_u64, zigzag, Reader};
use super::version::{check_record, RECORD_VERSION};
use mxstate_api::Result;

/// Sections bigger than this are zstd-compressed.
const COMPRESS_OVER: usize = 512;
/// Largest section payload accepted when decompressing (corruption guard).
const MAX_SECTION_BYTES: u64 = 1 << 30;

/// Sections recorded as at most this long are decompressed in one call
/// into a buffer of the recorded length; longer ones by streaming, so that
/// a corrupt length costs no more memory than the data really holds.
const BULK_SECTION_BYTES: u64 = 8 << 20;
/// Largest zstd window accepted when streaming (the encoder's level 3
/// uses at most 2 MiB); a corrupt frame header asks for no more.
const WINDOW_LOG_MAX: u32 = 24;

/// Decompresses the zstd frame of a section recorded as `len` bytes long.
///
/// The frame's own content size, when it has one (the encoder always
/// writes it), must be `len`. The output buffer is allocated up front only
/// up to [`BULK_SECTION_BYTES`], else it grows with the output: a small
/// corrupt record claiming a huge length fails before it allocates much.
fn decompress(r: &Reader<'_>, frame: &[u8], len: u64) -> Result<Vec<u8>> {
    let zstd_error = |e: std::io::Error| r.error(format!("zstd: {e}"));
    match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(declared)) if declared != len => {
            return Err(r.error(format!("zstd frame of {declared} bytes, {len} recorded")));
        }
        Ok(_) => {}
        Err(_) => return Err(r.error("zstd: not a zstd frame")),
    }
    let raw = if len <= BULK_SECTION_BYTES {
        zstd::bulk::decompress(frame, len as usize).map_err(zstd_error)?
    } else {
        let mut decoder = zstd::stream::read::Decoder::with_buffer(frame).map_err(zstd_error)?;
        decoder.window_log_max(WINDOW_LOG_MAX).map_err(zstd_error)?;
        let mut raw = Vec::new();
        decoder.take(len + 1).read_to_end(&mut raw).map_err(zstd_error)?;
        raw
    };
    if raw.len() as u64 != len {
        return Err(r.error("decompressed length differs from the recorded one"));
    }
    Ok(raw)
}

/// A snapshot's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapHeader {
    pub room: RoomNid,
    /// xxh3-128 of the state (see `engine::snapshots`), for deduplication.
    pub hash: u128,
    pub refs: u64,
    pub entries: u64,
    pub types: Vec<TypeNid>,
}

impl SnapHeader {
    /// Encodes the header.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![RECORD_VERSION];
        put_u64(&mut out, u64::from(self.room));
        out.extend_from_slice(&self.hash.to_le_bytes());
        put_u64(&mut out, self.refs);
        put_u64(&mut out, self.entries);
        put_u64(&mut out, self.types.len() as u64);
        let mut prev = 0;
        for &t in &self.types {
            put_u64(&mut out, u64::from(t - prev));
            prev = t;
        }
        out
    }
    /// Decodes a header.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "snapshot header");
        check_record(&mut r)?;
        let room = r.u32()?;
        let hash_bytes: [u8; 16] = r.bytes(16)?.try_into().map_err(|_| r.error("hash"))?;
        let hash = u128::from_le_bytes(hash_bytes);
        let refs = r.u64()?;
        let entries = r.u64()?;
        let n = r.count(1)?;
        let mut types = Vec::with_capacity(n);
        let mut prev = 0u32;
        for i in 0..n {
            let d = r.u32()?;
            if i > 0 && d == 0 {
                return Err(r.error("types not strictly increasing"));
            }
            prev = prev.checked_add(d).ok_or_else(|| r.error("type nid overflow"))?;
            types.push(prev);
        }
        r.finish()?;
        Ok(SnapHeader {
            room,
            hash,
            refs,
            entries,
            types,
        })
    }
}

/// One type's part of a snapshot: sorted state-key nids and their events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    pub skeys: Vec<SkeyNid>,
    pub events: Vec<EventNid>,
}

impl Section {
    /// The event for state key `s`.
    pub fn get(&self, s: SkeyNid) -> Option<EventNid> {
        let i = self.skeys.binary_search(&s).ok()?;
        self.events.get(i).copied()
    }

    /// Encodes the section.
    pub fn encode(&self) -> Vec<u8> {
        let bitmap: RoaringBitmap = self.skeys.iter().copied().collect();
        let mut payload = Vec::with_capacity(bitmap.serialized_size() + 3 * self.events.len() + 8);
        put_u64(&mut payload, bitmap.serialized_size() as u64);
        // Writing into a Vec cannot fail.
        let _ = bitmap.serialize_into(&mut payload);
        let mut prev = 0u64;
        for &e in &self.events {
            put_u64(&mut payload, zigzag(e.wrapping_sub(prev) as i64));
            prev = e;
        }
        let mut out = vec![RECORD_VERSION];
        if payload.len() > COMPRESS_OVER {
            if let Ok(z) = zstd::bulk::compress(&payload, 3) {
                out.push(1);
                put_u64(&mut out, payload.len() as u64);
                out.extend_from_slice(&z);
                return out;
            }
        }
        out.push(0);
        out.extend_from_slice(&payload);
        out
    }

    /// Decodes a section.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "snapshot section");
        check_record(&mut r)?;
        let raw;
        let payload: &[u8] = match r.u8()? {
            0 => r.remaining(),
            1 => {
                let len = r.u64()?;
                if len > MAX_SECTION_BYTES {
                    return Err(r.error(format!("section of {len} bytes")));
                }
                raw = decompress(&r, r.remaining(), len)?;
                &raw
            }
            c => return Err(r.error(format!("unknown codec {c}"))),
        };
        let mut p = Reader::new(payload, "snapshot section payload");
        let blen = p.count(1)?;
        let bitmap = RoaringBitmap::deserialize_from(p.bytes(blen)?).map_err(|e| p.error(format!("roaring: {e}")))?;
        let n = bitmap.len() as usize;
        if n > p.remaining().len() {
            return Err(p.error(format!("{n} keys but {} bytes of events", p.remaining().len())));
        }
        // The roaring crate does not check that container keys increase: a
        // corrupt bitmap can list keys out of order or twice, which would
        // break the binary searches and merges over `skeys`.
        let skeys: Vec<SkeyNid> = bitmap.iter().collect();
        if skeys.iter().zip(skeys.iter().skip(1)).any(|(a, b)| a >= b) {
            return Err(p.error("state key nids not strictly increasing"));
        }
        let mut events = Vec::with_capacity(n);
        let mut prev = 0u64;
        for _ in 0..n {
            prev = prev.wrapping_add(p.i64()? as u64);
            events.push(prev);
        }
        p.finish()?;
        Ok(Section { skeys, events })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let small = Section {
            skeys: vec![0, 5, 9],
            events: vec![100, 7, 100_000],
        };
        let big = Section {
            skeys: (0..5000).map(|i| i * 3).collect(),
            events: (0..5000).map(|i| 1_000_000 + i * 2).collect(),
        };
        for s in [small, big, Section::default()] {
            let enc = s.encode();
            assert_eq!(Section::decode(&enc).unwrap(), s);
            for cut in 0..enc.len().min(200) {
                assert!(Section::decode(&enc[..cut]).is_err(), "cut {cut}");
            }
        }
        let h = SnapHeader {
            room: 1,
            hash: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
            refs: 2,
            entries: 3,
            types: vec![1, 4, 9],
        };
        assert_eq!(SnapHeader::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn a_corrupt_length_allocates_nothing_big() {
        // Found by the `records` fuzz target: a 20-byte section recording
        // 934 MB made the decoder allocate that much before failing.
        let frame = zstd::bulk::compress(b"payload", 3).unwrap();
        for len in [934_239_933u64, BULK_SECTION_BYTES + 1, 6] {
            let mut bytes = vec![RECORD_VERSION, 1];
            put_u64(&mut bytes, len);
            bytes.extend_from_slice(&frame);
            assert!(Section::decode(&bytes).is_err(), "{len}");
        }
        // A frame without its content size, claiming more than it holds.
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        encoder.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut encoder, &[7u8; 100]).unwrap();
        let frame = encoder.finish().unwrap();
        let mut bytes = vec![RECORD_VERSION, 1];
        put_u64(&mut bytes, 900 << 20);
        bytes.extend_from_slice(&frame);
        assert!(Section::decode(&bytes).is_err());
    }

    #[test]
    fn out_of_order_bitmap_containers_are_corrupt() {
        // Found by the `records` fuzz target: two roaring containers with
        // the same key decoded as skeys [31506, 4608].
        let mut bitmap = Vec::new();
        bitmap.extend_from_slice(&12346u32.to_le_bytes()); // cookie: no run containers
        bitmap.extend_from_slice(&2u32.to_le_bytes()); // two containers
        for _ in 0..2 {
            bitmap.extend_from_slice(&[0, 0, 0, 0]); // key 0, cardinality 1
        }
        bitmap.extend_from_slice(&[0; 8]); // offsets
        bitmap.extend_from_slice(&31506u16.to_le_bytes());
        bitmap.extend_from_slice(&4608u16.to_le_bytes());
        let mut bytes = vec![RECORD_VERSION, 0];
        put_u64(&mut bytes, bitmap.len() as u64);
        bytes.extend_from_slice(&bitmap);
        bytes.extend_from_slice(&[2, 2]);
        let err = Section::decode(&bytes).unwrap_err();
        assert!(err.to_string().contains("strictly increasing"), "{err}");
    }
}
