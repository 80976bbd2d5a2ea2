//! [`Engine::check`]: an fsck. Reads every record of every column family
//! from the store (not the engine's caches) and verifies each invariant
//! docs/design.md states, reporting what is wrong instead of stopping at
//! the first damage. Memory stays bounded: records are visited in key
//! order and cross-checked by point reads; the only table kept is one
//! reference count per snapshot.
//!
//! One file per group of invariants: `groups` (records, chains, the room
//! index), `snapshots` (snapshots and their hashes), `indexes` (interned
//! strings, event mappings, current state, deletion marks).

mod groups;
mod indexes;
mod snapshots;

use rustc_hash::FxHashMap;

use mxstate_api::Result;

use crate::access::{Caches, Committed};
use crate::format::counters::Counters;
use crate::format::keys::StrKind;
use crate::format::record::{decode_record, shown, Record};
use crate::format::version::FormatVersion;
use crate::kv::{Cf, KvStore};
use crate::write::ChainPolicy;

/// Problems kept in a report (the total is counted past it).
pub const MAX_PROBLEMS: usize = 1000;

/// Cache for the records a check decodes (chains are walked through it).
const CHECK_CACHE_BYTES: u64 = 64 << 20;

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The invariant, as docs/design.md ("Invariants") names it.
    pub invariant: &'static str,
    /// Where: a column family and key, a group, a snapshot.
    pub location: String,
    /// What was found.
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.invariant, self.location, self.detail)
    }
}

/// What [`Engine::check`] found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Records read, all column families.
    pub records: u64,
    pub groups: u64,
    pub ghosts: u64,
    pub snapshots: u64,
    pub strings: u64,
    pub event_mappings: u64,
    /// The description of an import that has not finished (not damage:
    /// rerunning the import completes it).
    pub import_incomplete: Option<String>,
    /// The first [`MAX_PROBLEMS`] problems.
    pub problems: Vec<Problem>,
    /// Every problem found.
    pub problems_total: u64,
}

impl CheckReport {
    /// Whether no invariant is broken.
    pub fn is_clean(&self) -> bool {
        self.problems_total == 0
    }
}

/// The state of one check run.
struct Checker<'a> {
    kv: &'a dyn KvStore,
    src: Committed<'a>,
    policy: &'a ChainPolicy,
    /// The persisted counters (the defaults until `meta` is read).
    counters: Counters,
    /// Groups using each snapshot, counted while walking the groups.
    snap_refs: FxHashMap<u64, u64>,
    report: CheckReport,
}

/// Checks the database in `kv` (see the module documentation), whose
/// writer holds `in_memory` counters and places groups by `policy`. The
/// caller keeps writers out while it runs.
pub(crate) fn run(kv: &dyn KvStore, policy: &ChainPolicy, in_memory: Counters) -> Result<CheckReport> {
    let caches = Caches::new(CHECK_CACHE_BYTES);
    let mut c = Checker {
        kv,
        src: Committed { kv, caches: &caches },
        policy,
        counters: Counters::default(),
        snap_refs: FxHashMap::default(),
        report: CheckReport::default(),
    };
    c.meta(in_memory)?;
    c.strings()?;
    c.groups()?;
    c.room_index()?;
    c.snapshots()?;
    c.snap_hashes()?;
    c.event_mappings()?;
    c.current_state()?;
    c.deletion()?;
    c.auth()?;
    Ok(c.report)
}

impl Checker<'_> {
    fn problem(&mut self, invariant: &'static str, location: impl Into<String>, detail: impl Into<String>) {
        self.report.problems_total += 1;
        if self.report.problems.len() < MAX_PROBLEMS {
            self.report.problems.push(Problem {
                invariant,
                location: location.into(),
                detail: detail.into(),
            });
        }
    }

    /// Visits every record of `cf` in key order, decoded; a record that
    /// does not decode is a problem, and the walk goes on.
    fn each(&mut self, cf: Cf, mut visit: impl FnMut(&mut Self, Record) -> Result<()>) -> Result<()> {
        let kv = self.kv;
        kv.scan_prefix(cf, &[], &mut |k, v| {
            self.report.records += 1;
            match decode_record(cf, k, v) {
                Ok(r) => visit(self, r)?,
                Err(e) => self.problem("record decodes", format!("{}/{}", cf.name(), shown(k)), e.to_string()),
            }
            Ok(true)
        })
    }

    /// Checks that `id` is below the counter that hands such ids out.
    fn below(&mut self, what: &'static str, id: u64, next: u64, at: impl FnOnce() -> String) {
        if id >= next {
            self.problem(
                "counters above ids",
                at(),
                format!("{what} {id} in use, but the counter hands out {next} next"),
            );
        }
    }

    fn string_counter(&self, kind: StrKind) -> u64 {
        self.counters.peek_nid(kind)
    }

    /// `meta`: the format version, the counters, import records.
    fn meta(&mut self, in_memory: Counters) -> Result<()> {
        let mut format = None;
        let mut counters = None;
        self.each(Cf::Meta, |c, r| {
            match r {
                Record::Format(v) => format = Some(v),
                Record::Counters(n) => counters = Some(n),
                Record::ImportMarker(d) => c.report.import_incomplete = Some(d),
                Record::ImportDone { .. } | Record::AuthMark(_) => {}
                other => c.problem("record decodes", "meta", format!("unexpected record {other:?}")),
            }
            Ok(())
        })?;
        if format != Some(FormatVersion::CURRENT) {
            self.problem(
                "format version",
                "meta/format",
                format!("{format:?}, this build writes {:?}", FormatVersion::CURRENT),
            );
        }
        match counters {
            None => self.problem("counters above ids", "meta/counters", "missing"),
            Some(n) => {
                if n != in_memory {
                    self.problem(
                        "counters above ids",
                        "meta/counters",
                        format!("stored {n:?}, the open engine holds {in_memory:?}"),
                    );
                }
                self.counters = n;
            }
        }
        Ok(())
    }
}
