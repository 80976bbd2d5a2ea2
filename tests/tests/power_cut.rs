//! Power cuts. Random operation sequences (stores, batches, forks, purges,
//! event mappings, current state, imports, syncs) run on an engine over
//! [`FaultKv`] and on the reference model; at random points the power is
//! cut, keeping the durable state and a random prefix of the batches not
//! yet synced, and the engine is reopened on what is left.
//!
//! Checked after every cut: the reopened database equals the model at the
//! acknowledged point the kept batches lead to, never a mix of two points;
//! that point is at or after the last sync (in the durable mode, outside an
//! import, exactly the last acknowledged operation); an import cut short
//! refuses to open until asked; `check()` finds nothing; and the sequence
//! goes on from there, the engine still agreeing with the model (ids
//! included).
//!
//! Seeds are fixed (`PROPTEST_RNG_SEED` overrides) and printed at the start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use mxstate_engine::{Engine, ErrorKind};
use mxstate_tests::fault::workload::{dump_engine, options, Dump, Harness, Op};
use mxstate_tests::fault::{Durability, FaultKv};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestRunner;

fn config(cases: u32) -> ProptestConfig {
    common::proptest_config(cases, 0x6d78_7374_6174_6501)
}

fn op(with_sync: bool) -> impl Strategy<Value = Op> {
    let entry = (0u8..4, 0u8..8);
    let room = 0u8..3;
    prop_oneof![
        2 => (room.clone(), proptest::collection::vec(entry.clone(), 0..10)).prop_map(|(room, entries)| Op::Full { room, entries }),
        8 => (room.clone(), any::<usize>(), proptest::collection::vec((0u8..4, 0u8..8, any::<bool>()), 0..4))
            .prop_map(|(room, prev, entries)| Op::Delta { room, prev, entries }),
        2 => (room.clone(), proptest::collection::vec((any::<usize>(), 0u8..4, 0u8..8), 1..6))
            .prop_map(|(room, items)| Op::Batch { room, items }),
        2 => (room.clone(), any::<usize>(), proptest::collection::vec(entry.clone(), 1..6))
            .prop_map(|(room, prev, steps)| Op::Chain { room, prev, steps }),
        2 => (room.clone(), proptest::collection::vec(any::<usize>(), 1..3)).prop_map(|(room, picks)| Op::Purge { room, picks }),
        1 => room.clone().prop_map(|room| Op::PurgeRoom { room }),
        2 => proptest::collection::vec((proptest::option::of(any::<usize>()), any::<usize>()), 1..4)
            .prop_map(|pairs| Op::MapEvents { pairs }),
        1 => (room, proptest::collection::vec(entry, 0..6)).prop_map(|(room, entries)| Op::SetCurrent { room, entries }),
        (if with_sync { 2 } else { 1 }) => Just(Op::Sync),
        1 => Just(Op::BeginImport),
        1 => Just(Op::FinishImport),
        4 => deletion_op(),
    ]
}

/// Synapse's deletion protocol.
fn deletion_op() -> impl Strategy<Value = Op> {
    let picks = proptest::collection::vec(any::<usize>(), 1..4);
    let dt = 0u8..4;
    prop_oneof![
        1 => (0u8..3, any::<usize>(), proptest::collection::vec((0u8..4, 0u8..8, any::<bool>()), 0..3), dt.clone())
            .prop_map(|(room, prev, entries, dt)| Op::DeltaAt { room, prev, entries, dt }),
        3 => (picks.clone(), dt.clone()).prop_map(|(picks, dt)| Op::MarkPending { picks, dt }),
        1 => picks.clone().prop_map(|picks| Op::MarkUsed { picks }),
        1 => (picks.clone(), dt.clone()).prop_map(|(picks, dt)| Op::CheckAndBump { picks, dt }),
        1 => (picks.clone(), 0u8..3, dt.clone()).prop_map(|(picks, instance, dt)| Op::MarkPersisting { picks, instance, dt }),
        1 => (picks, 0u8..3, any::<bool>(), dt.clone())
            .prop_map(|(picks, instance, error, dt)| Op::FinishPersisting { picks, instance, error, dt }),
        1 => (0u8..3, 0u8..8).prop_map(|(instance, older)| Op::ClearPersisting { instance, older }),
        // Far enough ahead, often enough, for marks to come of age.
        3 => (0u8..12).prop_map(|dt| Op::PurgeReady { dt }),
    ]
}

