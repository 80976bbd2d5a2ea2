//! Import markers, compaction and figures.

use std::sync::atomic::Ordering;

use mxstate_api::Result;

use crate::format::keys::meta;
use crate::kv::{Batch, Cf};

use super::stats::{self, Stats};
use super::Engine;
use crate::check::CheckReport;

impl Engine {
    /// Marks an import as running (durably); `finish_import` clears it.
    /// Until then the engine's writes defer their sync: the marker keeps
    /// the database from being opened as complete, and a rerun resumes.
    pub fn begin_import(&self, description: &str) -> Result<()> {
        let mut b = Batch::default();
        b.put(Cf::Meta, meta::IMPORT.to_vec(), description.as_bytes().to_vec());
        self.kv.write(b)?;
        self.bulk.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Marks the import as complete, once everything it wrote is synced,
    /// and remembers the source's `fingerprint` so that a rerun of the same
    /// import can tell it is already done ([`Engine::completed_import`]).
    pub fn finish_import(&self, fingerprint: u128, description: &str) -> Result<()> {
        self.kv.sync()?;
        self.bulk.store(false, Ordering::Relaxed);
        let mut b = Batch::default();
        b.delete(Cf::Meta, meta::IMPORT.to_vec());
        b.put(
            Cf::Meta,
            meta::import_done_key(fingerprint),
            description.as_bytes().to_vec(),
        );
        self.kv.write(b)
    }

    /// The description of a completed import of the source with
    /// `fingerprint`, if there was one.
    pub fn completed_import(&self, fingerprint: u128) -> Result<Option<String>> {
        Ok(self
            .kv
            .get(Cf::Meta, &meta::import_done_key(fingerprint))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Whether any import into this database completed.
    pub fn any_completed_import(&self) -> Result<bool> {
        let mut any = false;
        self.kv.scan_prefix(Cf::Meta, meta::IMPORT_DONE, &mut |_, _| {
            any = true;
            Ok(false)
        })?;
        Ok(any)
    }

    /// Makes every write so far durable (a no-op after a durable write).
    pub fn sync(&self) -> Result<()> {
        self.kv.sync()
    }

    /// The running import's description, if one did not finish.
    pub fn import_marker(&self) -> Result<Option<String>> {
        Ok(self
            .kv
            .get(Cf::Meta, meta::IMPORT)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Flushes and compacts the store; a backend without compaction (an
    /// in-memory store) has nothing to do.
    pub fn compact(&self) -> Result<()> {
        match self.kv.maintenance() {
            Some(m) => m.compact(),
            None => Ok(()),
        }
    }

    /// Checks every record and index of the database against the
    /// invariants of docs/design.md (an fsck). Damage is reported in the
    /// [`CheckReport`]; an `Err` means the check could not run (the store
    /// failed). Writers wait while it runs; readers do not.
    pub fn check(&self) -> Result<CheckReport> {
        // Holding the writer keeps every commit out, so the counters and
        // the records stay as read.
        let writer = self.writer()?;
        crate::check::run(&*self.kv, &self.policy, writer.counters)
    }

    /// Figures about the database.
    pub fn stats(&self) -> Result<Stats> {
        let _shared = self.read_gate()?;
        let counters = self.writer()?.counters;
        stats::collect(&*self.kv, &counters)
    }
}
