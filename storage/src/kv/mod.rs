//! The key-value seam: all the engine needs from a store. RocksDB implements
//! it today (`rocks`); a distributed store (TiKV) could tomorrow.

pub mod rocks;

pub use rocks::RocksKv;

use crate::error::Result;

/// The column families (key spaces) of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
}

impl Cf {
    /// Every column family.
    pub const ALL: [Cf; 10] = [
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
        }
    }
}

/// One write in a batch.
#[derive(Debug, Clone)]
pub enum Op {
    Put(Cf, Vec<u8>, Vec<u8>),
    Delete(Cf, Vec<u8>),
}

/// Writes applied all together or not at all.
#[derive(Debug, Default)]
pub struct Batch {
    ops: Vec<Op>,
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
}

/// Size figures of one column family.
#[derive(Debug, Clone, Default)]
pub struct CfSize {
    pub name: &'static str,
    pub sst_bytes: u64,
    pub memtable_bytes: u64,
    pub keys_estimate: u64,
}

/// A sorted key-value store with column families and atomic batches.
pub trait KvStore: Send + Sync {
    /// Point read.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Many point reads at once, answers in order.
    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>>;
    /// Applies a batch atomically.
    fn write(&self, batch: Batch) -> Result<()>;
    /// Visits keys starting with `prefix` in order until `visit` returns false.
    fn scan_prefix(&self, cf: Cf, prefix: &[u8], visit: &mut dyn FnMut(&[u8], &[u8]) -> Result<bool>) -> Result<()>;
    /// The last key-value pair starting with `prefix`.
    fn last_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>>;
    /// Flushes memtables and compacts everything (for size measurements).
    fn compact(&self) -> Result<()>;
    /// Size figures per column family.
    fn sizes(&self) -> Result<Vec<CfSize>>;
}
