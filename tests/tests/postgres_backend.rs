//! The engine on PostgreSQL (`mxstate-postgres`), against a private
//! cluster each test starts: every conformance check (default and tiny
//! chain policies, a fresh database each), the key-value contract itself
//! (ordering, prefixes at the byte edges, batches, paged scans), the
//! model-based property test with reopens, and the lease: one owner at a
//! time, taken over when the owner goes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use mxstate_api::{ErrorKind, StateStore};
use mxstate_engine::kv::{Batch, Cf, KvStore};
use mxstate_engine::{EngineOptions, EngineStore};
use mxstate_postgres::{PgConfig, PgKv};
use mxstate_synapse_dump::pgcluster::PgCluster;
use mxstate_tests::small_policy_options;

fn cluster() -> PgCluster {
    PgCluster::start().expect("start a private PostgreSQL cluster")
}

/// A new database in the cluster, as a URL.
fn database(c: &PgCluster, name: &str) -> String {
    c.create_database(name).expect("create database");
    c.url_for(name)
}

fn store(url: &str, opts: EngineOptions) -> EngineStore {
    EngineStore::new(Arc::new(mxstate_postgres::open(url, opts).expect("open on PostgreSQL")))
}

/// Tiny packs, a fold step after every write, short scan pages: records
/// move between rows and packs all the time.
fn packing() -> PgConfig {
    PgConfig {
        page_rows: 3,
        pack_bytes: 48,
        fold_min_rows: 1,
        fold_window: 5,
        fold_every: 1,
        ..PgConfig::default()
    }
}

macro_rules! conformance_on_postgres {
    ([$($check:ident),* $(,)?]) => {
        #[test]
        fn conformance_on_postgres() {
            let c = cluster();
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            $(
                for (policy, opts, cfg) in [
                    ("default", EngineOptions::default(), PgConfig::default()),
                    ("small", small_policy_options(), PgConfig::default()),
                    ("packed", small_policy_options(), packing()),
                ] {
                    let url = database(&c, &format!("{}_{}", stringify!($check), policy));
                    let s = EngineStore::new(Arc::new(mxstate_postgres::open_with(&url, opts, &cfg).expect("open on PostgreSQL")));
                    rt.block_on(mxstate_conformance::checks::$check(&s));
                }
            )*
        }
    };
}
mxstate_conformance::for_each_check!(conformance_on_postgres!());

fn keys(kv: &PgKv, cf: Cf, prefix: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    kv.scan_prefix(cf, prefix, &mut |k, _| {
        out.push(k.to_vec());
        Ok(true)
    })
    .unwrap();
    out
}

