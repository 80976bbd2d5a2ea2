//! A scratch RocksDB that sorts an import's rows by group, so that a dump in
//! any order streams in bounded memory. Deleted when dropped.
//!
//! Keys (one column family): `G id` -> group row; `E id prev` -> line;
//! `R id seq` -> state row; `M seq` -> event mapping. Ids u64 BE; values
//! are varints and length-prefixed strings (`format::varint`).

use std::path::Path;

use rocksdb::{Options, WriteBatch, WriteOptions, DB};

use crate::error::{Error, Result};
use crate::format::varint::{put_u64, Reader};

/// Flush the pending batch at this many bytes.
const FLUSH_BYTES: usize = 8 << 20;

/// The scratch store.
pub struct Staging {
    db: DB,
    batch: WriteBatch,
    seq: u64,
    _dir: tempfile::TempDir,
}

/// Appends a length-prefixed string.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads a length-prefixed string.
pub fn get_str<'a>(r: &mut Reader<'a>) -> Result<&'a str> {
    let n = r.count(1)?;
    std::str::from_utf8(r.bytes(n)?).map_err(|_| r.error("staged string is not UTF-8"))
}

/// Key of `tag` followed by big-endian ids.
pub fn key(tag: u8, ids: &[u64]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + 8 * ids.len());
    k.push(tag);
    for id in ids {
        k.extend_from_slice(&id.to_be_bytes());
    }
    k
}

impl Staging {
    /// A new scratch store in a temporary directory under `parent`.
    pub fn create(parent: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(".mxstate-import-")
            .tempdir_in(parent)
            .map_err(|source| Error::Io {
                path: parent.to_owned(),
                source,
            })?;
        let mut o = Options::default();
        o.create_if_missing(true);
        o.set_write_buffer_size(64 << 20);
        o.set_max_write_buffer_number(3);
        o.set_compression_type(rocksdb::DBCompressionType::None);
        o.set_max_background_jobs(2);
        let db = DB::open(&o, dir.path())?;
        Ok(Staging {
            db,
            batch: WriteBatch::default(),
            seq: 0,
            _dir: dir,
        })
    }

    /// A sequence number, unique within this store.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Queues a put.
    pub fn put(&mut self, k: &[u8], v: &[u8]) -> Result<()> {
        self.batch.put(k, v);
        if self.batch.size_in_bytes() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes what is queued (no WAL: the scratch store dies with the run).
    pub fn flush(&mut self) -> Result<()> {
        let mut wo = WriteOptions::default();
        wo.disable_wal(true);
        let b = std::mem::take(&mut self.batch);
        Ok(self.db.write_opt(b, &wo)?)
    }

    /// An ordered walk over the keys starting with `tag`.
    pub fn iter(&self, tag: u8) -> TagIter<'_> {
        self.iter_prefix(&[tag])
    }

    /// An ordered walk over the keys starting with `prefix`.
    pub fn iter_prefix(&self, prefix: &[u8]) -> TagIter<'_> {
        let mut ro = rocksdb::ReadOptions::default();
        let mut upper = prefix.to_vec();
        while let Some(last) = upper.pop() {
            if last < 0xff {
                upper.push(last + 1);
                break;
            }
        }
        if !upper.is_empty() {
            ro.set_iterate_upper_bound(upper);
        }
        let mut it = self.db.raw_iterator_opt(ro);
        it.seek(prefix);
        TagIter { it }
    }

    /// Whether some key starts with `prefix`.
    pub fn has_prefix(&self, prefix: &[u8]) -> Result<bool> {
        let it = self.iter_prefix(prefix);
        let found = it.peek().is_some();
        it.status()?;
        Ok(found)
    }
}

/// An ordered walk over one tag's keys.
pub struct TagIter<'a> {
    it: rocksdb::DBRawIterator<'a>,
}

impl TagIter<'_> {
    /// The current key and value.
    pub fn peek(&self) -> Option<(&[u8], &[u8])> {
        if self.it.valid() {
            Some((self.it.key()?, self.it.value()?))
        } else {
            None
        }
    }
    /// The first id of the current key.
    pub fn id(&self) -> Option<u64> {
        let (k, _) = self.peek()?;
        Some(u64::from_be_bytes(k.get(1..9)?.try_into().ok()?))
    }
    /// Moves on.
    pub fn advance(&mut self) {
        self.it.next();
    }
    /// The iterator's error, if it stopped on one.
    pub fn status(&self) -> Result<()> {
        Ok(self.it.status()?)
    }
}
