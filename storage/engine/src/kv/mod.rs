//! The key-value seam: everything the engine needs from a store, and what
//! a backend must promise. RocksDB implements it (crate `mxstate-rocks`),
//! [`MemKv`] for tests; a distributed store could (docs/design.md maps it
//! onto PostgreSQL and TiKV).
//!
//! # What a backend promises
//! - **Column families**: eleven independent key spaces ([`Cf`]), keys and
//!   values arbitrary bytes.
//! - **Atomic batches**: [`KvStore::write`] applies every operation of a
//!   [`Batch`] or none, also across a crash; a reader never sees part of one.
//!   Operations apply in order (a later put of a key wins).
//! - **Read-your-writes**: once `write` returns, every read sees the batch.
//! - **Durability**: when `write` returns, the batch is on stable storage
//!   (it survives a power cut), unless the batch was marked
//!   [`Batch::defer_sync`] or the backend was opened in a less durable mode
//!   its documentation names. A batch that is not yet durable is still
//!   atomic: a power cut keeps a prefix of the batches written, whole.
//!   [`KvStore::sync`] makes every earlier write durable.
//! - **Ordered scans**: [`KvStore::scan_prefix`] and [`KvStore::scan_range`]
//!   visit keys in ascending bytewise order, [`KvStore::scan_range_rev`] a
//!   range in descending order; [`KvStore::last_with_prefix`] gives the
//!   greatest.
//!
//! # What the engine assumes
//! **One writer process.** The engine keeps id counters and caches of
//! records in memory and checks nothing against other writers: two
//! processes writing one database would corrupt it. A backend shared
//! between machines must fence out every process but the owner.

mod memory;
pub mod no_wait;

pub use memory::MemKv;

use mxstate_api::Result;

/// The column families (key spaces) of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cf {
    Meta,
    Strings,
    Nids,
    Groups,
    RoomGroups,
    Snapshots,
    SnapHashes,
    EventGroups,
    GroupEvents,
    CurrentState,
    Deletion,
    Auth,
}

impl Cf {
    /// The families every database has had since format version 1 (a
    /// backend opening a version-1 database creates the others empty).
    pub const V1: [Cf; 10] = [
        Cf::Meta,
        Cf::Strings,
        Cf::Nids,
        Cf::Groups,
        Cf::RoomGroups,
        Cf::Snapshots,
        Cf::SnapHashes,
        Cf::EventGroups,
        Cf::GroupEvents,
        Cf::CurrentState,
    ];
    /// Every column family: those of version 1, then those added since
    /// (`deletion` in version 2, `auth` in version 3).
    pub const ALL: [Cf; 12] = {
        let mut all = [Cf::Deletion; 12];
        let mut i = 0;
        while i < Cf::V1.len() {
            all[i] = Cf::V1[i];
            i += 1;
        }
        all[11] = Cf::Auth;
        all
    };
    /// The name on disk.
    pub fn name(self) -> &'static str {
        match self {
            Cf::Meta => "meta",
            Cf::Strings => "strings",
            Cf::Nids => "nids",
            Cf::Groups => "groups",
            Cf::RoomGroups => "room_groups",
            Cf::Snapshots => "snapshots",
            Cf::SnapHashes => "snap_hashes",
            Cf::EventGroups => "event_groups",
            Cf::GroupEvents => "group_events",
            Cf::CurrentState => "current_state",
            Cf::Deletion => "deletion",
            Cf::Auth => "auth",
        }
    }
}

/// One write in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(Cf, Vec<u8>, Vec<u8>),
    Delete(Cf, Vec<u8>),
}

/// Writes applied all together or not at all, in order.
#[derive(Debug, Default)]
pub struct Batch {
    ops: Vec<Op>,
    deferred: bool,
}

impl Batch {
    /// Queues a put.
    pub fn put(&mut self, cf: Cf, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put(cf, key.into(), value.into()));
    }
    /// Queues a delete.
    pub fn delete(&mut self, cf: Cf, key: impl Into<Vec<u8>>) {
        self.ops.push(Op::Delete(cf, key.into()));
    }
    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    /// Lets the batch reach stable storage later, at the next durable write
    /// or [`KvStore::sync`] (bulk loads that sync once at the end).
    pub fn defer_sync(&mut self) {
        self.deferred = true;
    }
    /// Whether the batch may be written without waiting for stable storage.
    pub fn sync_deferred(&self) -> bool {
        self.deferred
    }
    /// The operations, in order (for backends).
    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }
}

