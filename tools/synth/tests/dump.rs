//! End-to-end tests of `write_dump`: determinism, Synapse shape, streaming.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;

use mxstate_synth::ids::{is_event_id, is_room_id, is_user_id};
use mxstate_synth::{write_dump, Generator, SynthOptions, INITIAL_STATE_EVENTS, MAX_STATE_DELTA_HOPS, MEMBER};

fn small() -> SynthOptions {
    SynthOptions {
        rooms: 3,
        members: 200,
        seed: 7,
        messages_per_state_event: 3,
        fork_every: 20,
        ..Default::default()
    }
}

fn dump(opts: &SynthOptions) -> (Vec<u8>, mxstate_synth::SynthSummary) {
    let mut out = Vec::new();
    let summary = write_dump(opts, &mut out).expect("write_dump");
    assert_eq!(summary.bytes_written, out.len() as u64);
    (out, summary)
}

/// The COPY blocks of a dump, by table, in file order.
fn parse(text: &str) -> Vec<(String, Vec<Vec<String>>)> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("COPY public.") else {
            continue;
        };
        let table = rest.split(' ').next().expect("table").to_owned();
        let mut rows = Vec::new();
        for row in lines.by_ref() {
            if row == "\\." {
                break;
            }
            assert!(!row.contains('\\'), "unexpected escape in {row:?}");
            rows.push(row.split('\t').map(str::to_owned).collect());
        }
        blocks.push((table, rows));
    }
    blocks
}

/// Number of forks the generator makes in a room of `total` state events.
fn forks(total: u64, fork_every: u32) -> u64 {
    let (mut done, mut since, mut forks) = (INITIAL_STATE_EVENTS as u64, 0u32, 0u64);
    while done < total {
        if fork_every > 0 && since >= fork_every && total - done >= 2 {
            forks += 1;
            done += 2;
            since = 0;
        } else {
            since += 1;
            done += 1;
        }
    }
    forks
}

#[test]
fn same_seed_same_bytes_other_seed_differs() {
    let opts = small();
    let (a, sa) = dump(&opts);
    let (b, sb) = dump(&opts);
    assert_eq!(sa, sb);
    assert!(a == b, "two runs with the same seed differ");
    let (c, _) = dump(&SynthOptions { seed: 8, ..opts });
    assert!(a != c, "another seed gives the same dump");
}

#[test]
fn prologue_and_block_order() {
    let (out, _) = dump(&small());
    let text = String::from_utf8(out).expect("utf8");
    assert!(text.contains("SET client_encoding = 'UTF8';"));
    assert!(text.contains("SET standard_conforming_strings = on;"));
    let tables: Vec<String> = parse(&text).into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        tables,
        [
            "state_groups",
            "state_group_edges",
            "state_groups_state",
            "event_to_state_groups"
        ]
    );
    let create = text.find("CREATE TABLE state_groups ").expect("DDL");
    assert!(create < text.find("COPY ").expect("COPY"));
    // Indexes and the id sequence come after the data, as pg_dump does.
    let last_copy_end = text.rfind("\\.\n").expect("end of COPY");
    let index = text.find("CREATE INDEX state_groups_state_type_idx").expect("index");
    assert!(index > last_copy_end);
    let setval = text.find("setval('state_group_id_seq'").expect("setval");
    assert!(setval > last_copy_end);
}

