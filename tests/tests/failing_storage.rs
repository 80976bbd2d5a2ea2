//! Failing storage. Random operation sequences (writes of every kind,
//! reads, syncs, imports) run on an engine over [`FaultKv`] and on the
//! reference model, with the Nth storage operation (of every class, or of
//! one: get, multi-get, write, sync, scan) failing, once or a few times in
//! a row, with a typed I/O or corruption error.
//!
//! Checked for each public call a failure reached: it either succeeds with
//! the model's answer, or returns exactly the injected error (same kind)
//! and changes nothing: everything read back through the same engine (its
//! caches) and through a second engine opened on the same store equals the
//! model that did not run the call, and `check()` finds nothing. The
//! sequence then goes on through the same engine, which must still agree
//! with the model. Opening a database with a failing store fails typed and
//! leaves it openable.
//!
//! Seeds are fixed (`PROPTEST_RNG_SEED` overrides) and printed at the start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use mxstate_engine::{Engine, ErrorKind};
use mxstate_tests::fault::workload::{dump_engine, options, Applied, Harness, Op};
use mxstate_tests::fault::{is_injected, Durability, FailPlan, FaultKv, OpClass};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestRunner;

fn config(cases: u32) -> ProptestConfig {
    common::proptest_config(cases, 0x6d78_7374_6174_6502)
}