/// The visitor of a scan: gets each key and value, returns whether to go on.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool> + 'a;

/// The visitor of [`KvStore::multi_get_visit`]: gets the index of a key
/// that is present and its value.
pub type VisitFound<'a> = dyn FnMut(usize, &[u8]) -> Result<()> + 'a;

/// A sorted key-value store with column families and atomic batches.
pub trait KvStore: Send + Sync {
    /// Point read.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Many point reads at once, answers in order.
    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>>;
    /// Many point reads in several families at once: for each `(family,
    /// keys)` of `wanted`, the answers in order. A store whose reads are
    /// round trips answers in one.
    ///
    /// The default reads each family with [`KvStore::multi_get`].
    fn multi_get_families(&self, wanted: &[(Cf, Vec<Vec<u8>>)]) -> Result<Vec<Vec<Option<Vec<u8>>>>> {
        wanted.iter().map(|(cf, keys)| self.multi_get(*cf, keys)).collect()
    }
    /// [`KvStore::multi_get`] handing each present value to `visit` where
    /// it lies, with its key's index, in no promised order: an embedded
    /// store reads many values without copying each (a cold full state
    /// reads hundreds of packed `nids` values). Absent keys are not
    /// visited. The caller keeps what it needs of the values: a store
    /// need not cache them (RocksDB does not add a large read's blocks to
    /// its block cache).
    ///
    /// The default visits the answers of [`KvStore::multi_get`].
    fn multi_get_visit(&self, cf: Cf, keys: &[Vec<u8>], visit: &mut VisitFound<'_>) -> Result<()> {
        for (i, v) in self.multi_get(cf, keys)?.into_iter().enumerate() {
            if let Some(v) = v {
                visit(i, &v)?;
            }
        }
        Ok(())
    }
    /// Applies a batch atomically; durable when it returns unless the batch
    /// defers its sync (see the module's promises).
    fn write(&self, batch: Batch) -> Result<()>;
    /// Makes every write that returned so far durable.
    fn sync(&self) -> Result<()>;
    /// Visits keys starting with `prefix` in ascending order until `visit`
    /// returns false.
    fn scan_prefix(&self, cf: Cf, prefix: &[u8], visit: &mut Visit<'_>) -> Result<()>;
    /// Visits the keys in `[lower, upper)` in descending order until
    /// `visit` returns false.
    fn scan_range_rev(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()>;
    /// Visits the keys in `[lower, upper)` in ascending order until `visit`
    /// returns false. Meant for bounded ranges read at once (a run of
    /// group records): a backend where each read is a round trip answers
    /// a short range in one. A long range may be read in parts, each
    /// consistent in itself.
    ///
    /// The default reads the range with [`KvStore::scan_range_rev`] and
    /// visits it in ascending order (the whole range is read).
    fn scan_range(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        let mut items: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        self.scan_range_rev(cf, lower, upper, &mut |k, v| {
            items.push((k.to_vec(), v.to_vec()));
            Ok(true)
        })?;
        for (k, v) in items.iter().rev() {
            if !visit(k, v)? {
                break;
            }
        }
        Ok(())
    }
    /// The last key-value pair starting with `prefix`.
    fn last_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>>;
    /// Where the store is, for messages (a directory, a URL).
    fn location(&self) -> String;
    /// Size figures and maintenance, when the backend has them.
    fn maintenance(&self) -> Option<&dyn KvMaintenance> {
        None
    }
    /// Whether each read is a round trip to another process (PostgreSQL):
    /// the engine then reads what it can foresee in one multi-get rather
    /// than one read at a time. `false` for an embedded store, where the
    /// extra bookkeeping costs more than the reads it saves.
    fn reads_are_round_trips(&self) -> bool {
        false
    }
}

/// A shared store is a store: tests keep a handle on the store an engine
/// owns (to damage it, to reopen it).
impl<T: KvStore + ?Sized> KvStore for std::sync::Arc<T> {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).get(cf, key)
    }
    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        (**self).multi_get(cf, keys)
    }
    fn multi_get_families(&self, wanted: &[(Cf, Vec<Vec<u8>>)]) -> Result<Vec<Vec<Option<Vec<u8>>>>> {
        (**self).multi_get_families(wanted)
    }
    fn multi_get_visit(&self, cf: Cf, keys: &[Vec<u8>], visit: &mut VisitFound<'_>) -> Result<()> {
        (**self).multi_get_visit(cf, keys, visit)
    }
    fn write(&self, batch: Batch) -> Result<()> {
        (**self).write(batch)
    }
    fn sync(&self) -> Result<()> {
        (**self).sync()
    }
    fn scan_prefix(&self, cf: Cf, prefix: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        (**self).scan_prefix(cf, prefix, visit)
    }
    fn scan_range_rev(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        (**self).scan_range_rev(cf, lower, upper, visit)
    }
    fn scan_range(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        (**self).scan_range(cf, lower, upper, visit)
    }
    fn last_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        (**self).last_with_prefix(cf, prefix)
    }
    fn location(&self) -> String {
        (**self).location()
    }
    fn maintenance(&self) -> Option<&dyn KvMaintenance> {
        (**self).maintenance()
    }
    fn reads_are_round_trips(&self) -> bool {
        (**self).reads_are_round_trips()
    }
}