#[test]
fn the_key_value_contract() {
    let c = cluster();
    let url = database(&c, "contract");
    let cfg = PgConfig {
        page_rows: 3, // scans cross many pages
        ..PgConfig::default()
    };
    let kv = PgKv::connect(&url, true, &cfg).unwrap();
    // Byte order, not text order: 0x00 and 0xff, prefixes of each other.
    let all: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0, 0],
        vec![1],
        vec![1, 0xff],
        vec![1, 0xff, 0xff],
        vec![2],
        vec![0xff],
        vec![0xff, 0],
        vec![0xff, 0xff],
    ];
    let mut b = Batch::default();
    for (i, k) in all.iter().enumerate().rev() {
        b.put(Cf::Groups, k.clone(), vec![u8::try_from(i).unwrap()]);
        b.put(Cf::Snapshots, k.clone(), b"other family".to_vec());
    }
    // Later operations on a key win, in order.
    b.put(Cf::Meta, b"x".to_vec(), b"1".to_vec());
    b.delete(Cf::Meta, b"x".to_vec());
    b.put(Cf::Meta, b"y".to_vec(), b"1".to_vec());
    b.put(Cf::Meta, b"y".to_vec(), b"2".to_vec());
    kv.write(b).unwrap();
    assert_eq!(keys(&kv, Cf::Groups, &[]), all);
    assert_eq!(
        keys(&kv, Cf::Groups, &[1]),
        vec![vec![1], vec![1, 0xff], vec![1, 0xff, 0xff]]
    );
    assert_eq!(
        keys(&kv, Cf::Groups, &[1, 0xff]),
        vec![vec![1, 0xff], vec![1, 0xff, 0xff]]
    );
    assert_eq!(
        keys(&kv, Cf::Groups, &[0xff]),
        vec![vec![0xff], vec![0xff, 0], vec![0xff, 0xff]]
    );
    assert_eq!(keys(&kv, Cf::Groups, &[0xff, 0xff]), vec![vec![0xff, 0xff]]);
    assert_eq!(kv.get(Cf::Meta, b"x").unwrap(), None);
    assert_eq!(kv.get(Cf::Meta, b"y").unwrap(), Some(b"2".to_vec()));
    assert_eq!(
        kv.multi_get(Cf::Groups, &[vec![2], vec![9], vec![2], vec![]]).unwrap(),
        vec![Some(vec![6]), None, Some(vec![6]), Some(vec![0])]
    );
    assert_eq!(
        kv.last_with_prefix(Cf::Groups, &[1]).unwrap(),
        Some((vec![1, 0xff, 0xff], vec![5]))
    );
    assert_eq!(kv.last_with_prefix(Cf::Groups, &[3]).unwrap(), None);
    assert_eq!(
        kv.last_with_prefix(Cf::Groups, &[]).unwrap().unwrap().0,
        vec![0xff, 0xff]
    );
    // Descending range scans, across pages, stopped early.
    let mut down = Vec::new();
    kv.scan_range_rev(Cf::Groups, &[0, 0], &[0xff, 0], &mut |k, _| {
        down.push(k.to_vec());
        Ok(true)
    })
    .unwrap();
    assert_eq!(
        down,
        vec![
            vec![0xff],
            vec![2],
            vec![1, 0xff, 0xff],
            vec![1, 0xff],
            vec![1],
            vec![0, 0]
        ]
    );
    // Ascending range scans, across pages, stopped early, and empty.
    let mut up = Vec::new();
    kv.scan_range(Cf::Groups, &[0, 0], &[0xff, 0], &mut |k, _| {
        up.push(k.to_vec());
        Ok(true)
    })
    .unwrap();
    down.reverse();
    assert_eq!(up, down);
    let mut first_four = Vec::new();
    kv.scan_range(Cf::Groups, &[0], &[0xff, 0xff, 0], &mut |k, _| {
        first_four.push(k.to_vec());
        Ok(first_four.len() < 4)
    })
    .unwrap();
    assert_eq!(first_four, vec![vec![0], vec![0, 0], vec![1], vec![1, 0xff]]);
    kv.scan_range(Cf::Groups, &[3], &[3], &mut |_, _| panic!("an empty range"))
        .unwrap();
    let mut first_two = Vec::new();
    kv.scan_prefix(Cf::Groups, &[], &mut |k, _| {
        first_two.push(k.to_vec());
        Ok(first_two.len() < 2)
    })
    .unwrap();
    assert_eq!(first_two, vec![vec![], vec![0]]);
    // The connection is usable after a scan stopped early.
    assert_eq!(keys(&kv, Cf::Snapshots, &[]).len(), all.len());
    // Deferred batches, then a sync.
    let mut b = Batch::default();
    b.defer_sync();
    b.delete(Cf::Groups, vec![2]);
    kv.write(b).unwrap();
    kv.sync().unwrap();
    assert_eq!(kv.get(Cf::Groups, &[2]).unwrap(), None);
}

#[test]
fn one_owner_at_a_time() {
    let c = cluster();
    let url = database(&c, "lease");
    let first = store(&url, EngineOptions::default());
    let rt = mxstate_tests::runtime();
    let room = mxstate_conformance::room(1);
    let g = rt
        .block_on(first.store_state_groups(vec![mxstate_api::GroupWrite {
            id: None,
            room_id: room,
            event_id: mxstate_conformance::ev(1),
            content: mxstate_api::GroupContent::Full(mxstate_conformance::state(&[("m.room.create", "", 1)])),
        }]))
        .unwrap()[0];
    // A second engine on the same database is refused while the first owns it.
    let refused = mxstate_postgres::open(&url, EngineOptions::default())
        .err()
        .expect("a second owner");
    assert_eq!(refused.kind(), ErrorKind::Conflict, "{refused}");
    assert!(refused.to_string().contains("in use"), "{refused}");
    // When the first goes, the next one takes over and finds its writes.
    drop(first);
    let second = store(&url, EngineOptions::default());
    let s = rt
        .block_on(second.state_for_groups(vec![g], mxstate_api::StateFilter::all()))
        .unwrap();
    assert_eq!(s[&g].len(), 1);
    // A database that was never made is not made without `create`.
    let none = mxstate_postgres::open(
        &database(&c, "empty"),
        EngineOptions {
            create: false,
            ..EngineOptions::default()
        },
    )
    .err()
    .expect("no database");
    assert_eq!(none.kind(), ErrorKind::NotFound, "{none}");
}