#[test]
fn dump_has_synapse_shape() {
    let opts = small();
    let (out, summary) = dump(&opts);
    let text = String::from_utf8(out).expect("utf8");
    let blocks: HashMap<String, Vec<Vec<String>>> = parse(&text).into_iter().collect();

    // state_groups: increasing ids, well-formed ids, counts per room.
    let groups = &blocks["state_groups"];
    let mut room_of: BTreeMap<i64, String> = BTreeMap::new();
    let mut group_event: HashMap<i64, String> = HashMap::new();
    let mut last_id = 0i64;
    let mut per_room: BTreeMap<String, u64> = BTreeMap::new();
    let mut room_order: Vec<String> = Vec::new();
    for row in groups {
        assert_eq!(row.len(), 3);
        let id: i64 = row[0].parse().expect("id");
        assert!(id > last_id, "ids must increase");
        last_id = id;
        assert!(is_room_id(&row[1]), "room id {}", row[1]);
        assert!(is_event_id(&row[2]), "event id {}", row[2]);
        room_of.insert(id, row[1].clone());
        group_event.insert(id, row[2].clone());
        if room_order.last() != Some(&row[1]) {
            room_order.push(row[1].clone());
        }
        *per_room.entry(row[1].clone()).or_default() += 1;
    }
    assert_eq!(room_order.len(), 3, "rooms are generated one after another");
    assert_eq!(summary.rooms, 3);
    assert_eq!(summary.groups, groups.len() as u64);
    for (i, spec) in opts.room_specs().enumerate() {
        let expected = spec.state_events + forks(spec.state_events, opts.fork_every);
        assert_eq!(per_room[&room_order[i]], expected, "groups of room {i}");
    }

    // state_group_edges: prev < group, same room, one edge per group.
    let mut prev_of: HashMap<i64, i64> = HashMap::new();
    for row in &blocks["state_group_edges"] {
        let (g, p): (i64, i64) = (row[0].parse().expect("g"), row[1].parse().expect("p"));
        assert!(p < g, "edge {g} -> {p}");
        assert_eq!(room_of[&g], room_of[&p], "edge across rooms");
        assert!(prev_of.insert(g, p).is_none(), "two edges from {g}");
    }
    assert_eq!(summary.edges, prev_of.len() as u64);

    // Hops never exceed Synapse's limit; full copies exist beyond each room's first group.
    let mut depth: HashMap<i64, u32> = HashMap::new();
    for &g in room_of.keys() {
        let d = prev_of.get(&g).map_or(0, |p| depth[p] + 1);
        assert!(d <= MAX_STATE_DELTA_HOPS, "group {g} is {d} hops deep");
        depth.insert(g, d);
    }
    let full: Vec<i64> = room_of.keys().filter(|g| !prev_of.contains_key(g)).copied().collect();
    assert!(full.len() > 3, "expected full copies beyond the room roots: {full:?}");
    assert_eq!(summary.full_copies, full.len() as u64);
    assert_eq!(depth.values().max(), Some(&MAX_STATE_DELTA_HOPS));

    // Forks: some groups share a prev.
    let mut children: HashMap<i64, u32> = HashMap::new();
    for p in prev_of.values() {
        *children.entry(*p).or_default() += 1;
    }
    assert!(children.values().any(|&c| c == 2), "no fork");

    // state_groups_state: deltas are one row, full copies hold the state.
    let mut rows_of: HashMap<i64, Vec<(String, String, String)>> = HashMap::new();
    for row in &blocks["state_groups_state"] {
        assert_eq!(row.len(), 5);
        let g: i64 = row[0].parse().expect("group");
        assert_eq!(room_of[&g], row[1], "row room");
        assert!(is_event_id(&row[4]));
        if row[2] == MEMBER {
            assert!(is_user_id(&row[3]), "member key {}", row[3]);
        }
        rows_of
            .entry(g)
            .or_default()
            .push((row[2].clone(), row[3].clone(), row[4].clone()));
    }
    assert_eq!(summary.state_rows, blocks["state_groups_state"].len() as u64);
    for g in room_of.keys() {
        let n = rows_of.get(g).map_or(0, Vec::len);
        if prev_of.contains_key(g) {
            assert_eq!(n, 1, "delta group {g}");
        } else {
            assert!(n >= 1, "full copy {g} is empty");
        }
    }

    // event_to_state_groups: unique events; each group's event maps to it.
    let mut event_group: HashMap<String, i64> = HashMap::new();
    for row in &blocks["event_to_state_groups"] {
        assert!(is_event_id(&row[0]));
        let g: i64 = row[1].parse().expect("group");
        assert!(room_of.contains_key(&g));
        assert!(event_group.insert(row[0].clone(), g).is_none(), "{} twice", row[0]);
    }
    assert_eq!(summary.events_mapped, event_group.len() as u64);
    assert!(event_group.len() > 2 * groups.len(), "messages are mapped too");
    for (g, e) in &group_event {
        assert_eq!(event_group.get(e), Some(g));
    }
    // Every state row points at an event mapped in the same room.
    for (g, rows) in &rows_of {
        for (_, _, e) in rows {
            let mapped = event_group[e];
            assert_eq!(room_of[&mapped], room_of[g]);
        }
    }

    // Resolving every group from the dump gives the generator's state; the
    // last group of a room holds exactly its users' latest memberships.
    let resolve = |g: i64| {
        let mut state: BTreeMap<(String, String), String> = BTreeMap::new();
        let mut cur = Some(g);
        while let Some(c) = cur {
            for (t, k, e) in &rows_of[&c] {
                state.entry((t.clone(), k.clone())).or_insert_with(|| e.clone());
            }
            cur = prev_of.get(&c).copied();
        }
        state
    };
    let mut generator = Generator::new(&opts).expect("generator");
    let mut rooms_checked = 0;
    while let Some(group) = generator.next_group() {
        let expected: BTreeMap<(String, String), String> = group
            .state()
            .map(|r| ((r.event_type.to_owned(), r.state_key.to_owned()), r.event_id.to_owned()))
            .collect();
        let resolved = resolve(group.id());
        assert_eq!(resolved, expected, "state of group {}", group.id());
        if group.is_last_in_room() {
            rooms_checked += 1;
            let members: BTreeSet<String> = resolved
                .keys()
                .filter(|(t, _)| t == MEMBER)
                .map(|(_, k)| k.clone())
                .collect();
            let joined = group.joined_members();
            let left = group.left_members();
            let believed: BTreeSet<String> = joined.iter().chain(&left).cloned().collect();
            assert_eq!(members, believed, "members of {}", group.room_id());
            let target = group.room_spec().members as usize;
            assert!(
                joined.len() * 10 >= target * 8 && joined.len() * 10 <= target * 12,
                "{} joined, target {target}",
                joined.len()
            );
            assert!(!left.is_empty(), "no churn");
            for t in ["m.room.create", "m.room.power_levels", "m.room.name", "m.room.topic"] {
                assert!(resolved.contains_key(&(t.to_owned(), String::new())), "{t}");
            }
        }
    }
    assert_eq!(rooms_checked, 3);
}

