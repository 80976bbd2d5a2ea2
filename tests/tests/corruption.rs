//! Damaged databases. A database is built from a known workload (the crash
//! loop's operation sequence, checked against the model), compacted to SST
//! files, then written a little more (that part is in the WAL). Then:
//!
//! (a) random bytes are flipped in one of its files (an SST file, the
//! MANIFEST, a WAL file), and the database reopened: opening may fail with a
//! typed error (Corrupt or Backend); otherwise every read (every group under
//! several filters and its delta, room groups, current state, event
//! mappings) returns the model's answer or a typed Corrupt/Backend error,
//! and when reads fail `check()` reports damage (or fails with such an
//! error). A flipped WAL record ends RocksDB's point-in-time recovery
//! there: the answers must then be the model's at one earlier operation,
//! never a mix.
//!
//! (b) one record's value is overwritten through `RocksKv` (truncated, one
//! byte flipped, version byte changed, random bytes) in every column family
//! that holds records; on reopening, reads are right or typed errors, and
//! `check()` names the record when reads fail or a version byte changed.
//!
//! Nothing may panic (caught, reported with the seed). Seeds: from the
//! clock, or `MXSTATE_CORRUPTION_SEED`; every failure names the seed, the
//! file and the offsets (or the record).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mxstate_api::{ErrorKind, MemoryStore, StateStore};
use mxstate_engine::kv::{Batch, Cf, KvStore};
use mxstate_engine::{CheckReport, EngineOptions, EngineStore};
use mxstate_rocks::{RocksConfig, RocksKv};
use mxstate_tests::crash::{
    apply, auth_op, clock_seed, engine_options, generate, observe, room_id, Named, Observation, Op, Rng, ROOMS,
};
use mxstate_tests::runtime;

/// Operations before the compaction, and after it (in the WAL).
const OPS: u64 = 220;
const WAL_OPS: u64 = 12;

/// A database built from a known workload, and the model's answers.
struct Workload {
    _dir: tempfile::TempDir,
    db: PathBuf,
    named: Named,
    /// The model's answers after the compaction (`[0]`) and after each
    /// operation written after it; the last is the final state.
    answers: Vec<Observation>,
}