/// Cuts every session of database `db` but the caller's, as a failover or
/// a server restart does.
fn cut_sessions(c: &PgCluster, db: &str) -> u64 {
    let mut admin = c.connect("postgres").unwrap();
    let rows = admin
        .query(
            // With a timeout: returns once each session has ended (its locks with it).
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db],
        )
        .unwrap();
    u64::try_from(rows.len()).unwrap()
}

fn one_group(s: &EngineStore, rt: &tokio::runtime::Runtime, n: u64) -> mxstate_api::Result<u64> {
    rt.block_on(s.store_state_groups(vec![mxstate_api::GroupWrite {
        id: None,
        room_id: mxstate_conformance::room(1),
        event_id: mxstate_conformance::ev(n),
        content: mxstate_api::GroupContent::Full(mxstate_conformance::state(&[("m.room.create", "", n)])),
    }]))
    .map(|ids| ids[0])
}

#[test]
fn the_owner_reconnects_and_a_successor_fences_it_out() {
    let c = cluster();
    let url = database(&c, "failover");
    let rt = mxstate_tests::runtime();
    let first = store(&url, EngineOptions::default());
    let g1 = one_group(&first, &rt, 1).unwrap();

    // Its sessions cut: the owner reconnects by itself, reads and writes go
    // on, and nothing it acknowledged is missing.
    assert!(cut_sessions(&c, "failover") >= 1);
    let g2 = one_group(&first, &rt, 2).unwrap();
    let both = rt
        .block_on(first.state_for_groups(vec![g1, g2], mxstate_api::StateFilter::all()))
        .unwrap();
    assert_eq!(both.len(), 2);

    // Cut again, and another process takes the database over before the
    // first writes: the first is fenced out, with a clear error, and its
    // write is not applied; the successor sees everything acknowledged.
    cut_sessions(&c, "failover");
    let second = store(&url, EngineOptions::default());
    let refused = one_group(&first, &rt, 3).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Conflict, "{refused}");
    assert!(refused.to_string().contains("no longer owns"), "{refused}");
    let seen = rt
        .block_on(second.state_for_groups(vec![g1, g2], mxstate_api::StateFilter::all()))
        .unwrap();
    assert_eq!(seen.len(), 2);
    let g3 = one_group(&second, &rt, 4).unwrap();
    assert!(g3 > g2, "ids are never reused after a takeover: {g3} after {g2}");
    let check = rt.block_on(second.room_groups(mxstate_conformance::room(1))).unwrap();
    assert_eq!(check, vec![g1, g2, g3], "the fenced-out write left nothing");
    // The successor gone too, the lock is free: the first still may not
    // write (the lease's generation is not its own; its caches are stale).
    drop(second);
    let fenced = one_group(&first, &rt, 5).unwrap_err();
    assert_eq!(fenced.kind(), ErrorKind::Conflict, "{fenced}");
    assert!(fenced.to_string().contains("took over"), "{fenced}");
    drop(first);
    let third = store(&url, EngineOptions::default());
    let check = rt.block_on(third.room_groups(mxstate_conformance::room(1))).unwrap();
    assert_eq!(check, vec![g1, g2, g3]);
}

mod packed {
    //! Records folded into packs (`mxstate_packs`) under rows
    //! (`mxstate_rows`): the key-value contract against a sorted map
    //! through random writes, deletions and fold steps; the move from the
    //! one-table layout.
    use super::*;
    use mxstate_postgres::FoldPolicy;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    type Model = BTreeMap<(u8, Vec<u8>), Vec<u8>>;
    const FAMILIES: [Cf; 2] = [Cf::Groups, Cf::Snapshots];