fn op() -> impl Strategy<Value = Op> {
    let entry = (0u8..4, 0u8..8);
    let room = 0u8..3;
    prop_oneof![
        2 => (room.clone(), proptest::collection::vec(entry.clone(), 0..10)).prop_map(|(room, entries)| Op::Full { room, entries }),
        6 => (room.clone(), any::<usize>(), proptest::collection::vec((0u8..4, 0u8..8, any::<bool>()), 0..4))
            .prop_map(|(room, prev, entries)| Op::Delta { room, prev, entries }),
        2 => (room.clone(), proptest::collection::vec((any::<usize>(), 0u8..4, 0u8..8), 1..6))
            .prop_map(|(room, items)| Op::Batch { room, items }),
        2 => (room.clone(), any::<usize>(), proptest::collection::vec(entry.clone(), 1..6))
            .prop_map(|(room, prev, steps)| Op::Chain { room, prev, steps }),
        2 => (room.clone(), proptest::collection::vec(any::<usize>(), 1..3)).prop_map(|(room, picks)| Op::Purge { room, picks }),
        1 => room.clone().prop_map(|room| Op::PurgeRoom { room }),
        2 => proptest::collection::vec((proptest::option::of(any::<usize>()), any::<usize>()), 1..4)
            .prop_map(|pairs| Op::MapEvents { pairs }),
        1 => (room.clone(), proptest::collection::vec(entry, 0..6)).prop_map(|(room, entries)| Op::SetCurrent { room, entries }),
        3 => (proptest::collection::vec(any::<usize>(), 1..4), 0u8..4, room)
            .prop_map(|(picks, filter, room)| Op::Read { picks, filter, room }),
        1 => Just(Op::Sync),
        1 => Just(Op::BeginImport),
        1 => Just(Op::FinishImport),
        5 => deletion_op(),
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

fn class() -> impl Strategy<Value = Option<OpClass>> {
    prop_oneof![
        3 => Just(None),
        2 => Just(Some(OpClass::Get)),
        1 => Just(Some(OpClass::MultiGet)),
        2 => Just(Some(OpClass::Write)),
        1 => Just(Some(OpClass::Sync)),
        1 => Just(Some(OpClass::Scan)),
    ]
}

/// Whether the engine's check is implemented yet; asserts it is clean if so.
fn assert_check_clean(engine: &Engine, context: &str) {
    let report = engine.check().expect("check runs");
    if report.problems.iter().any(|p| p.invariant == "unimplemented") {
        return;
    }
    assert!(report.is_clean(), "{context}: check found {:?}", report.problems);
}

/// Everything read through the harness's engine, and through a second
/// engine opened on the same store, equals the model.
fn verify(fault: &FaultKv, h: &Harness, context: &str) {
    fault.pause_faults(true);
    let want = h.dump_model();
    let got = dump_engine(h.engine(), &h.uni).unwrap_or_else(|e| panic!("{context}: reading back failed: {e}"));
    assert!(
        got == want,
        "{context}: the engine (its caches) differs from the model: {}",
        got.diff(&want)
    );
    assert_check_clean(h.engine(), context);
    let reopened = Engine::with_kv(Box::new(fault.clone()), options(true)).unwrap();
    let got = dump_engine(&reopened, &h.uni).unwrap();
    assert!(
        got == want,
        "{context}: the store differs from the model: {}",
        got.diff(&want)
    );
    assert_check_clean(&reopened, context);
    fault.pause_faults(false);
}

/// Calls a failure reached: those that failed typed, those that succeeded anyway.
#[derive(Default)]
struct Figures {
    failed: AtomicU64,
    survived: AtomicU64,
}

fn run(ops: &[Op], at: &Index, class: Option<OpClass>, times: u64, kind: ErrorKind, figures: &Figures) {
    // A dry run counts the operations the sequence makes.
    let dry = FaultKv::new(Durability::Synced);
    let mut h = Harness::new(Some(Engine::with_kv(Box::new(dry.clone()), options(false)).unwrap()));
    h.fault = Some(dry.clone());
    dry.reset_counts();
    for op in ops {
        h.apply(op);
    }
    let total = dry.counts().of(class);
    let plan = FailPlan {
        class,
        nth: at.index(total.max(1) as usize) as u64,
        times,
        kind,
    };

    let fault = FaultKv::new(Durability::Synced);
    let mut h = Harness::new(Some(Engine::with_kv(Box::new(fault.clone()), options(false)).unwrap()));
    h.fault = Some(fault.clone());
    fault.fail(plan);
    let tail = [
        Op::Full {
            room: 1,
            entries: vec![(0, 1), (1, 0)],
        },
        Op::Delta {
            room: 1,
            prev: usize::MAX,
            entries: vec![(0, 2, true)],
        },
        Op::MapEvents {
            pairs: vec![(None, usize::MAX)],
        },
        Op::Purge {
            room: 1,
            picks: vec![usize::MAX - 1],
        },
        Op::Read {
            picks: vec![0, 1, usize::MAX],
            filter: 0,
            room: 1,
        },
    ];
    for (i, op) in ops.iter().chain(&tail).enumerate() {
        let before = fault.injected();
        let applied = h.apply(op);
        if fault.injected() == before {
            assert!(
                !matches!(applied, Applied::Injected(_)),
                "op {i}: failed with nothing injected"
            );
            continue;
        }
        let context = format!("op {i} {op:?} under {plan:?}");
        match &applied {
            Applied::Injected(e) => {
                assert!(is_injected(e), "{context}: {e}");
                assert_eq!(e.kind(), kind, "{context}: the kind changed: {e}");
                figures.failed.fetch_add(1, Ordering::Relaxed);
            }
            Applied::Same(_) => {
                figures.survived.fetch_add(1, Ordering::Relaxed);
            }
        }
        verify(&fault, &h, &context);
    }
    fault.clear_faults();
    verify(&fault, &h, &format!("the end, under {plan:?}"));
}

#[test]
fn a_failed_call_changes_nothing() {
    let strategy = (
        proptest::collection::vec(op(), 1..40),
        any::<Index>(),
        class(),
        prop_oneof![4 => Just(1u64), 1 => 2u64..4],
        proptest::bool::weighted(0.2),
    );
    let figures = Figures::default();
    let mut runner = TestRunner::new(config(500));
    let result = runner.run(&strategy, |(ops, at, class, times, corrupt)| {
        let kind = if corrupt {
            ErrorKind::Corrupt
        } else {
            ErrorKind::Backend
        };
        run(&ops, &at, class, times, kind, &figures);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!(
        "calls a failure reached: {} failed typed, {} succeeded anyway",
        figures.failed.load(Ordering::Relaxed),
        figures.survived.load(Ordering::Relaxed)
    );
}

/// Opening fails typed while the store fails, and leaves the store
/// openable (a new database, and one with groups and an import marker).
#[test]
fn opening_with_a_failing_store() {
    for existing in [false, true] {
        let fault = FaultKv::new(Durability::Synced);
        let mut h = Harness::new(Some(Engine::with_kv(Box::new(fault.clone()), options(false)).unwrap()));
        if existing {
            h.apply(&Op::Full {
                room: 0,
                entries: vec![(0, 1), (2, 0)],
            });
            h.apply(&Op::Delta {
                room: 0,
                prev: 0,
                entries: vec![(0, 2, true)],
            });
            h.apply(&Op::BeginImport);
        }
        let store = if existing {
            fault.clone()
        } else {
            FaultKv::new(Durability::Synced)
        };
        let mut failed = 0;
        for nth in 0..40 {
            store.fail(FailPlan::once(None, nth));
            match Engine::with_kv(Box::new(store.clone()), options(true)) {
                Ok(_) => break,
                Err(e) => {
                    assert!(is_injected(&e), "open, op {nth} failing: {e}");
                    assert_eq!(e.kind(), ErrorKind::Backend);
                    failed += 1;
                }
            }
        }
        assert!(failed >= 2, "opening made {failed} store operations");
        store.clear_faults();
        let engine = Engine::with_kv(Box::new(store.clone()), options(true)).unwrap();
        if existing {
            verify(&fault, &h, "reopened after failed opens");
        } else {
            let empty = Harness::new(Some(engine));
            verify(&store, &empty, "created after failed opens");
        }
    }
}
