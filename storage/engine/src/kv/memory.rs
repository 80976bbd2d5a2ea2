//! [`MemKv`]: the key-value seam over ordered maps in memory, for tests of
//! the engine without a disk backend.

use std::collections::BTreeMap;
use std::sync::RwLock;

use mxstate_api::{Error, Result};

use super::{Batch, Cf, KvStore, Op, Visit};

type Family = BTreeMap<Vec<u8>, Vec<u8>>;

/// An in-memory [`KvStore`]: one ordered map per column family.
#[derive(Default)]
pub struct MemKv {
    families: RwLock<BTreeMap<Cf, Family>>,
}

impl MemKv {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read<T>(&self, f: impl FnOnce(&BTreeMap<Cf, Family>) -> T) -> Result<T> {
        let g = self
            .families
            .read()
            .map_err(|_| Error::internal("MemKv: a writer panicked holding the lock"))?;
        Ok(f(&g))
    }
}

impl KvStore for MemKv {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.read(|m| m.get(&cf).and_then(|f| f.get(key)).cloned())
    }

    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        self.read(|m| {
            keys.iter()
                .map(|k| m.get(&cf).and_then(|f| f.get(k)).cloned())
                .collect()
        })
    }

    fn write(&self, batch: Batch) -> Result<()> {
        let mut g = self
            .families
            .write()
            .map_err(|_| Error::internal("MemKv: a writer panicked holding the lock"))?;
        for op in batch.into_ops() {
            match op {
                Op::Put(cf, k, v) => {
                    g.entry(cf).or_default().insert(k, v);
                }
                Op::Delete(cf, k) => {
                    g.entry(cf).or_default().remove(&k);
                }
            }
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        // Nothing outlives the process: every write is as durable as it gets.
        Ok(())
    }

    fn scan_prefix(&self, cf: Cf, prefix: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        // Copy the matching range out so `visit` runs without the lock.
        let items: Vec<(Vec<u8>, Vec<u8>)> = self.read(|m| {
            m.get(&cf)
                .map(|f| {
                    f.range(prefix.to_vec()..)
                        .take_while(|(k, _)| k.starts_with(prefix))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default()
        })?;
        visit_items(items, visit)
    }

    fn scan_range_rev(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        if lower >= upper {
            return Ok(());
        }
        let items: Vec<(Vec<u8>, Vec<u8>)> = self.read(|m| {
            m.get(&cf)
                .map(|f| {
                    f.range(lower.to_vec()..upper.to_vec())
                        .rev()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default()
        })?;
        visit_items(items, visit)
    }

    fn scan_range(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        if lower >= upper {
            return Ok(());
        }
        let items: Vec<(Vec<u8>, Vec<u8>)> = self.read(|m| {
            m.get(&cf)
                .map(|f| {
                    f.range(lower.to_vec()..upper.to_vec())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default()
        })?;
        visit_items(items, visit)
    }

    fn last_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.read(|m| {
            m.get(&cf).and_then(|f| {
                f.range(prefix.to_vec()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .last()
                    .map(|(k, v)| (k.clone(), v.clone()))
            })
        })
    }

    fn location(&self) -> String {
        "memory".to_owned()
    }
}

/// Visits copied-out pairs (the lock is not held) until `visit` says stop.
fn visit_items(items: Vec<(Vec<u8>, Vec<u8>)>, visit: &mut Visit<'_>) -> Result<()> {
    for (k, v) in items {
        if !visit(&k, &v)? {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_scans_and_last() {
        let kv = MemKv::new();
        let mut b = Batch::default();
        b.put(Cf::Groups, vec![1, 1], vec![1]);
        b.put(Cf::Groups, vec![1, 2], vec![2]);
        b.put(Cf::Groups, vec![2], vec![3]);
        b.put(Cf::Meta, vec![1, 9], vec![4]);
        b.delete(Cf::Groups, vec![2]);
        kv.write(b).unwrap();
        assert_eq!(kv.get(Cf::Groups, &[1, 2]).unwrap(), Some(vec![2]));
        assert_eq!(kv.get(Cf::Groups, &[2]).unwrap(), None);
        let mut seen = Vec::new();
        kv.scan_prefix(Cf::Groups, &[1], &mut |k, _| {
            seen.push(k.to_vec());
            Ok(true)
        })
        .unwrap();
        assert_eq!(seen, vec![vec![1, 1], vec![1, 2]]);
        assert_eq!(
            kv.last_with_prefix(Cf::Groups, &[1]).unwrap(),
            Some((vec![1, 2], vec![2]))
        );
        assert_eq!(kv.last_with_prefix(Cf::Meta, &[2]).unwrap(), None);
        let mut rev = Vec::new();
        kv.scan_range_rev(Cf::Groups, &[1, 1], &[1, 3], &mut |k, _| {
            rev.push(k.to_vec());
            Ok(true)
        })
        .unwrap();
        assert_eq!(rev, vec![vec![1, 2], vec![1, 1]]);
        let mut up = Vec::new();
        kv.scan_range(Cf::Groups, &[1, 1], &[1, 3], &mut |k, _| {
            up.push(k.to_vec());
            Ok(true)
        })
        .unwrap();
        assert_eq!(up, vec![vec![1, 1], vec![1, 2]]);
        // Upper bound excluded, stopped early, empty and inverted ranges.
        let mut first = Vec::new();
        kv.scan_range(Cf::Groups, &[], &[1, 2], &mut |k, _| {
            first.push(k.to_vec());
            Ok(false)
        })
        .unwrap();
        assert_eq!(first, vec![vec![1, 1]]);
        for (lo, hi) in [(&[1u8, 2][..], &[1u8, 2][..]), (&[1, 3], &[1, 1])] {
            kv.scan_range(Cf::Groups, lo, hi, &mut |k, _| panic!("visited {k:?}"))
                .unwrap();
        }
        assert_eq!(
            kv.multi_get(Cf::Groups, &[vec![1, 1], vec![3]]).unwrap(),
            vec![Some(vec![1]), None]
        );
    }
}