    #[derive(Debug, Clone)]
    enum KvOp {
        /// Puts (Some) and deletions (None) in one batch.
        Write(Vec<(u8, Vec<u8>, Option<Vec<u8>>)>),
        /// One fold step of a family from a key.
        Fold {
            cf: u8,
            from: Vec<u8>,
            window: usize,
            min_rows: usize,
            pack_bytes: usize,
        },
        /// Everything folded.
        FoldAll,
        /// Closed and opened again.
        Reopen,
    }

    fn key() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(2), Just(0xfe), Just(0xff)], 0..4)
    }

    fn kv_op() -> impl Strategy<Value = KvOp> {
        prop_oneof![
            4 => proptest::collection::vec(
                (0u8..2, key(), proptest::option::weighted(0.75, proptest::collection::vec(any::<u8>(), 0..5))),
                1..12
            )
            .prop_map(KvOp::Write),
            2 => (0u8..2, key(), 1usize..7, 1usize..4, 1usize..40)
                .prop_map(|(cf, from, window, min_rows, pack_bytes)| KvOp::Fold { cf, from, window, min_rows, pack_bytes }),
            1 => Just(KvOp::FoldAll),
            1 => Just(KvOp::Reopen),
        ]
    }

    fn collect(
        visit: impl FnOnce(&mut mxstate_engine::kv::Visit<'_>) -> mxstate_api::Result<()>,
        stop_after: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        visit(&mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Ok(out.len() < stop_after)
        })
        .unwrap();
        out
    }

    /// Every read of the contract against the model.
    fn check(kv: &PgKv, model: &Model, probes: &[Vec<u8>], stop: usize) {
        for (i, &cf) in FAMILIES.iter().enumerate() {
            let i = u8::try_from(i).unwrap();
            let fam: Vec<(Vec<u8>, Vec<u8>)> = model
                .iter()
                .filter(|((c, _), _)| *c == i)
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect();
            let get = |k: &[u8]| fam.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
            for p in probes {
                assert_eq!(kv.get(cf, p).unwrap(), get(p), "get {cf:?} {p:?}");
                let pre: Vec<_> = fam.iter().filter(|(k, _)| k.starts_with(p)).cloned().collect();
                assert_eq!(
                    collect(|v| kv.scan_prefix(cf, p, v), usize::MAX),
                    pre,
                    "prefix {cf:?} {p:?}"
                );
                assert_eq!(
                    collect(|v| kv.scan_prefix(cf, p, v), stop),
                    pre.iter().take(stop.max(1)).cloned().collect::<Vec<_>>(),
                    "prefix {cf:?} {p:?} stopped after {stop}"
                );
                assert_eq!(
                    kv.last_with_prefix(cf, p).unwrap(),
                    pre.last().cloned(),
                    "last {cf:?} {p:?}"
                );
                for q in probes {
                    let inside: Vec<_> = fam
                        .iter()
                        .filter(|(k, _)| k.as_slice() >= p.as_slice() && k.as_slice() < q.as_slice())
                        .cloned()
                        .collect();
                    assert_eq!(
                        collect(|v| kv.scan_range(cf, p, q, v), usize::MAX),
                        inside,
                        "range {cf:?} {p:?}..{q:?}"
                    );
                    let mut down = inside.clone();
                    down.reverse();
                    assert_eq!(
                        collect(|v| kv.scan_range_rev(cf, p, q, v), stop),
                        down.into_iter().take(stop.max(1)).collect::<Vec<_>>(),
                        "range down {cf:?} {p:?}..{q:?}"
                    );
                }
            }
            let want: Vec<Option<Vec<u8>>> = probes.iter().map(|p| get(p)).collect();
            assert_eq!(kv.multi_get(cf, probes).unwrap(), want, "multi_get {cf:?}");
        }
        // Both families in one statement: the answers of each, in order.
        let wanted: Vec<(Cf, Vec<Vec<u8>>)> = FAMILIES.iter().map(|&cf| (cf, probes.to_vec())).collect();
        let each: Vec<Vec<Option<Vec<u8>>>> = FAMILIES.iter().map(|&cf| kv.multi_get(cf, probes).unwrap()).collect();
        assert_eq!(kv.multi_get_families(&wanted).unwrap(), each, "multi_get_families");
        let one = [(FAMILIES[1], probes.iter().rev().cloned().collect::<Vec<_>>())];
        let mut rev = each[1].clone();
        rev.reverse();
        assert_eq!(
            kv.multi_get_families(&one).unwrap(),
            vec![rev],
            "multi_get_families of one family"
        );
    }

    /// One case: `ops` on a new database of `c`, every read checked after each.
    fn run_case(c: &PgCluster, name: &str, ops: Vec<KvOp>, probes: &[Vec<u8>], page_rows: usize, stop: usize) {
        c.create_database(name).unwrap();
        let url = c.url_for(name);
        let cfg = PgConfig {
            page_rows,
            pack_bytes: 16,
            fold_every: 0,
            ..PgConfig::default()
        };
        let mut kv = Some(PgKv::connect(&url, true, &cfg).unwrap());
        let mut model = Model::new();
        for op in ops {
            let k = kv.as_ref().unwrap();
            match op {
                KvOp::Write(w) => {
                    let mut b = Batch::default();
                    for (cf, key, v) in w {
                        match v {
                            Some(v) => {
                                b.put(FAMILIES[usize::from(cf)], key.clone(), v.clone());
                                model.insert((cf, key), v);
                            }
                            None => {
                                b.delete(FAMILIES[usize::from(cf)], key.clone());
                                model.remove(&(cf, key));
                            }
                        }
                    }
                    k.write(b).unwrap();
                }
                KvOp::Fold {
                    cf,
                    from,
                    window,
                    min_rows,
                    pack_bytes,
                } => {
                    k.fold_step(
                        FAMILIES[usize::from(cf)],
                        &from,
                        FoldPolicy {
                            pack_bytes,
                            min_rows,
                            window,
                        },
                    )
                    .unwrap();
                }
                KvOp::FoldAll => k.fold_all().unwrap(),
                KvOp::Reopen => {
                    drop(kv.take());
                    kv = Some(PgKv::connect(&url, false, &cfg).unwrap());
                }
            }
            check(kv.as_ref().unwrap(), &model, probes, stop);
        }
        // Compaction folds every row: nothing is left in mxstate_rows.
        let k = kv.as_ref().unwrap();
        k.maintenance().unwrap().compact().unwrap();
        check(k, &model, probes, stop);
        let rows: i64 = c
            .connect(name)
            .unwrap()
            .query_one("SELECT count(*) FROM mxstate_rows", &[])
            .unwrap()
            .get(0);
        assert_eq!(rows, 0, "rows left after compaction");
    }

    /// One private cluster for the whole run (a new database per case).
    #[test]
    fn the_key_value_contract_holds_over_rows_and_packs() {
        let c = cluster();
        let n = std::sync::atomic::AtomicUsize::new(0);
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 20,
            ..ProptestConfig::default()
        });
        let case = (
            proptest::collection::vec(kv_op(), 1..24),
            proptest::collection::vec(key(), 1..4),
            1usize..5,
            1usize..4,
        );
        runner
            .run(&case, |(ops, probes, page_rows, stop)| {
                let name = format!("kvmodel_{}", n.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
                run_case(&c, &name, ops, &probes, page_rows, stop);
                Ok(())
            })
            .unwrap();
    }

    /// A chain of groups in room 1 (a full state, then member deltas); returns their ids.
    fn history(s: &EngineStore, rt: &tokio::runtime::Runtime, n: u64) -> Vec<u64> {
        let mut ids = vec![one_group(s, rt, 1).unwrap()];
        for i in 2..=n {
            let prev = *ids.last().unwrap();
            let delta = mxstate_conformance::delta(&[("m.room.member", &format!("@u{i}:example.org"), Some(i))]);
            let id = rt
                .block_on(s.store_state_groups(vec![mxstate_api::GroupWrite {
                    id: None,
                    room_id: mxstate_conformance::room(1),
                    event_id: mxstate_conformance::ev(i),
                    content: mxstate_api::GroupContent::Delta { prev, delta },
                }]))
                .unwrap()[0];
            ids.push(id);
        }
        ids
    }

    fn states(s: &EngineStore, rt: &tokio::runtime::Runtime, ids: &[u64]) -> Vec<mxstate_api::StateMap> {
        let all = rt
            .block_on(s.state_for_groups(ids.to_vec(), mxstate_api::StateFilter::all()))
            .unwrap();
        ids.iter().map(|g| all[g].clone()).collect()
    }

    fn table_exists(c: &PgCluster, db: &str, table: &str) -> bool {
        c.connect(db)
            .unwrap()
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .unwrap()
            .get(0)
    }

    /// A database of the one-table layout (every record a row of
    /// `mxstate_kv`, as builds before packs wrote it) opens, moves to rows
    /// and packs, answers as before, and folds into packs; a build from
    /// before packs then finds no database, and a database with both
    /// layouts is refused.
    #[test]
    fn a_one_table_database_moves_to_packs() {
        let c = cluster();
        let rt = mxstate_tests::runtime();
        // The records, written with folding off: all rows.
        let src = database(&c, "source");
        let rows_only = PgConfig {
            fold_every: 0,
            ..PgConfig::default()
        };
        let s = EngineStore::new(Arc::new(
            mxstate_postgres::open_with(&src, small_policy_options(), &rows_only).unwrap(),
        ));
        let ids = history(&s, &rt, 40);
        let want = states(&s, &rt, &ids);
        drop(s);
        // The same records in the old layout's table.
        let old = database(&c, "old");
        let mut admin = c.connect("old").unwrap();
        admin
            .batch_execute(&format!(
                "CREATE TABLE mxstate_kv (cf smallint NOT NULL, k bytea NOT NULL, v bytea NOT NULL, PRIMARY KEY (cf, k)); \
                 ALTER TABLE mxstate_kv ALTER COLUMN v SET STORAGE EXTERNAL; {}",
                mxstate_postgres::lease::LEASE_DDL
            ))
            .unwrap();
        let mut from = c.connect("source").unwrap();
        let mut n: i64 = 0;
        for r in from
            .query("SELECT cf, k, v FROM mxstate_rows WHERE v IS NOT NULL", &[])
            .unwrap()
        {
            let (cf, k, v): (i16, Vec<u8>, Vec<u8>) = (r.get(0), r.get(1), r.get(2));
            admin
                .execute("INSERT INTO mxstate_kv VALUES ($1, $2, $3)", &[&cf, &k, &v])
                .unwrap();
            n += 1;
        }
        assert!(n > 40, "{n} records");
        let opened = EngineStore::new(Arc::new(
            mxstate_postgres::open(
                &old,
                EngineOptions {
                    create: false,
                    ..small_policy_options()
                },
            )
            .unwrap(),
        ));
        assert!(!table_exists(&c, "old", "mxstate_kv"));
        assert!(table_exists(&c, "old", "mxstate_rows") && table_exists(&c, "old", "mxstate_packs"));
        assert_eq!(states(&opened, &rt, &ids), want);
        // Compacted: every record in a pack, the same answers.
        opened.engine().compact().unwrap();
        let counts = admin
            .query_one(
                "SELECT (SELECT count(*) FROM mxstate_rows), (SELECT count(*) FROM mxstate_packs), \
                        (SELECT coalesce(sum(n), 0)::bigint FROM mxstate_packs)",
                &[],
            )
            .unwrap();
        let (rows, packs, packed): (i64, i64, i64) = (counts.get(0), counts.get(1), counts.get(2));
        assert_eq!(rows, 0);
        assert!(packs > 0 && packed >= n, "{packs} packs of {packed} records for {n}");
        assert_eq!(states(&opened, &rt, &ids), want);
        drop(opened);
        // Both layouts at once (an old build made its table again): refused.
        admin
            .batch_execute("CREATE TABLE mxstate_kv (cf smallint NOT NULL, k bytea NOT NULL, v bytea NOT NULL, PRIMARY KEY (cf, k))")
            .unwrap();
        let mixed = mxstate_postgres::open(&old, EngineOptions::default())
            .err()
            .expect("refused");
        assert_eq!(mixed.kind(), ErrorKind::Corrupt, "{mixed}");
        assert!(mixed.to_string().contains("mixed table layouts"), "{mixed}");
    }
}
