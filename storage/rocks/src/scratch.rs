//! [`Scratch`]: a temporary RocksDB used as an external sort buffer, so
//! that a bulk import in any order streams in bounded memory. No WAL, no
//! compression, deleted when dropped. The caller chooses keys and values.

use std::path::Path;

use mxstate_api::{Error, Result};
use rocksdb::{Options, WriteBatch, WriteOptions, DB};

use crate::error::rocks;

/// Flush the pending batch at this many bytes.
const FLUSH_BYTES: usize = 8 << 20;

/// A scratch store.
pub struct Scratch {
    db: DB,
    batch: WriteBatch,
    seq: u64,
    _dir: tempfile::TempDir,
}

impl Scratch {
    /// A new scratch store in a temporary directory under `parent`
    /// (named `.mxstate-import-*`).
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
        let db = DB::open(&o, dir.path()).map_err(rocks)?;
        Ok(Scratch {
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
        self.db.write_opt(b, &wo).map_err(rocks)
    }

    /// An ordered walk over the keys starting with byte `tag`.
    pub fn iter(&self, tag: u8) -> ScratchIter<'_> {
        self.iter_prefix(&[tag])
    }

    /// An ordered walk over the keys starting with `prefix`.
    pub fn iter_prefix(&self, prefix: &[u8]) -> ScratchIter<'_> {
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
        ScratchIter { it }
    }

    /// Whether some key starts with `prefix`.
    pub fn has_prefix(&self, prefix: &[u8]) -> Result<bool> {
        let it = self.iter_prefix(prefix);
        let found = it.peek().is_some();
        it.status()?;
        Ok(found)
    }
}

/// An ordered walk over the keys of one prefix.
pub struct ScratchIter<'a> {
    it: rocksdb::DBRawIterator<'a>,
}

impl ScratchIter<'_> {
    /// The current key and value.
    pub fn peek(&self) -> Option<(&[u8], &[u8])> {
        if self.it.valid() {
            Some((self.it.key()?, self.it.value()?))
        } else {
            None
        }
    }
    /// The big-endian u64 after the current key's first byte.
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
        self.it.status().map_err(rocks)
    }
}