/// A sequence on one lineage of stores: the model's dump and the batches
/// written after every acknowledged operation.
struct Run {
    fault: FaultKv,
    h: Harness,
    /// The operations acknowledged on this lineage.
    history: Vec<Op>,
    /// `dumps[k]`: the model after `history[..k]`.
    dumps: Vec<Dump>,
    /// `written[k]`: batches in the store after `history[..k]`.
    written: Vec<u64>,
    /// The earliest point a power cut may go back to.
    lower: usize,
    cuts: usize,
    /// Acknowledged operations the cuts took back.
    lost: usize,
}

/// Whether the engine's check is implemented yet; asserts it is clean if so.
fn assert_check_clean(engine: &Engine, context: &str) {
    let report = engine.check().expect("check runs");
    if report.problems.iter().any(|p| p.invariant == "unimplemented") {
        return;
    }
    assert!(report.is_clean(), "{context}: check found {:?}", report.problems);
}

impl Run {
    fn new(mode: Durability) -> Self {
        let fault = FaultKv::new(mode);
        let engine = Engine::with_kv(Box::new(fault.clone()), options(false)).unwrap();
        let h = Harness::new(Some(engine));
        let dumps = vec![h.dump_model()];
        let written = vec![fault.written()];
        Run {
            fault,
            h,
            history: Vec::new(),
            dumps,
            written,
            lower: 0,
            cuts: 0,
            lost: 0,
        }
    }

    fn step(&mut self, op: &Op) {
        let was_importing = self.h.importing();
        self.h.apply(op);
        let replayable = self.h.replay_form(op);
        self.history.push(replayable);
        self.dumps.push(self.h.dump_model());
        self.written.push(self.fault.written());
        let n = self.history.len();
        let importing = self.h.bulk;
        self.lower = match (self.fault.mode(), op) {
            // A sync makes everything before it durable.
            (_, Op::Sync) => n,
            // finish_import syncs before its last write.
            (Durability::Buffered, Op::FinishImport) if was_importing => n - 1,
            (Durability::Buffered, _) => self.lower,
            // Durable writes, unless an import defers them (its own
            // begin_import is durable).
            (Durability::Synced, Op::BeginImport) => n,
            (Durability::Synced, _) if !importing => n,
            (Durability::Synced, _) => self.lower,
        };
    }

    /// Cuts the power keeping `keep` of the unsynced batches, reopens, and
    /// compares with the model.
    fn cut(&mut self, keep: usize) {
        self.cuts += 1;
        let unsynced = self.fault.unsynced();
        let cut = self.fault.power_cut(keep);
        let kept = cut.written();
        // The point the kept batches lead to: the last one they cover.
        let point = (0..self.written.len())
            .rev()
            .find(|&k| self.written[k] <= kept)
            .unwrap_or(0);
        let context = format!(
            "cut #{} after {} ops ({:?} mode), keeping {keep} of {unsynced} unsynced batches: back to point {point}",
            self.cuts,
            self.history.len(),
            self.fault.mode()
        );
        assert!(
            point >= self.lower,
            "{context}: the durable point was {}, the cut lost acknowledged durable writes",
            self.lower
        );
        self.h.engine = None;
        let expected = &self.dumps[point];
        let engine = match Engine::with_kv(Box::new(cut.clone()), options(false)) {
            Ok(e) => {
                assert_eq!(expected.import, None, "{context}: opened with an import cut short");
                e
            }
            Err(e) => {
                assert!(
                    matches!(e, mxstate_engine::Error::ImportIncomplete(_)) && e.kind() == ErrorKind::Conflict,
                    "{context}: reopen failed: {e}"
                );
                assert!(expected.import.is_some(), "{context}: no import was running: {e}");
                Engine::with_kv(Box::new(cut.clone()), options(true)).unwrap()
            }
        };
        let got = dump_engine(&engine, &self.h.uni).unwrap();
        if &got != expected {
            let matching: Vec<usize> = (0..self.dumps.len()).filter(|&k| self.dumps[k] == got).collect();
            panic!(
                "{context}: the database is not the model at that point (it matches points {matching:?});\n first difference, database vs model: {}",
                got.diff(expected)
            );
        }
        assert_check_clean(&engine, &context);
        // Carry on from that point: the model replayed, the engine reopened.
        self.lost += self.history.len() - point;
        self.history.truncate(point);
        self.dumps.truncate(point + 1);
        self.written.truncate(point + 1);
        self.written[point] = cut.written();
        let mut h = Harness::replay(&self.history, &self.h.uni);
        h.set_marks(self.dumps[point].marks.clone());
        h.engine = Some(engine);
        self.h = h;
        self.fault = cut;
        self.lower = point;
    }
}