fn base_seed() -> u64 {
    std::env::var("MXSTATE_CORRUPTION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(clock_seed)
}

fn build(seed: u64) -> Workload {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let engine = mxstate_rocks::open(
        &db,
        EngineOptions {
            create: true,
            ..engine_options()
        },
    )
    .unwrap();
    let store = EngineStore::new(Arc::new(engine));
    let model = MemoryStore::new();
    let rt = runtime();
    let mut named = Named::default();
    let mut ops = Vec::new();
    for n in 0..OPS + WAL_OPS {
        if n == OPS {
            // Some pending deletions of live groups, so that the deletion
            // family has records.
            let mut live = Vec::new();
            for r in 0..ROOMS {
                live.extend(rt.block_on(StateStore::room_groups(&model, room_id(r))).unwrap());
            }
            let groups: BTreeSet<u64> = live.into_iter().step_by(9).collect();
            store
                .engine()
                .mark_pending_deletion(&groups, 1_700_000_000_000)
                .unwrap();
            store.engine().compact().unwrap();
        }
        let mut rooms = Vec::new();
        for r in 0..ROOMS {
            rooms.push(rt.block_on(StateStore::room_groups(&model, room_id(r))).unwrap());
        }
        // The last operations before the compaction give every room a
        // current state, so that its family has records whatever the seed.
        // And auth events, just before.
        let rooms_u64 = u64::from(ROOMS);
        let op = if (OPS - rooms_u64..OPS).contains(&n) {
            Op::CurrentState {
                room: (n - (OPS - rooms_u64)) as u8,
                state: vec![(0, 1, n * 100 + 97), (2, 0, n * 100 + 98)],
            }
        } else if (OPS - 2 * rooms_u64..OPS - rooms_u64).contains(&n) {
            let mut next = n * 100;
            let mut event = || {
                next += 1;
                next
            };
            auth_op(
                &mut Rng::new(seed ^ n),
                n,
                (n - (OPS - 2 * rooms_u64)) as u8,
                &mut event,
            )
        } else {
            generate(seed, n, &rooms)
        };
        named.add(&op);
        let a = rt.block_on(apply(&model, &op)).map_err(|e| e.kind());
        let b = rt.block_on(apply(&store, &op)).map_err(|e| e.kind());
        assert_eq!(
            a,
            b,
            "seed {seed}: model and database disagree on operation {n}: {}",
            op.encode()
        );
        ops.push(op);
    }
    // The model's answers at each point after the compaction, about every
    // group and event named by any operation.
    let replay = MemoryStore::new();
    let mut answers = Vec::new();
    for (n, op) in ops.iter().enumerate() {
        if n as u64 >= OPS {
            answers.push(rt.block_on(observe(&replay, &named)));
        }
        let _ = rt.block_on(apply(&replay, op));
    }
    answers.push(rt.block_on(observe(&replay, &named)));
    let got = rt.block_on(observe(&store, &named));
    assert_eq!(
        &got,
        answers.last().unwrap(),
        "seed {seed}: the undamaged database differs from the model"
    );
    let report = store.engine().check().unwrap();
    mxstate_tests::crash::check_clean(&report).unwrap_or_else(|e| panic!("seed {seed}: undamaged: {e}"));
    drop(store);
    Workload {
        _dir: dir,
        db,
        named,
        answers,
    }
}

/// A copy of the database in a new directory.
fn copy_db(from: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("db");
    std::fs::create_dir(&to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() && e.file_name() != "LOCK" {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    (dir, to)
}

fn is_damage(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::Corrupt | ErrorKind::Backend)
}

fn damage_answer(v: &str) -> bool {
    v == "error Corrupt" || v == "error Backend"
}

/// Compares the answers of a damaged database with the model's: each is
/// the model's or a typed damage error (a group whose first read failed is
/// not read further). Returns the errors seen, or the first wrong answers.
fn compare(db: &Observation, model: &Observation) -> Result<usize, Vec<String>> {
    let failed_groups: BTreeSet<&str> = db
        .iter()
        .filter(|(k, v)| k.starts_with("group ") && k.split(' ').count() == 2 && damage_answer(v))
        .map(|(k, _)| k.as_str())
        .collect();
    let events_failed = db.get("events").is_some_and(|v| damage_answer(v));
    let keys: BTreeSet<&String> = db.keys().chain(model.keys()).collect();
    let mut errors = 0;
    let mut wrong = Vec::new();
    for k in keys {
        let (d, m) = (db.get(k), model.get(k));
        if d.is_some_and(|d| damage_answer(d)) {
            errors += 1;
            continue;
        }
        let group_of = k.split(' ').take(2).collect::<Vec<_>>().join(" ");
        if failed_groups.contains(group_of.as_str()) || (events_failed && k.starts_with("event ")) {
            continue;
        }
        if d != m {
            wrong.push(format!("{k}: database {d:?} / model {m:?}"));
        }
    }
    if wrong.is_empty() {
        Ok(errors)
    } else {
        Err(wrong)
    }
}

/// What happened to one damaged database.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Opening failed with this kind.
    OpenRefused(String),
    /// Every answer right (at operation `prefix` of those after compaction).
    Right { prefix: usize },
    /// Some answers were typed errors, the others right.
    Errors { prefix: usize },
}

/// What check() said about a damaged database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Checked {
    NotRun,
    Clean,
    Problems,
    Failed,
}

