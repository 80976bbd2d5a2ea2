//! Engine benchmarks: storing groups, full-state, one-key and
//! all-but-members reads, at rooms of 1k, 10k and 100k members.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mxstate_benches::{build_room, event, member};
use mxstate_engine::{GroupState, NewGroup, StateDelta, StateFilter};

const SIZES: [u64; 3] = [1_000, 10_000, 100_000];
const CHURN: u64 = 5_000;

fn reads(c: &mut Criterion) {
    let mut g = c.benchmark_group("read");
    for &members in &SIZES {
        let room = build_room(members, CHURN);
        let one = StateFilter::from_types([("m.room.power_levels", Some(""))]);
        let member_key = member(members / 2);
        let one_member = StateFilter::from_types([("m.room.member", Some(member_key.state_key()))]);
        let no_members = StateFilter::all_except_types(["m.room.member"]);
        let all = StateFilter::all();
        // Warm the caches once.
        let full = room.engine.state_for_group(room.latest, &all).unwrap();
        assert!(full.len() as u64 >= members);
        g.bench_with_input(BenchmarkId::new("one_key", members), &room, |b, r| {
            b.iter(|| black_box(r.engine.state_for_group(r.latest, &one).unwrap()))
        });
        g.bench_with_input(BenchmarkId::new("one_member", members), &room, |b, r| {
            b.iter(|| black_box(r.engine.state_for_group(r.latest, &one_member).unwrap()))
        });
        g.bench_with_input(BenchmarkId::new("all_but_members", members), &room, |b, r| {
            b.iter(|| black_box(r.engine.state_for_group(r.latest, &no_members).unwrap()))
        });
        g.bench_with_input(BenchmarkId::new("full_state_view", members), &room, |b, r| {
            b.iter(|| black_box(r.engine.state_view(r.latest, &all).unwrap()))
        });
        g.sample_size(20);
        g.bench_with_input(BenchmarkId::new("full_state_map", members), &room, |b, r| {
            b.iter(|| black_box(r.engine.state_for_group(r.latest, &all).unwrap()))
        });
        g.sample_size(100);
    }
    g.finish();
}

fn writes(c: &mut Criterion) {
    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    for &members in &SIZES {
        let room = build_room(members, 1_000);
        let mut next = room.latest;
        let mut ev = 50_000_000u64;
        g.throughput(Throughput::Elements(1000));
        g.bench_function(BenchmarkId::new("batch_of_1000_one_entry_deltas", members), |b| {
            b.iter(|| {
                let items: Vec<(mxstate_engine::EventId, StateDelta)> = (0..1000u64)
                    .map(|i| {
                        ev += 1;
                        let e = event(ev);
                        (e.clone(), [(member((ev * 31 + i) % members), Some(e))].into())
                    })
                    .collect();
                let groups: Vec<NewGroup<'_>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, (e, d))| NewGroup {
                        id: Some(next + 1 + i as u64),
                        room_id: &room.room,
                        event_id: e,
                        state: GroupState::Delta {
                            prev: next + i as u64,
                            delta: d,
                        },
                    })
                    .collect();
                next = *room.engine.store_groups(&groups).unwrap().last().unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, reads, writes);
criterion_main!(benches);
