//! [`RocksKv`]: the key-value seam on RocksDB, one column family per [`Cf`].

use std::path::{Path, PathBuf};

use mxstate_api::{Error, Result};
use mxstate_engine::kv::{Batch, Cf, CfSize, KvMaintenance, KvStore, Op, Visit, VisitFound};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, InfoLogger, LogLevel, Options, WriteOptions,
    DB,
};

use crate::error::rocks;

/// Tuning knobs for the RocksDB backend.
#[derive(Debug, Clone)]
pub struct RocksConfig {
    /// Shared block cache size in bytes.
    pub block_cache_bytes: usize,
    /// fsync the write-ahead log before a write returns (the default: a
    /// returned write survives a power cut). `false` is the faster, less
    /// durable mode: a returned write survives a crash of the process but
    /// a power cut or kernel crash may lose the last writes (never part of
    /// one, never an older one without the newer).
    pub sync_writes: bool,
}

impl Default for RocksConfig {
    fn default() -> Self {
        RocksConfig {
            block_cache_bytes: 256 << 20,
            sync_writes: true,
        }
    }
}

/// A RocksDB database with one column family per [`Cf`].
pub struct RocksKv {
    db: DB,
    write_opts: WriteOptions,
    /// For batches that defer their sync.
    deferred_opts: WriteOptions,
    path: PathBuf,
}

/// zstd level of the bottommost level's blocks.
const BOTTOMMOST_ZSTD_LEVEL: i32 = 12;
/// zstd's window (RocksDB's default, -14: zstd picks it by level).
const ZSTD_WINDOW_BITS: i32 = -14;

/// Families the engine reads only by prefix or range scans (never a
/// point `get` outside `mxstate check`): a bloom filter, 1.25 bytes a
/// key, would never be consulted. `group_events` (101,712 keys at 10k
/// members) was 772 KiB with one, 648 KiB without.
fn scanned_only(cf: Cf) -> bool {
    matches!(cf, Cf::Auth | Cf::GroupEvents | Cf::CurrentState)
}

fn cf_options(cache: &Cache, cf: Cf) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    // The auth index is only read by prefix scans (a room's graph at
    // once): no bloom filter (1.25 bytes a record for nothing), a full key
    // every 128 records instead of 16 (no point lookups to speed up), and
    // large blocks, which compress its repeating values better.
    if !scanned_only(cf) {
        table.set_bloom_filter(10.0, false);
    }
    if cf == Cf::Auth {
        table.set_block_restart_interval(128);
    }
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    table.set_format_version(5);
    // Snapshot sections are large values read whole; small blocks elsewhere.
    table.set_block_size(if matches!(cf, Cf::Snapshots | Cf::Auth) {
        64 << 10
    } else {
        16 << 10
    });
    let mut o = Options::default();
    o.set_block_based_table_factory(&table);
    o.set_compression_type(DBCompressionType::Zstd);
    o.set_bottommost_compression_type(DBCompressionType::Zstd);
    // The bottommost level holds nearly every record once compacted:
    // zstd level 12 there (level 3, the default, elsewhere). At 10k
    // members the database went from 6.0 to 5.8 MiB; level 19 gave the
    // same, levels 6 and 9 half of it; a trained dictionary made it larger.
    o.set_bottommost_compression_options(ZSTD_WINDOW_BITS, BOTTOMMOST_ZSTD_LEVEL, 0, 0, true);
    o.set_level_compaction_dynamic_level_bytes(true);
    o
}

/// RocksDB's info log as `tracing` events (target `rocksdb`): warnings
/// and errors only. The header level (the option dump written at every
/// open) and the info level are dropped.
fn info_logger() -> InfoLogger {
    InfoLogger::new_callback_logger(LogLevel::Warn, |level, msg| {
        let msg = msg.trim_end();
        match level {
            LogLevel::Warn => tracing::warn!(target: "rocksdb", "{msg}"),
            LogLevel::Error | LogLevel::Fatal => tracing::error!(target: "rocksdb", "{msg}"),
            LogLevel::Debug | LogLevel::Info | LogLevel::Header => {}
        }
    })
}