fn check_outcome(r: mxstate_api::Result<CheckReport>) -> (Checked, Option<CheckReport>) {
    match r {
        Err(e) if is_damage(e.kind()) => (Checked::Failed, None),
        Err(e) => panic!("check() failed with an untyped error: {:?} {e}", e.kind()),
        Ok(rep) if rep.is_clean() => (Checked::Clean, Some(rep)),
        Ok(rep) => (Checked::Problems, Some(rep)),
    }
}

/// Opens the damaged database, reads everything, runs check(). `prefixes`
/// are the indexes into `w.answers` the answers may match.
fn examine(w: &Workload, db: &Path, prefixes: &[usize]) -> Result<(Outcome, Checked, Option<CheckReport>), String> {
    let engine = match mxstate_rocks::open(db, engine_options()) {
        Ok(e) => e,
        Err(e) if is_damage(e.kind()) => {
            return Ok((Outcome::OpenRefused(format!("{:?}", e.kind())), Checked::NotRun, None))
        }
        Err(e) => return Err(format!("opening failed with an untyped error: {:?} {e}", e.kind())),
    };
    let store = EngineStore::new(Arc::new(engine));
    let got = runtime().block_on(observe(&store, &w.named));
    let mut best: Option<(usize, Vec<String>)> = None;
    let mut found = None;
    for &p in prefixes.iter().rev() {
        match compare(&got, &w.answers[p]) {
            Ok(errors) => {
                found = Some((p, errors));
                break;
            }
            Err(wrong) => {
                if best.as_ref().is_none_or(|b| wrong.len() < b.1.len()) {
                    best = Some((p, wrong));
                }
            }
        }
    }
    let Some((prefix, errors)) = found else {
        let (p, wrong) = best.unwrap_or_default();
        return Err(format!(
            "wrong answers (closest: the model after {p} of the operations after compaction):\n    {}",
            wrong.into_iter().take(8).collect::<Vec<_>>().join("\n    ")
        ));
    };
    let (checked, report) = check_outcome(store.engine().check());
    if errors > 0 && checked == Checked::Clean {
        return Err(format!(
            "{errors} reads failed with damage errors, but check() is clean"
        ));
    }
    let outcome = if errors > 0 {
        Outcome::Errors { prefix }
    } else {
        Outcome::Right { prefix }
    };
    Ok((outcome, checked, report))
}

/// Runs `f`, turning a panic into an error.
fn no_panic<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            Err(format!("PANIC: {msg}"))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum FileKind {
    Sst,
    Manifest,
    Wal,
}

fn files_of(db: &Path, kind: FileKind) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(db)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            len > 0
                && match kind {
                    FileKind::Sst => name.ends_with(".sst"),
                    FileKind::Manifest => name.starts_with("MANIFEST-"),
                    FileKind::Wal => name.ends_with(".log"),
                }
        })
        .collect();
    v.sort();
    v
}

