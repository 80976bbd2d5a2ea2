//! [`Engine`]: an open mxstate database over any [`KvStore`], answering the
//! homeserver's calls. One file per concern: groups, strings, event
//! mappings, current state, rooms and purges, export, maintenance.

mod auth;
mod current;
mod deletion;
mod events;
mod export;
mod groups;
mod maintenance;
mod migrate;
mod rooms;
mod stats;
mod strings;

pub use auth::AuthMark;
pub use export::ExportGroup;
pub use stats::{CfStats, Stats};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, TryLockError};

use mxstate_api::{Error, Result};

use crate::access::{intern, Caches, Committed};
use crate::auth::GraphCache;
use crate::format::counters::Counters;
use crate::format::keys::{meta, StrKind};
use crate::format::version::FormatVersion;
use crate::kv::{no_wait, Batch, Cf, KvStore};
use crate::read::IFilter;
use crate::write::{ChainPolicy, Txn, WriterMemory};

/// How to open a database.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Create the database if the store is empty.
    pub create: bool,
    /// Bytes for the decoded-record and string caches.
    pub cache_bytes: u64,
    pub policy: ChainPolicy,
    /// Open even if an import did not finish (the importer itself does).
    pub allow_incomplete_import: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            create: true,
            cache_bytes: 512 << 20,
            policy: ChainPolicy::default(),
            allow_incomplete_import: false,
        }
    }
}

/// The one writer's state between transactions.
struct Writer {
    counters: Counters,
    memory: WriterMemory,
}

/// An open mxstate database.
pub struct Engine {
    kv: Box<dyn KvStore>,
    caches: Caches,
    /// Held by the one writer while it builds and commits a batch.
    writer: Mutex<Writer>,
    /// Readers hold it shared; a commit that changes or removes what
    /// exists (purges) holds it exclusively, so a read never sees half of
    /// its effects in the caches or the store. Commits that only add do
    /// not take it: readers never wait for their sync.
    gate: RwLock<()>,
    policy: ChainPolicy,
    /// Set while an import runs: its batches defer their sync, and
    /// `finish_import` syncs once before clearing the incomplete marker.
    bulk: AtomicBool,
    /// Rooms' auth graphs, loaded on first use.
    auth_graphs: GraphCache,
}

/// A lock is poisoned only when a thread panicked holding it: a bug.
fn poisoned<T>(_: T) -> Error {
    Error::internal("engine lock poisoned: a thread panicked while holding it")
}

impl Engine {
    /// Opens the database held by `kv`; an empty store becomes a new
    /// database when `opts.create` is set.
    pub fn with_kv(kv: Box<dyn KvStore>, opts: EngineOptions) -> Result<Engine> {
        // Every access checks whether this thread may wait for the store
        // (`Engine::state_view_cached`).
        let kv: Box<dyn KvStore> = Box::new(no_wait::Guarded(kv));
        let counters = match kv.get(Cf::Meta, meta::FORMAT)? {
            None => {
                if !is_empty(&*kv)? {
                    return Err(Error::NotADatabase(kv.location()));
                }
                if !opts.create {
                    return Err(Error::NoDatabase(kv.location()));
                }
                let c = Counters::default();
                let mut b = Batch::default();
                b.put(
                    Cf::Meta,
                    meta::FORMAT.to_vec(),
                    FormatVersion::CURRENT.to_bytes().to_vec(),
                );
                b.put(Cf::Meta, meta::COUNTERS.to_vec(), c.encode());
                kv.write(b)?;
                c
            }
            Some(v) => {
                let version = FormatVersion::from_bytes(&v)?;
                if version != FormatVersion::CURRENT {
                    migrate::migrate(&*kv, version)?;
                }
                let c = kv
                    .get(Cf::Meta, meta::COUNTERS)?
                    .ok_or_else(|| Error::corrupt("counters", "meta/counters", "missing"))?;
                Counters::decode(&c)?
            }
        };
        if !opts.allow_incomplete_import {
            if let Some(m) = kv.get(Cf::Meta, meta::IMPORT)? {
                return Err(Error::ImportIncomplete(String::from_utf8_lossy(&m).into_owned()));
            }
        }
        Ok(Engine {
            kv,
            caches: Caches::new(opts.cache_bytes),
            writer: Mutex::new(Writer {
                counters,
                memory: WriterMemory::default(),
            }),
            gate: RwLock::new(()),
            policy: opts.policy,
            bulk: AtomicBool::new(false),
            // A sixteenth of the cache budget: about 300,000 events.
            auth_graphs: GraphCache::new((opts.cache_bytes / 16) as usize),
        })
    }