/// Removes every RocksDB `OPTIONS-<n>` file in `dir` but the newest.
/// RocksDB writes one at each open and keeps two (77 KB each with our
/// column families, as much as a small database's data); nothing reads
/// them back when opening, and the newest still records the options for
/// RocksDB's tools. Best effort: a file that cannot be removed is logged.
fn prune_options_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_str()?.strip_prefix("OPTIONS-")?.parse::<u64>().ok()?;
            Some((n, e.path()))
        })
        .collect();
    files.sort_unstable();
    files.pop();
    for (_, file) in files {
        if let Err(e) = std::fs::remove_file(&file) {
            tracing::warn!(target: "rocksdb", "could not remove the old options file {}: {e}", file.display());
        }
    }
}

impl RocksKv {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path, create: bool, config: &RocksConfig) -> Result<Self> {
        let cache = Cache::new_lru_cache(config.block_cache_bytes);
        let mut db_opts = Options::default();
        db_opts.create_if_missing(create);
        // Families newer than the database's format start empty (the
        // engine checks the format version once open).
        db_opts.create_missing_column_families(true);
        db_opts.set_max_background_jobs(2);
        db_opts.set_bytes_per_sync(1 << 20);
        db_opts.set_max_total_wal_size(256 << 20);
        db_opts.set_track_and_verify_wals_in_manifest(true);
        // Table files are opened at open by this many threads per column
        // family: RocksDB starts `n - 1` threads for each of the twelve
        // families whatever the number of files (16 by default: 180
        // thread starts, a third of a small database's open). Two still
        // opens a large database's files two at a time on a slow disk.
        db_opts.set_max_file_opening_threads(OPENING_THREADS);
        // RocksDB's own info log goes to `tracing`, not to a `LOG` file in
        // the database directory: that file held ~125 KB of option dumps per
        // open (more than a small database's data) and grew with uptime.
        db_opts.set_info_logger(info_logger());
        let cfs = Cf::ALL
            .iter()
            .map(|&cf| ColumnFamilyDescriptor::new(cf.name(), cf_options(&cache, cf)));
        let db = DB::open_cf_descriptors(&db_opts, path, cfs).map_err(|e| {
            // RocksDB's file lock: another process holds the database.
            if e.kind() == rocksdb::ErrorKind::IOError && e.as_ref().contains("lock file") {
                Error::DatabaseInUse(path.display().to_string())
            } else {
                rocks(e)
            }
        })?;
        prune_options_files(path);
        let mut write_opts = WriteOptions::default();
        write_opts.set_sync(config.sync_writes);
        let mut deferred_opts = WriteOptions::default();
        deferred_opts.set_sync(false);
        Ok(RocksKv {
            db,
            write_opts,
            deferred_opts,
            path: path.to_owned(),
        })
    }

    fn handle(&self, cf: Cf) -> Result<&rocksdb::ColumnFamily> {
        self.db
            .cf_handle(cf.name())
            .ok_or_else(|| Error::internal(format!("column family {} was opened but has no handle", cf.name())))
    }

    /// Visits the keys in `[lower, upper)`, ascending when `forward`.
    fn scan_bounded(&self, cf: Cf, lower: &[u8], upper: &[u8], forward: bool, visit: &mut Visit<'_>) -> Result<()> {
        if lower >= upper {
            return Ok(());
        }
        let mut ro = rocksdb::ReadOptions::default();
        ro.set_iterate_lower_bound(lower.to_vec());
        ro.set_iterate_upper_bound(upper.to_vec());
        let mut it = self.db.raw_iterator_cf_opt(self.handle(cf)?, ro);
        if forward {
            it.seek_to_first();
        } else {
            it.seek_to_last();
        }
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            if !visit(k, v)? {
                return Ok(());
            }
            if forward {
                it.next();
            } else {
                it.prev();
            }
        }
        it.status().map_err(rocks)
    }

    /// Many point reads as one ordered sweep of an iterator: the keys in
    /// ascending order, each reached by stepping forward from the previous
    /// one when it is a few keys ahead, else by a seek. The keys of a
    /// multi-get are mostly close together (the interned strings of one
    /// snapshot section, ids handed out in order), where stepping costs
    /// far less than a lookup from the top of the table per key (what
    /// RocksDB's `MultiGet` does, after sorting the keys). Without
    /// `fill_cache`, the blocks read are not added to the block cache.
    fn sweep_get(
        &self,
        h: &rocksdb::ColumnFamily,
        keys: &[Vec<u8>],
        fill_cache: bool,
        visit: &mut VisitFound<'_>,
    ) -> Result<()> {
        let mut order: Vec<usize> = (0..keys.len()).collect();
        if !keys.is_sorted() {
            order.sort_unstable_by(|&a, &b| keys.get(a).cmp(&keys.get(b)));
        }
        let (Some(first), Some(last)) = (
            order.first().and_then(|&i| keys.get(i)),
            order.last().and_then(|&i| keys.get(i)),
        ) else {
            return Ok(());
        };
        let mut ro = rocksdb::ReadOptions::default();
        ro.fill_cache(fill_cache);
        ro.set_iterate_lower_bound(first.clone());
        let mut upper = last.clone();
        upper.push(0);
        ro.set_iterate_upper_bound(upper);
        let mut it = self.db.raw_iterator_cf_opt(h, ro);
        it.seek(first);
        for &i in &order {
            let Some(k) = keys.get(i) else { continue };
            let mut steps = 0;
            while steps < SWEEP_STEPS && it.key().is_some_and(|at| at < k.as_slice()) {
                it.next();
                steps += 1;
            }
            if it.key().is_some_and(|at| at < k.as_slice()) {
                it.seek(k);
            }
            if !it.valid() {
                // Past the last key of the range (or failed: see below):
                // the remaining keys are absent.
                break;
            }
            if it.key() == Some(k.as_slice()) {
                if let Some(v) = it.value() {
                    visit(i, v)?;
                }
            }
        }
        it.status().map_err(rocks)
    }
}