/// Runs `ops` with power cuts at `cuts`; returns the number of cuts and
/// of acknowledged operations they took back.
fn run(mode: Durability, ops: &[Op], cuts: &[(Index, Index)]) -> (u64, u64) {
    let mut at: Vec<(usize, Index)> = cuts.iter().map(|(i, k)| (i.index(ops.len() + 1), *k)).collect();
    at.sort_by_key(|c| c.0);
    let mut r = Run::new(mode);
    let mut next_cut = at.iter().peekable();
    for (i, op) in ops.iter().enumerate() {
        while let Some((_, keep)) = next_cut.next_if(|c| c.0 == i) {
            let n = r.fault.unsynced();
            r.cut(keep.index(n + 1));
        }
        r.step(op);
    }
    for (_, keep) in next_cut {
        let n = r.fault.unsynced();
        r.cut(keep.index(n + 1));
    }
    // A process crash keeps every write; a power cut now keeps only the durable ones.
    let all = r.fault.unsynced();
    r.cut(all);
    r.step(&Op::Full {
        room: 0,
        entries: vec![(0, 1)],
    });
    r.cut(0);
    (r.cuts as u64, r.lost as u64)
}

fn run_cases(mode: Durability, with_sync: bool) {
    let strategy = (
        proptest::collection::vec(op(with_sync), 1..80),
        proptest::collection::vec((any::<Index>(), any::<Index>()), 0..5),
    );
    let (cuts_made, lost) = (AtomicU64::new(0), AtomicU64::new(0));
    let mut runner = TestRunner::new(config(200));
    let result = runner.run(&strategy, |(ops, cuts)| {
        let (c, l) = run(mode, &ops, &cuts);
        cuts_made.fetch_add(c, Ordering::Relaxed);
        lost.fetch_add(l, Ordering::Relaxed);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!(
        "{mode:?}: {} cuts took back {} acknowledged operations",
        cuts_made.load(Ordering::Relaxed),
        lost.load(Ordering::Relaxed)
    );
}

/// The less durable mode: nothing is durable until a sync.
#[test]
fn buffered_writes_survive_as_a_prefix() {
    run_cases(Durability::Buffered, true);
}

/// The default mode: every acknowledged write survives, except the
/// deferred ones of an import.
#[test]
fn synced_writes_survive_whole() {
    run_cases(Durability::Synced, false);
}

/// The wrapper itself: a cut keeps whole batches, in order, and a synced
/// write makes the earlier deferred ones durable.
#[test]
fn fault_kv_cuts_keep_whole_batches_in_order() {
    use mxstate_engine::kv::{Batch, Cf, KvStore};
    let kv = FaultKv::new(Durability::Synced);
    let put = |k: u8, defer: bool| {
        let mut b = Batch::default();
        b.put(Cf::Groups, vec![k], vec![k]);
        b.put(Cf::Meta, vec![k], vec![k]);
        if defer {
            b.defer_sync();
        }
        kv.write(b).unwrap();
    };
    put(1, false);
    put(2, true);
    put(3, true);
    assert_eq!(kv.unsynced(), 2);
    assert_eq!(kv.get(Cf::Groups, &[3]).unwrap(), Some(vec![3]));
    type Pair = (Option<Vec<u8>>, Option<Vec<u8>>);
    let keys = |s: &FaultKv| -> Vec<Pair> {
        (1..=3)
            .map(|k| (s.get(Cf::Groups, &[k]).unwrap(), s.get(Cf::Meta, &[k]).unwrap()))
            .collect()
    };
    let cut = kv.power_cut(1);
    assert_eq!(
        keys(&cut),
        vec![
            (Some(vec![1]), Some(vec![1])),
            (Some(vec![2]), Some(vec![2])),
            (None, None)
        ]
    );
    assert_eq!(cut.written(), 2);
    put(4, false);
    assert_eq!(kv.unsynced(), 0);
    assert_eq!(kv.power_cut(0).get(Cf::Groups, &[3]).unwrap(), Some(vec![3]));
    let buffered = FaultKv::new(Durability::Buffered);
    let mut b = Batch::default();
    b.put(Cf::Groups, vec![9], vec![9]);
    buffered.write(b).unwrap();
    assert_eq!(buffered.power_cut(0).get(Cf::Groups, &[9]).unwrap(), None);
    buffered.sync().unwrap();
    assert_eq!(buffered.power_cut(0).get(Cf::Groups, &[9]).unwrap(), Some(vec![9]));
}
