//! Reads that must not wait for the store.
//!
//! An async caller (the `StateStore` trait, on a runtime's thread) first
//! tries a small read with [`forbid`] held: every access to the engine's
//! store then fails at once, so the attempt answers from the caches or
//! gives up, and the caller runs the read again on a thread that may block.
//! The engine wraps every store it opens in [`Guarded`], the one place that
//! checks store accesses; work too long for such a thread that needs no
//! store (merging a checkpoint's chain) calls [`refuse`] itself.

use std::cell::Cell;

use mxstate_api::{Error, Result};

use super::{Batch, Cf, KvMaintenance, KvStore, Visit, VisitFound};

thread_local! {
    static FORBIDDEN: Cell<bool> = const { Cell::new(false) };
}

/// Store accesses on this thread fail until it is dropped.
pub struct Forbidden {
    before: bool,
}

/// Makes every store access on this thread fail until the guard is dropped.
pub fn forbid() -> Forbidden {
    Forbidden {
        before: FORBIDDEN.with(|f| f.replace(true)),
    }
}

impl Drop for Forbidden {
    fn drop(&mut self) {
        FORBIDDEN.with(|f| f.set(self.before));
    }
}

/// Whether store accesses on this thread are forbidden.
pub fn forbidden() -> bool {
    FORBIDDEN.with(Cell::get)
}

/// Fails when this thread must not wait: for work that is not a store
/// access but too long for such a thread (`what` names it).
pub fn refuse(what: &str) -> Result<()> {
    if forbidden() {
        return Err(Error::internal(format!("{what} on a thread that must not wait")));
    }
    Ok(())
}

fn check() -> Result<()> {
    refuse("a store access")
}

/// A store whose every access fails while [`forbid`] is held on the
/// calling thread.
pub struct Guarded(pub Box<dyn KvStore>);

impl KvStore for Guarded {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        check()?;
        self.0.get(cf, key)
    }
    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        check()?;
        self.0.multi_get(cf, keys)
    }
    fn multi_get_families(&self, wanted: &[(Cf, Vec<Vec<u8>>)]) -> Result<Vec<Vec<Option<Vec<u8>>>>> {
        check()?;
        self.0.multi_get_families(wanted)
    }
    fn multi_get_visit(&self, cf: Cf, keys: &[Vec<u8>], visit: &mut VisitFound<'_>) -> Result<()> {
        check()?;
        self.0.multi_get_visit(cf, keys, visit)
    }
    fn write(&self, batch: Batch) -> Result<()> {
        check()?;
        self.0.write(batch)
    }
    fn sync(&self) -> Result<()> {
        check()?;
        self.0.sync()
    }
    fn scan_prefix(&self, cf: Cf, prefix: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        check()?;
        self.0.scan_prefix(cf, prefix, visit)
    }
    fn scan_range_rev(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        check()?;
        self.0.scan_range_rev(cf, lower, upper, visit)
    }
    fn scan_range(&self, cf: Cf, lower: &[u8], upper: &[u8], visit: &mut Visit<'_>) -> Result<()> {
        check()?;
        self.0.scan_range(cf, lower, upper, visit)
    }
    fn last_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        check()?;
        self.0.last_with_prefix(cf, prefix)
    }
    fn location(&self) -> String {
        self.0.location()
    }
    fn maintenance(&self) -> Option<&dyn KvMaintenance> {
        self.0.maintenance()
    }
    fn reads_are_round_trips(&self) -> bool {
        self.0.reads_are_round_trips()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::kv::MemKv;

    #[test]
    fn every_access_fails_while_forbidden_and_nesting_restores() {
        let kv = Guarded(Box::new(MemKv::default()));
        let mut b = Batch::default();
        b.put(Cf::Meta, b"k".to_vec(), b"v".to_vec());
        kv.write(b).unwrap();
        let keys = vec![b"k".to_vec()];
        let reads = |kv: &Guarded| -> Vec<bool> {
            vec![
                kv.get(Cf::Meta, b"k").is_ok(),
                kv.multi_get(Cf::Meta, &keys).is_ok(),
                kv.multi_get_families(&[(Cf::Meta, keys.clone())]).is_ok(),
                kv.multi_get_visit(Cf::Meta, &keys, &mut |_, _| Ok(())).is_ok(),
                kv.scan_prefix(Cf::Meta, b"", &mut |_, _| Ok(true)).is_ok(),
                kv.scan_range(Cf::Meta, b"a", b"z", &mut |_, _| Ok(true)).is_ok(),
                kv.scan_range_rev(Cf::Meta, b"a", b"z", &mut |_, _| Ok(true)).is_ok(),
                kv.last_with_prefix(Cf::Meta, b"").is_ok(),
                kv.write(Batch::default()).is_ok(),
                kv.sync().is_ok(),
            ]
        };
        assert!(reads(&kv).iter().all(|&ok| ok));
        {
            let _outer = forbid();
            assert!(reads(&kv).iter().all(|&ok| !ok));
            {
                let _inner = forbid();
                assert!(forbidden());
            }
            // The inner guard restores the outer one's state.
            assert!(forbidden());
            assert!(reads(&kv).iter().all(|&ok| !ok));
            // Another thread is not affected.
            std::thread::scope(|s| {
                s.spawn(|| assert!(reads(&kv).iter().all(|&ok| ok)));
            });
        }
        assert!(!forbidden());
        assert_eq!(kv.get(Cf::Meta, b"k").unwrap(), Some(b"v".to_vec()));
    }
}