    /// Closes the database in a process about to exit: the store is
    /// closed as when the engine is dropped, but the caches are left for
    /// the exit to reclaim instead of being freed entry by entry (after
    /// reading 3,000 cold groups, a tenth of a short command's time).
    pub fn close_at_exit(self) {
        let Engine {
            kv,
            caches,
            auth_graphs,
            ..
        } = self;
        drop(kv);
        std::mem::forget(caches);
        std::mem::forget(auth_graphs);
    }

    /// Where the database is (a directory, a URL).
    pub fn location(&self) -> String {
        self.kv.location()
    }

    /// The chain policy new groups are placed by.
    pub fn policy(&self) -> &ChainPolicy {
        &self.policy
    }

    fn committed(&self) -> Committed<'_> {
        Committed {
            kv: &*self.kv,
            caches: &self.caches,
        }
    }

    /// Shared access for a read: no commit runs while it is held.
    fn read_gate(&self) -> Result<RwLockReadGuard<'_, ()>> {
        if no_wait::forbidden() {
            // A thread that must not wait does not queue behind a commit.
            return match self.gate.try_read() {
                Ok(g) => Ok(g),
                Err(TryLockError::Poisoned(e)) => Err(poisoned(e)),
                Err(TryLockError::WouldBlock) => Err(Error::internal(
                    "the readers' gate is held by a commit, on a thread that must not wait",
                )),
            };
        }
        self.gate.read().map_err(poisoned)
    }

    /// Runs the read `f` on this thread only if it needs nothing but the
    /// caches (see [`no_wait`]): every store access fails at once, and so
    /// does the readers' gate while a commit holds it. `None` when it
    /// could not answer so, or on any error; the caller then runs the read
    /// on a thread that may block, which gives the answer or the error.
    pub fn without_waiting<T>(&self, f: impl FnOnce(&Engine) -> Result<T>) -> Option<T> {
        let _forbid = no_wait::forbid();
        f(self).ok()
    }

    fn writer(&self) -> Result<MutexGuard<'_, Writer>> {
        self.writer.lock().map_err(poisoned)
    }

    /// Runs `f` in a write transaction and commits its batch atomically.
    fn write<T>(&self, f: impl FnOnce(&mut Txn<'_>) -> Result<T>) -> Result<T> {
        let mut writer = self.writer()?;
        let mut txn = Txn::new(
            &*self.kv,
            &self.caches,
            writer.counters,
            std::mem::take(&mut writer.memory),
        );
        let out = f(&mut txn)?;
        let (mut batch, counters, memory, update) = txn.finish()?;
        if self.bulk.load(Ordering::Relaxed) {
            batch.defer_sync();
        }
        if update.only_adds() {
            // Nothing a reader may hold changes: write (and wait for the
            // sync) without keeping readers out. The store makes the batch
            // visible whole, and the caches learn only new records.
            if !batch.is_empty() {
                self.kv.write(batch)?;
            }
            update.apply(&self.caches);
        } else {
            let _excl = self.gate.write().map_err(poisoned)?;
            if !batch.is_empty() {
                self.kv.write(batch)?;
            }
            update.apply(&self.caches);
        }
        *writer = Writer { counters, memory };
        Ok(out)
    }

    fn lookup(&self, kind: StrKind, s: &str) -> Result<Option<u64>> {
        intern::lookup(&*self.kv, &self.caches, kind, s)
    }

    fn ifilter(&self, filter: &mxstate_api::StateFilter) -> Result<IFilter> {
        IFilter::new(filter, |k, s| self.lookup(k, s))
    }
}

/// Whether the store holds no key at all (a new database).
fn is_empty(kv: &dyn KvStore) -> Result<bool> {
    for cf in Cf::ALL {
        let mut any = false;
        kv.scan_prefix(cf, &[], &mut |_, _| {
            any = true;
            Ok(false)
        })?;
        if any {
            return Ok(false);
        }
    }
    Ok(true)
}