/// Threads opening table files at open, per column family (the calling
/// one included).
const OPENING_THREADS: i32 = 2;

/// Multi-gets of fewer keys use RocksDB's `MultiGet`; more are swept with
/// an iterator ([`RocksKv::sweep_get`]).
const SWEEP_MIN_KEYS: usize = 32;

/// How many keys a sweep steps over before it seeks instead.
const SWEEP_STEPS: usize = 2;

impl KvStore for RocksKv {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.handle(cf)?, key).map_err(rocks)
    }

    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let h = self.handle(cf)?;
        if keys.len() < SWEEP_MIN_KEYS {
            return self
                .db
                .batched_multi_get_cf(h, keys.iter(), false)
                .into_iter()
                .map(|r| Ok(r.map_err(rocks)?.map(|s| s.to_vec())))
                .collect();
        }
        let mut out: Vec<Option<Vec<u8>>> = vec![None; keys.len()];
        self.sweep_get(h, keys, true, &mut |i, v| {
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(v.to_vec());
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn multi_get_visit(&self, cf: Cf, keys: &[Vec<u8>], visit: &mut VisitFound<'_>) -> Result<()> {
        let h = self.handle(cf)?;
        if keys.len() < SWEEP_MIN_KEYS {
            for (i, r) in self
                .db
                .batched_multi_get_cf(h, keys.iter(), false)
                .into_iter()
                .enumerate()
            {
                if let Some(v) = r.map_err(rocks)? {
                    visit(i, &v)?;
                }
            }
            return Ok(());
        }
        // The caller decodes what it visits and keeps what it needs (the
        // engine caches a snapshot section's texts as one table): the
        // blocks of a large read are not kept in RocksDB's block cache.
        // A cold full state of 21,494 entries then faults in 450 fewer
        // fresh pages (2,340 against 2,790) and took 5.38 ms against
        // 5.96 ms (medians of 20 fresh processes).
        self.sweep_get(h, keys, false, visit)
    }

    fn write(&self, batch: Batch) -> Result<()> {
        let opts = if batch.sync_deferred() {
            &self.deferred_opts
        } else {
            &self.write_opts
        };
        let mut wb = rocksdb::WriteBatch::default();
        for op in batch.into_ops() {
            match op {
                Op::Put(cf, k, v) => wb.put_cf(self.handle(cf)?, k, v),
                Op::Delete(cf, k) => wb.delete_cf(self.handle(cf)?, k),
            }
        }
        self.db.write_opt(wb, opts).map_err(rocks)
    }

    fn sync(&self) -> Result<()> {
        self.db.flush_wal(true).map_err(rocks)
    }

    fn scan_prefix(&self, cf: Cf, prefix: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        let mut ro = rocksdb::ReadOptions::default();
        if let Some(upper) = prefix_upper_bound(prefix) {
            ro.set_iterate_upper_bound(upper);
        }
        let mut it = self.db.raw_iterator_cf_opt(self.handle(cf)?, ro);
        it.seek(prefix);
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            if !k.starts_with(prefix) || !visit(k, v)? {
                return Ok(());
            }
            it.next();
        }
        it.status().map_err(rocks)
    }

    fn scan_range_rev(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        self.scan_bounded(cf, lower, upper, false, visit)
    }

    fn scan_range(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        self.scan_bounded(cf, lower, upper, true, visit)
    }

    fn last_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let mut it = self.db.raw_iterator_cf(self.handle(cf)?);
        match prefix_upper_bound(prefix) {
            Some(upper) => it.seek_for_prev(&upper),
            None => it.seek_to_last(),
        }
        // seek_for_prev lands on the last key <= upper; upper itself is not in the prefix.
        while it.valid() {
            match (it.key(), it.value()) {
                (Some(k), Some(v)) if k.starts_with(prefix) => return Ok(Some((k.to_vec(), v.to_vec()))),
                (Some(k), _) if k > prefix => it.prev(),
                _ => break,
            }
        }
        it.status().map_err(rocks)?;
        Ok(None)
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn maintenance(&self) -> Option<&dyn KvMaintenance> {
        Some(self)
    }
}

