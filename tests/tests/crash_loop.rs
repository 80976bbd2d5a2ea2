//! Process crashes: `crash-child` writes one RocksDB database (stores,
//! batches, forks, purges of groups and rooms, event mappings, current
//! state) and is killed with SIGKILL at random moments; after each kill the
//! database must pass `check()` and answer exactly as the model at the last
//! acknowledged operation, or at the one in flight, never a mix
//! (`mxstate_tests::crash`). Also checks that the comparison notices a lost
//! write and a mix. The long run is `cargo run --release -p mxstate-tests
//! --bin crash-loop -- --kills 200`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mxstate_engine::EngineStore;
use mxstate_tests::crash::{self, clock_seed, run_loop, Content, GroupOp, LoopConfig, Op, Parent};
use mxstate_tests::runtime;

#[test]
fn killed_children_leave_a_consistent_database() {
    let seed = std::env::var("MXSTATE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(clock_seed);
    println!("crash loop seed {seed} (rerun with MXSTATE_CRASH_SEED={seed})");
    let dir = tempfile::tempdir().unwrap();
    let cfg = LoopConfig {
        child: PathBuf::from(env!("CARGO_BIN_EXE_crash-child")),
        dir: dir.path().to_owned(),
        seed,
        kills: 8,
        min_delay_ms: 0,
        max_delay_ms: 300,
        // At least one kill lands on a child at work, however slow the machine.
        last_kill_after_acks: 20,
    };
    match run_loop(&cfg, &mut |line| println!("{line}")) {
        Ok(sum) => {
            println!("{}", sum.render(seed));
            assert_eq!(sum.kills, 8);
            assert!(sum.acked >= 20, "{sum:?}");
        }
        Err((sum, e)) => {
            // Keep the database for a look.
            let kept = dir.keep();
            panic!(
                "seed {seed}: {e}\n{}\n(database and journal kept in {})",
                sum.render(seed),
                kept.display()
            );
        }
    }
}

fn group(id: u64, room: u8, event: u64) -> Op {
    Op::Store(vec![GroupOp {
        id,
        room,
        event,
        content: Content::Full(vec![(0, 1, event + 1), (1, 0, event + 2)]),
    }])
}

/// A new database and journal; applies `in_db` to the database and writes
/// `journal` as the journal's text.
fn scene(dir: &Path, in_db: &[&Op], journal: &str) -> Parent {
    let (db, j) = (dir.join("db"), dir.join("journal"));
    let parent = Parent::new(&db, &j);
    parent.create().unwrap();
    let store = EngineStore::new(Arc::new(crash::open_engine(&db).unwrap()));
    let rt = runtime();
    for op in in_db {
        rt.block_on(crash::apply(&store, op)).unwrap();
    }
    drop(store);
    std::fs::File::create(&j)
        .unwrap()
        .write_all(journal.as_bytes())
        .unwrap();
    parent
}

#[test]
fn the_comparison_tells_applied_lost_and_mixed() {
    let (a, b) = (group(1, 0, 10), group(9, 1, 20));
    let journal = format!("begin 0 {}\nack 0 ok\nbegin 1 {}\n", a.encode(), b.encode());

    // The operation in flight found applied, found not applied.
    let dir = tempfile::tempdir().unwrap();
    let s = scene(dir.path(), &[&a, &b], &journal).settle().unwrap();
    assert_eq!(s.in_flight.map(|f| (f.0, f.2)), Some((1, true)));
    let dir = tempfile::tempdir().unwrap();
    let s = scene(dir.path(), &[&a], &journal).settle().unwrap();
    assert_eq!(s.in_flight.map(|f| (f.0, f.2)), Some((1, false)));
    assert_eq!(s.acked, 1);

    // A mix: the operation in flight is there, the acknowledged one is not.
    let dir = tempfile::tempdir().unwrap();
    let e = scene(dir.path(), &[&b], &journal).settle().unwrap_err();
    assert!(e.contains("matches neither"), "{e}");
    assert!(e.contains("group 1"), "{e}");

    // An acknowledged write lost.
    let dir = tempfile::tempdir().unwrap();
    let e = scene(dir.path(), &[], &format!("begin 0 {}\nack 0 ok\n", a.encode()))
        .settle()
        .unwrap_err();
    assert!(e.contains("differs from the model"), "{e}");

    // A line cut short by the kill is not an operation begun.
    let dir = tempfile::tempdir().unwrap();
    let cut = format!("begin 0 {}\nack 0 ok\nbegin 1 store 1 9", a.encode());
    let s = scene(dir.path(), &[&a], &cut).settle().unwrap();
    assert!(s.in_flight.is_none());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("journal")).unwrap(),
        format!("begin 0 {}\nack 0 ok\n", a.encode())
    );
}

#[test]
fn operations_survive_the_journal_text() {
    let rooms = vec![vec![1, 2, 3], vec![], vec![7], vec![11, 12]];
    for n in 0..2000 {
        let op = crash::generate(42, n, &rooms);
        assert_eq!(Op::decode(&op.encode()).unwrap(), op, "operation {n}");
        assert_eq!(crash::generate(42, n, &rooms), op, "not deterministic");
    }
}