#[test]
fn owned_groups_match_the_dump_counts() {
    let opts = small();
    let (_, summary) = dump(&opts);
    let groups: Vec<_> = mxstate_synth::groups(&opts).expect("groups").collect();
    assert_eq!(groups.len() as u64, summary.groups);
    let rows: usize = groups.iter().map(|g| g.rows.len()).sum();
    assert_eq!(rows as u64, summary.state_rows);
    let mapped: usize = groups.iter().map(|g| g.mapped_events.len()).sum();
    assert_eq!(mapped as u64, summary.events_mapped);
    let ids: HashSet<i64> = groups.iter().map(|g| g.id).collect();
    assert!(groups
        .iter()
        .all(|g| g.prev.is_none_or(|p| ids.contains(&p) && p < g.id)));
}

/// Counts bytes and the largest single write; stores nothing.
#[derive(Default)]
struct Counting {
    bytes: u64,
    largest_write: usize,
    writes: u64,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len() as u64;
        self.largest_write = self.largest_write.max(buf.len());
        self.writes += 1;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn output_streams_in_bounded_chunks() {
    let opts = SynthOptions {
        rooms: 2,
        members: 5000,
        seed: 1,
        ..Default::default()
    };
    let mut sink = Counting::default();
    let summary = write_dump(&opts, &mut sink).expect("write_dump");
    assert_eq!(summary.bytes_written, sink.bytes);
    assert!(sink.bytes > 20 << 20, "only {} bytes", sink.bytes);
    assert!(
        sink.largest_write < 1 << 20,
        "a {} byte write: output is being collected",
        sink.largest_write
    );
    assert!(sink.writes > 50);
}

#[test]
fn rejects_zero_members() {
    let opts = SynthOptions {
        members: 0,
        ..Default::default()
    };
    assert!(write_dump(&opts, std::io::sink()).is_err());
}

#[test]
fn knobs_switch_features_off() {
    let opts = SynthOptions {
        rooms: 2,
        members: 80,
        messages_per_state_event: 0,
        fork_every: 0,
        max_delta_hops: 0,
        ..Default::default()
    };
    let (_, s) = dump(&opts);
    let state_events: u64 = opts.room_specs().map(|r| r.state_events).sum();
    assert_eq!(s.groups, state_events, "no forks, no merges");
    assert_eq!(s.edges, 0);
    assert_eq!(s.full_copies, s.groups);
    assert_eq!(s.events_mapped, s.groups, "only state events are mapped");

    let opts = SynthOptions {
        max_delta_hops: 5,
        ..opts
    };
    let mut generator = Generator::new(&opts).expect("generator");
    let mut deepest = 0;
    while let Some(g) = generator.next_group() {
        deepest = deepest.max(g.hops());
        assert_eq!(g.is_full_copy(), g.hops() == 0);
    }
    assert_eq!(deepest, 5);
}
