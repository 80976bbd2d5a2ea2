//! Measures the on-disk bytes of one-entry delta groups, amortized, and the
//! store rate in batches: `cargo run --release -p mxstate-benches --bin footprint [MEMBERS] [GROUPS]`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use mxstate_benches::build_room;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().expect("a number"));
    let members = args.next().unwrap_or(10_000);
    let groups = args.next().unwrap_or(200_000);

    let base = build_room(members, 0);
    base.engine.compact().unwrap();
    let before = base.engine.stats().unwrap();
    drop(base);

    let t = Instant::now();
    let room = build_room(members, groups);
    let secs = t.elapsed().as_secs_f64();
    room.engine.compact().unwrap();
    let s = room.engine.stats().unwrap();
    println!("room of {members} members, {groups} one-entry delta groups stored in batches of 1000");
    println!(
        "store rate (incl. the initial snapshot): {:.0} groups/s",
        groups as f64 / secs
    );
    let cf = |name: &str, st: &mxstate_engine::Stats| {
        st.column_families
            .iter()
            .find(|c| c.name == name)
            .map_or(0, |c| c.bytes)
    };
    let structural = ["groups", "room_groups", "snapshots", "snap_hashes", "meta"];
    let grow = |names: &[&str]| -> f64 {
        let a: u64 = names.iter().map(|n| cf(n, &s)).sum();
        let b: u64 = names.iter().map(|n| cf(n, &before)).sum();
        (a.saturating_sub(b)) as f64 / groups as f64
    };
    println!(
        "bytes per group, group structure (groups, room_groups, snapshots): {:.1}",
        grow(&structural)
    );
    println!(
        "bytes per group, with interned event ids (strings, nids): {:.1}",
        grow(&[
            "groups",
            "room_groups",
            "snapshots",
            "snap_hashes",
            "meta",
            "strings",
            "nids"
        ])
    );
    println!("longest chain: {} deltas; snapshots: {}", s.longest_chain, s.snapshots);
    for c in &s.column_families {
        println!("  {:<14} {:>12} bytes", c.name, c.bytes);
    }
}
