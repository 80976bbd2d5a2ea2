//! Import markers, compaction and figures.

use mxstate_api::Result;

use crate::format::keys::meta;
use crate::kv::{Batch, Cf};

use super::stats::{self, Stats};
use super::Engine;

impl Engine {
    /// Marks an import as running; `finish_import` clears it.
    pub fn begin_import(&self, description: &str) -> Result<()> {
        let mut b = Batch::default();
        b.put(Cf::Meta, meta::IMPORT.to_vec(), description.as_bytes().to_vec());
        self.kv.write(b)
    }

    /// Marks the import as complete.
    pub fn finish_import(&self) -> Result<()> {
        let mut b = Batch::default();
        b.delete(Cf::Meta, meta::IMPORT.to_vec());
        self.kv.write(b)
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

    /// Figures about the database.
    pub fn stats(&self) -> Result<Stats> {
        let _shared = self.read_gate()?;
        let counters = self.writer()?.counters;
        stats::collect(&*self.kv, &counters)
    }
}