/// Ends the process, naming the trial, when one trial runs longer than
/// `TRIAL_LIMIT`: a hang inside RocksDB (such as its MANIFEST reader looping
/// on a flipped record type) would otherwise show only as a CI timeout,
/// with the seed lost in the captured output.
struct Watchdog {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

const TRIAL_LIMIT: std::time::Duration = std::time::Duration::from_secs(180);

impl Watchdog {
    fn start(what: &str) -> Watchdog {
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, what) = (done.clone(), what.to_owned());
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if start.elapsed() > TRIAL_LIMIT {
                    // Straight to the process's stderr: the test harness
                    // captures only the print macros.
                    use std::io::Write;
                    let _ = writeln!(
                        std::io::stderr(),
                        "corruption trial still running after {TRIAL_LIMIT:?}, a hang: {what}"
                    );
                    std::process::exit(3);
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
        Watchdog { done }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn flipped_bytes_in_files_give_right_answers_or_typed_errors() {
    let seed = base_seed();
    println!("corruption (files) seed {seed} (rerun with MXSTATE_CORRUPTION_SEED={seed})");
    let w = build(seed);
    let all: Vec<usize> = (0..w.answers.len()).collect();
    let last = [w.answers.len() - 1];
    for kind in [FileKind::Sst, FileKind::Manifest, FileKind::Wal] {
        assert!(
            !files_of(&w.db, kind).is_empty(),
            "seed {seed}: the workload left no {kind:?} file"
        );
    }
    let plan: Vec<FileKind> = [(FileKind::Sst, 36), (FileKind::Manifest, 16), (FileKind::Wal, 24)]
        .iter()
        .flat_map(|&(k, n)| std::iter::repeat_n(k, n))
        .collect();
    let mut tally: BTreeMap<(FileKind, String, Checked), u64> = BTreeMap::new();
    let mut failures = Vec::new();
    for (i, &kind) in plan.iter().enumerate() {
        let trial_seed = seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9);
        let mut r = Rng::new(trial_seed);
        let (_tmp, db) = copy_db(&w.db);
        let files = files_of(&db, kind);
        let file = files[r.below(files.len() as u64) as usize].clone();
        let mut bytes = std::fs::read(&file).unwrap();
        let mut offsets = Vec::new();
        for _ in 0..r.range(1, 3) {
            let at = r.below(bytes.len() as u64) as usize;
            let x = r.range(1, 255) as u8;
            bytes[at] ^= x;
            offsets.push((at, x));
        }
        std::fs::write(&file, &bytes).unwrap();
        let what = format!(
            "seed {seed} trial {i}: {} ({} bytes), offsets and xor masks {offsets:?}",
            file.file_name().unwrap().to_string_lossy(),
            bytes.len()
        );
        // A damaged WAL record ends recovery there: any earlier point.
        let prefixes: &[usize] = if kind == FileKind::Wal { &all } else { &last };
        let _watch = Watchdog::start(&what);
        match no_panic(|| examine(&w, &db, prefixes)) {
            Ok((outcome, checked, _)) => {
                let label = match outcome {
                    Outcome::OpenRefused(k) => format!("open refused ({k})"),
                    Outcome::Right { prefix } if prefix + 1 == w.answers.len() => "all right".to_owned(),
                    Outcome::Right { prefix } => format!("all right at an earlier point ({prefix})"),
                    Outcome::Errors { prefix } if prefix + 1 == w.answers.len() => "typed errors".to_owned(),
                    Outcome::Errors { prefix } => format!("typed errors, earlier point ({prefix})"),
                };
                *tally.entry((kind, label, checked)).or_default() += 1;
            }
            Err(e) => failures.push(format!("{what}: {e}")),
        }
    }
    for ((kind, label, checked), n) in &tally {
        println!("{kind:?}: {label}, check {checked:?}: {n}");
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Where each record of a RocksDB log file (the MANIFEST's format: 32 KiB
/// blocks, records with a 7-byte header of checksum, length and type)
/// starts.
fn log_record_starts(bytes: &[u8]) -> Vec<usize> {
    const BLOCK: usize = 32 << 10;
    let mut starts = Vec::new();
    let mut at = 0;
    while at + 7 <= bytes.len() {
        let left_in_block = BLOCK - at % BLOCK;
        if left_in_block < 7 {
            at += left_in_block;
            continue;
        }
        let len = u16::from_le_bytes([bytes[at + 4], bytes[at + 5]]) as usize;
        if len == 0 && bytes[at + 6] == 0 {
            break;
        }
        starts.push(at);
        at += 7 + len;
    }
    starts
}

/// A MANIFEST whose tail is lost: cut short at each record, or with a
/// record's length field damaged so that the record seems to run past the
/// end of the file. RocksDB takes either for a torn last write and opens
/// the database as the shorter MANIFEST describes it, without an error;
/// the files it no longer lists, and the WAL files it had since deleted,
/// must not turn into silently missing data: reads are right or typed
/// errors, or the open is refused.
#[test]
fn a_manifest_losing_its_tail_is_refused_or_right() {
    let seed = base_seed();
    println!("manifest tails seed {seed} (rerun with MXSTATE_CORRUPTION_SEED={seed})");
    let w = build(seed);
    let last = [w.answers.len() - 1];
    let manifest = files_of(&w.db, FileKind::Manifest);
    assert_eq!(manifest.len(), 1, "seed {seed}: one MANIFEST expected");
    let name = manifest[0].file_name().unwrap().to_owned();
    let original = std::fs::read(&manifest[0]).unwrap();
    let starts = log_record_starts(&original);
    assert!(starts.len() > 20, "seed {seed}: only {} MANIFEST records", starts.len());
    let mut tally: BTreeMap<String, u64> = BTreeMap::new();
    let mut failures = Vec::new();
    for &at in &starts[1..] {
        for damage in ["cut", "length"] {
            let (_tmp, db) = copy_db(&w.db);
            let mut bytes = original.clone();
            if damage == "cut" {
                bytes.truncate(at);
            } else {
                bytes[at + 4] = 0xff;
                bytes[at + 5] = 0x7f;
            }
            std::fs::write(db.join(&name), &bytes).unwrap();
            let _watch = Watchdog::start(&format!("seed {seed}: MANIFEST {damage} at {at}"));
            match no_panic(|| examine(&w, &db, &last)) {
                Ok((outcome, _, _)) => {
                    let label = match outcome {
                        Outcome::OpenRefused(k) => format!("open refused ({k})"),
                        Outcome::Right { .. } => "all right".to_owned(),
                        Outcome::Errors { .. } => "typed errors".to_owned(),
                    };
                    *tally.entry(format!("{damage}: {label}")).or_default() += 1;
                }
                Err(e) => failures.push(format!("seed {seed}: {damage} at byte {at} of {}: {e}", original.len())),
            }
        }
    }
    for (label, n) in &tally {
        println!("{label}: {n}");
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mutation {
    Truncated,
    ByteFlipped,
    VersionChanged,
    Random,
}

fn mutate(m: Mutation, v: &[u8], r: &mut Rng) -> Vec<u8> {
    let mut out = v.to_vec();
    match m {
        Mutation::Truncated if v.is_empty() => out.push(0x80),
        Mutation::Truncated => out.truncate(r.below(v.len() as u64) as usize),
        Mutation::ByteFlipped if v.is_empty() => out.push(r.range(1, 255) as u8),
        Mutation::ByteFlipped => {
            let at = r.below(v.len() as u64) as usize;
            out[at] ^= 1 << r.below(8);
        }
        Mutation::VersionChanged if v.is_empty() => out.push(2),
        Mutation::VersionChanged => out[0] = out[0].wrapping_add(r.range(1, 255) as u8),
        Mutation::Random => {
            out = (0..r.range(0, 24)).map(|_| r.below(256) as u8).collect();
            if out == v {
                out.push(0xff);
            }
        }
    }
    out
}

/// Whether the values of `cf` at `key` start with a record version byte
/// (docs/design.md: "Which values carry a version byte").
fn versioned(cf: Cf, key: &[u8]) -> bool {
    match cf {
        Cf::Groups | Cf::Snapshots => true,
        Cf::Meta => key == b"counters",
        Cf::Deletion => key.first() == Some(&b'P'),
        _ => false,
    }
}

/// The leading id of a key (the group, snapshot, event, room or nid it is
/// about), by the layouts of docs/design.md.
fn key_id(cf: Cf, key: &[u8]) -> Option<u64> {
    let be = |b: Option<&[u8]>| -> Option<u64> {
        let b = b?;
        let mut a = [0u8; 8];
        a.get_mut(8 - b.len()..)?.copy_from_slice(b);
        Some(u64::from_be_bytes(a))
    };
    match cf {
        Cf::Groups | Cf::Snapshots | Cf::GroupEvents => be(key.get(..8)),
        Cf::RoomGroups | Cf::SnapHashes | Cf::CurrentState | Cf::Auth => be(key.get(..4)),
        Cf::Nids => be(key.get(1..9)),
        Cf::Deletion if key.first() == Some(&b'T') => be(key.get(9..17)),
        Cf::Deletion => be(key.get(1..9)),
        Cf::Meta | Cf::Strings | Cf::EventGroups => None,
    }
}

/// Whether a problem's text names a record: its key as `shown` prints it
/// (text or hex), its text (strings), or the id the key leads with (a
/// group, a snapshot, an event, a room: problems name records by those).
fn names_record(text: &str, cf: Cf, key: &[u8]) -> bool {
    let shown = match std::str::from_utf8(key) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => s.to_owned(),
        _ => key.iter().map(|b| format!("{b:02x}")).collect(),
    };
    if text.contains(&shown) {
        return true;
    }
    // Event ids are stored as hashes: problems name them as text.
    let event = match cf {
        Cf::EventGroups => Some(key),
        Cf::Strings if key.first() == Some(&b'E') => key.get(1..),
        _ => None,
    };
    if let Some(t) = event.and_then(|k| mxstate_engine::event_key::decode(k, String::new).ok()) {
        return text.contains(&t);
    }
    if cf == Cf::Strings {
        if let Some(t) = key.get(1..).and_then(|t| std::str::from_utf8(t).ok()) {
            return text.contains(t) || text.contains(&format!("{t:?}"));
        }
    }
    let Some(id) = key_id(cf, key) else {
        return false;
    };
    text.split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse::<u64>().ok())
        .any(|w| w == id)
}

#[test]
fn damaged_records_give_right_answers_or_typed_errors() {
    let seed = base_seed() ^ 0x5EED;
    println!(
        "corruption (records) seed {seed} (rerun with MXSTATE_CORRUPTION_SEED={})",
        seed ^ 0x5EED
    );
    let w = build(seed);
    let last = [w.answers.len() - 1];
    // Every record key, by column family.
    let kv = RocksKv::open(&w.db, false, &RocksConfig::default()).unwrap();
    let mut keys: BTreeMap<Cf, Vec<Vec<u8>>> = BTreeMap::new();
    for cf in Cf::ALL {
        kv.scan_prefix(cf, &[], &mut |k, _| {
            keys.entry(cf).or_default().push(k.to_vec());
            Ok(true)
        })
        .unwrap();
    }
    drop(kv);
    let empty: Vec<&str> = Cf::ALL
        .iter()
        .filter(|cf| !keys.contains_key(cf))
        .map(|cf| cf.name())
        .collect();
    assert!(
        empty.is_empty(),
        "seed {seed}: the workload left column families without records: {empty:?}"
    );
    let mut tally: BTreeMap<(Mutation, String, Checked), u64> = BTreeMap::new();
    let mut silent = Vec::new();
    let mut failures = Vec::new();
    let mut trial = 0u64;
    for (&cf, ks) in &keys {
        for m in [
            Mutation::Truncated,
            Mutation::ByteFlipped,
            Mutation::VersionChanged,
            Mutation::Random,
        ] {
            for _ in 0..2 {
                trial += 1;
                let mut r = Rng::new(seed ^ trial.wrapping_mul(0xA24B_AED4_963E_E407));
                let key = ks[r.below(ks.len() as u64) as usize].clone();
                let (_tmp, db) = copy_db(&w.db);
                let kv = RocksKv::open(&db, false, &RocksConfig::default()).unwrap();
                let old = kv.get(cf, &key).unwrap().unwrap();
                let new = mutate(m, &old, &mut r);
                let mut b = Batch::default();
                b.put(cf, key.clone(), new.clone());
                kv.write(b).unwrap();
                drop(kv);
                let what = format!(
                    "seed {seed} trial {trial}: {m:?} {}/{} value {old:02x?} -> {new:02x?}",
                    cf.name(),
                    key.iter().map(|b| format!("{b:02x}")).collect::<String>()
                );
                let res = no_panic(|| match examine(&w, &db, &last) {
                    Ok(x) => Ok(Ok(x)),
                    Err(e) if e.starts_with("wrong answers") => Ok(Err(e)),
                    Err(e) => Err(e),
                });
                let (label, checked, report) = match res {
                    Err(e) => {
                        failures.push(format!("{what}: {e}"));
                        continue;
                    }
                    Ok(Err(wrong)) => {
                        // A value that still decodes, meaning something else:
                        // check() is the only one that can tell.
                        let engine = mxstate_rocks::open(&db, engine_options());
                        let (checked, report) = match engine {
                            Ok(e) => check_outcome(e.check()),
                            Err(_) => (Checked::NotRun, None),
                        };
                        silent.push(format!(
                            "{what}: check {checked:?}: {}",
                            wrong.lines().nth(1).unwrap_or("").trim()
                        ));
                        ("wrong answers".to_owned(), checked, report)
                    }
                    Ok(Ok((outcome, checked, report))) => {
                        let label = match outcome {
                            Outcome::OpenRefused(k) => format!("open refused ({k})"),
                            Outcome::Right { .. } => "all right".to_owned(),
                            Outcome::Errors { .. } => "typed errors".to_owned(),
                        };
                        (label, checked, report)
                    }
                };
                *tally.entry((m, label.clone(), checked)).or_default() += 1;
                // check() names the record when reads failed, and when a
                // version byte changed.
                let must_name = label == "typed errors" || (m == Mutation::VersionChanged && versioned(cf, &key));
                if must_name && checked == Checked::Problems {
                    let rep = report.as_ref().unwrap();
                    let named = rep
                        .problems
                        .iter()
                        .any(|p| names_record(&format!("{} {}", p.location, p.detail), cf, &key));
                    if !named {
                        let ps: Vec<String> = rep
                            .problems
                            .iter()
                            .take(5)
                            .map(|p| format!("{}: {}: {}", p.invariant, p.location, p.detail))
                            .collect();
                        failures.push(format!("{what}: check() does not name the record: {}", ps.join(" | ")));
                    }
                } else if must_name
                    && label != "typed errors"
                    && !label.starts_with("open refused")
                    && checked == Checked::Clean
                {
                    failures.push(format!("{what}: {label}, but check() is clean"));
                }
            }
        }
    }
    for ((m, label, checked), n) in &tally {
        println!("{m:?}: {label}, check {checked:?}: {n}");
    }
    println!(
        "{} record(s) read back wrong without an error (values that still decode):",
        silent.len()
    );
    for s in &silent {
        println!("  {s}");
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_comparison_notices_a_wrong_answer() {
    let mut model = Observation::new();
    model.insert("group 5".into(), "exists".into());
    model.insert("group 5 state, filter 0".into(), "[a]".into());
    model.insert("room 0 groups".into(), "[5]".into());
    let mut db = model.clone();
    assert_eq!(compare(&db, &model), Ok(0));
    db.insert("group 5 state, filter 0".into(), "[b]".into());
    assert!(compare(&db, &model).is_err());
    db.insert("group 5".into(), "error Corrupt".into());
    assert_eq!(compare(&db, &model), Ok(1));
    db.insert("room 0 groups".into(), "error NotFound".into());
    assert!(compare(&db, &model).is_err());
    assert!(names_record(
        "record decodes: groups/0000000000000011: bad",
        Cf::Groups,
        &17u64.to_be_bytes()
    ));
    assert!(names_record("group 17: base missing", Cf::Groups, &17u64.to_be_bytes()));
    assert!(!names_record(
        "group 171: base missing",
        Cf::Groups,
        &17u64.to_be_bytes()
    ));
}