impl KvMaintenance for RocksKv {
    fn compact(&self) -> Result<()> {
        // The bottommost level too: after a rewrite (a format migration)
        // the deletions sit above the records they delete, and RocksDB's
        // default skips the bottommost level, keeping both.
        let mut opts = rocksdb::CompactOptions::default();
        opts.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        for cf in Cf::ALL {
            let h = self.handle(cf)?;
            self.db.flush_cf(h).map_err(rocks)?;
            self.db.compact_range_cf_opt(h, None::<&[u8]>, None::<&[u8]>, &opts);
        }
        Ok(())
    }

    fn sizes(&self) -> Result<Vec<CfSize>> {
        let mut out = Vec::new();
        for cf in Cf::ALL {
            let h = self.handle(cf)?;
            let prop = |name: &'static str| -> Result<u64> {
                self.db
                    .property_int_value_cf(h, name)
                    .map_err(rocks)?
                    .ok_or_else(|| Error::internal(format!("rocksdb has no property {name}")))
            };
            out.push(CfSize {
                name: cf.name(),
                stored_bytes: prop("rocksdb.total-sst-files-size")?,
                buffered_bytes: prop("rocksdb.cur-size-all-mem-tables")?,
                keys_estimate: prop("rocksdb.estimate-num-keys")?,
            });
        }
        Ok(out)
    }

    fn bytes_on_disk(&self) -> Result<u64> {
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        let mut total = 0;
        for entry in std::fs::read_dir(&self.path).map_err(io)? {
            match entry.map_err(io)?.metadata() {
                Ok(m) if m.is_file() => total += m.len(),
                Ok(_) => {}
                // Compaction deleted the file between listing and reading.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
        }
        Ok(total)
    }
}