/// Size figures of one column family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CfSize {
    pub name: &'static str,
    /// Bytes in persistent files.
    pub stored_bytes: u64,
    /// Bytes in memory not yet persisted to files.
    pub buffered_bytes: u64,
    pub keys_estimate: u64,
}

/// Optional backend features: sizes and compaction.
pub trait KvMaintenance {
    /// Size figures per column family.
    fn sizes(&self) -> Result<Vec<CfSize>>;
    /// Bytes the whole database takes on disk.
    fn bytes_on_disk(&self) -> Result<u64>;
    /// Flushes buffers and compacts everything (for size measurements).
    fn compact(&self) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_listed_once_with_distinct_names() {
        let names: std::collections::BTreeSet<&str> = Cf::ALL.iter().map(|cf| cf.name()).collect();
        assert_eq!(names.len(), Cf::ALL.len());
        assert_eq!(&Cf::ALL[..Cf::V1.len()], &Cf::V1[..]);
        assert_eq!(Cf::ALL[Cf::V1.len()], Cf::Deletion);
        assert_eq!(Cf::ALL[Cf::V1.len() + 1], Cf::Auth);
    }

    /// A store with only the required methods: `scan_range` is the default.
    struct Plain(MemKv);

    impl KvStore for Plain {
        fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
            self.0.get(cf, key)
        }
        fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
            self.0.multi_get(cf, keys)
        }
        fn write(&self, batch: Batch) -> Result<()> {
            self.0.write(batch)
        }
        fn sync(&self) -> Result<()> {
            self.0.sync()
        }
        fn scan_prefix(&self, cf: Cf, prefix: &[u8], visit: &mut Visit<'_>) -> Result<()> {
            self.0.scan_prefix(cf, prefix, visit)
        }
        fn scan_range_rev(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
            self.0.scan_range_rev(cf, lower, upper, visit)
        }
        fn last_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
            self.0.last_with_prefix(cf, prefix)
        }
        fn location(&self) -> String {
            self.0.location()
        }
    }

    #[test]
    fn the_default_forward_range_scan_ascends_and_stops() {
        let kv = Plain(MemKv::new());
        let mut b = Batch::default();
        for k in [1u8, 3, 5, 7] {
            b.put(Cf::Groups, vec![k], vec![k * 10]);
        }
        kv.write(b).unwrap();
        let scan = |lo: &[u8], hi: &[u8], stop_after: usize| {
            let mut seen = Vec::new();
            kv.scan_range(Cf::Groups, lo, hi, &mut |k, v| {
                seen.push((k.to_vec(), v.to_vec()));
                Ok(seen.len() < stop_after)
            })
            .unwrap();
            seen
        };
        assert_eq!(
            scan(&[2], &[7], usize::MAX),
            vec![(vec![3], vec![30]), (vec![5], vec![50])]
        );
        assert_eq!(scan(&[], &[9], 1), vec![(vec![1], vec![10])]);
        assert!(scan(&[5], &[5], usize::MAX).is_empty());
        assert!(scan(&[7], &[1], usize::MAX).is_empty());
    }
}
