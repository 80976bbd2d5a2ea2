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

macro_rules! conformance_on_postgres {
    ([$($check:ident),* $(,)?]) => {
        #[test]
        fn conformance_on_postgres() {
            let c = cluster();
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            $(
                for (policy, opts) in [("default", EngineOptions::default()), ("small", small_policy_options())] {
                    let url = database(&c, &format!("{}_{}", stringify!($check), policy));
                    let s = store(&url, opts);
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