/// The smallest key greater than every key starting with `prefix`.
fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut up = prefix.to_vec();
    while let Some(last) = up.pop() {
        if last < 0xff {
            up.push(last + 1);
            return Some(up);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, RocksKv) {
        let dir = tempfile::tempdir().unwrap();
        let kv = RocksKv::open(dir.path(), true, &RocksConfig::default()).unwrap();
        (dir, kv)
    }

    #[test]
    fn forward_range_scans_ascend_within_bounds_and_stop() {
        let (_dir, kv) = store();
        let mut b = Batch::default();
        for k in [vec![1u8], vec![1, 0], vec![2], vec![3, 0xff], vec![4]] {
            b.put(Cf::Groups, k.clone(), k);
        }
        b.put(Cf::Meta, vec![2], vec![9]);
        kv.write(b).unwrap();
        let scan = |lo: &[u8], hi: &[u8], stop_after: usize| {
            let mut seen = Vec::new();
            kv.scan_range(Cf::Groups, lo, hi, &mut |k, v| {
                assert_eq!(k, v);
                seen.push(k.to_vec());
                Ok(seen.len() < stop_after)
            })
            .unwrap();
            seen
        };
        assert_eq!(
            scan(&[1, 0], &[4], usize::MAX),
            vec![vec![1, 0], vec![2], vec![3, 0xff]]
        );
        assert_eq!(scan(&[], &[0xff], 2), vec![vec![1], vec![1, 0]]);
        assert!(scan(&[2], &[2], usize::MAX).is_empty());
        assert!(scan(&[4], &[1], usize::MAX).is_empty());
    }

    /// Multi-gets of many keys (an iterator sweep) answer as point reads
    /// do: in the order asked, repeated keys, absent keys below, between
    /// and above the stored ones, far apart and close together.
    #[test]
    fn swept_multi_gets_answer_as_point_reads() {
        let (_dir, kv) = store();
        let mut b = Batch::default();
        let key = |n: u64| {
            let mut k = vec![b'E'];
            k.extend_from_slice(&n.to_be_bytes());
            k
        };
        for n in (10..2_000u64).filter(|n| n % 3 != 0) {
            b.put(Cf::Nids, key(n), n.to_string().into_bytes());
        }
        kv.write(b).unwrap();
        let mut asked: Vec<Vec<u8>> = Vec::new();
        for n in [
            5u64, 1_999, 11, 12, 12, 3_000, 700, 10, 1_000, 1_001, 1_002, 1_003, 1_500, 9,
        ] {
            asked.push(key(n));
        }
        asked.extend((0..200u64).map(|i| key(i * 37 % 2_100)));
        asked.push(vec![b'E']);
        asked.push(vec![b'F']);
        assert!(asked.len() >= SWEEP_MIN_KEYS);
        let got = kv.multi_get(Cf::Nids, &asked).unwrap();
        let want: Vec<Option<Vec<u8>>> = asked.iter().map(|k| kv.get(Cf::Nids, k).unwrap()).collect();
        assert_eq!(got, want);
        assert!(got.iter().any(Option::is_some) && got.iter().any(Option::is_none));
        // Few keys take RocksDB's MultiGet: the same answers.
        assert_eq!(kv.multi_get(Cf::Nids, &asked[..4]).unwrap(), want[..4].to_vec());
        assert_eq!(kv.multi_get(Cf::Nids, &[]).unwrap(), Vec::<Option<Vec<u8>>>::new());
        let none: Vec<Vec<u8>> = (0..40u64).map(|i| key(5_000 + i)).collect();
        assert!(kv.multi_get(Cf::Nids, &none).unwrap().iter().all(Option::is_none));
        // Visited where they lie: each present key once, with its value;
        // absent keys not at all. Swept (unsorted and sorted keys) and
        // through MultiGet.
        let mut sorted = asked.clone();
        sorted.sort();
        for keys in [&asked[..], &sorted[..], &asked[..4], &none[..]] {
            let mut seen: Vec<Option<Vec<u8>>> = vec![None; keys.len()];
            kv.multi_get_visit(Cf::Nids, keys, &mut |i, v| {
                assert!(seen[i].is_none(), "key {i} visited twice");
                seen[i] = Some(v.to_vec());
                Ok(())
            })
            .unwrap();
            let want: Vec<Option<Vec<u8>>> = keys.iter().map(|k| kv.get(Cf::Nids, k).unwrap()).collect();
            assert_eq!(seen, want);
        }
        // A visitor's error ends the read and is returned.
        let err = kv
            .multi_get_visit(Cf::Nids, &asked, &mut |_, _| Err(mxstate_api::Error::internal("stop")))
            .unwrap_err();
        assert!(err.to_string().contains("stop"), "{err}");
    }

    /// `compact` leaves only live records: records deleted (or moved to
    /// other keys) after an earlier compaction take no room after the
    /// next one (what a format migration relies on).
    #[test]
    fn compaction_drops_what_later_batches_deleted() {
        let (_dir, kv) = store();
        let stored = |kv: &RocksKv| -> u64 {
            let sizes = kv.sizes().unwrap();
            sizes
                .iter()
                .find(|s| s.name == "event_groups")
                .map(|s| s.stored_bytes)
                .unwrap()
        };
        // Incompressible values, as hash-keyed records are.
        let value = |i: u64| -> Vec<u8> {
            (0..64u64)
                .map(|j| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(j as u32) >> 56) as u8)
                .collect()
        };
        let mut b = Batch::default();
        for i in 0..20_000u64 {
            b.put(Cf::EventGroups, i.to_be_bytes().to_vec(), value(i));
        }
        kv.write(b).unwrap();
        kv.compact().unwrap();
        let full = stored(&kv);
        let mut b = Batch::default();
        for i in 0..20_000u64 {
            b.delete(Cf::EventGroups, i.to_be_bytes().to_vec());
            if i % 10 == 0 {
                b.put(Cf::EventGroups, [&[1u8][..], &i.to_be_bytes()].concat(), value(i));
            }
        }
        kv.write(b).unwrap();
        kv.compact().unwrap();
        let after = stored(&kv);
        assert!(after * 5 < full, "{after} bytes after, {full} before");
    }
}
