//! On the real Synapse database (`tests/fixtures/synapse-small.sql.zst`, a
//! pg_dump of Synapse 1.163 with the chain cover index Synapse itself
//! computed), Synapse's own chain cover SQL and mxstate's auth index
//! (imported from the same dump's `event_auth`) give the same answers: the
//! auth chain of every event and of every room's events, and the auth
//! difference (with and without state res v2.1's conflicted subgraph) of
//! the states of pairs of state groups, read with Synapse's own state
//! query.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../src/compare/mod.rs"]
mod compare;

use std::collections::{BTreeSet, HashSet};
use std::io::Read as _;
use std::path::PathBuf;

use compare::mx;
use compare::pg::{self, Pg, Read};
use compare::pg_auth;
use mxstate_engine::{EventId, RoomId};
use mxstate_synapse_dump::Include;
use postgres::SimpleQueryMessage;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/synapse-small.sql.zst")
}

fn column(msgs: &[SimpleQueryMessage]) -> Vec<String> {
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .collect()
}

fn strings<'a>(ids: impl IntoIterator<Item = &'a EventId>) -> HashSet<String> {
    ids.into_iter().map(|e| e.as_str().to_owned()).collect()
}

#[test]
fn synapse_chain_cover_and_mxstate_agree_on_the_real_database() {
    let dir = tempfile::tempdir().unwrap();
    let sql = dir.path().join("fixture.sql");
    let mut text = String::new();
    zstd::Decoder::new(std::fs::File::open(fixture()).unwrap())
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    std::fs::write(&sql, text).unwrap();
    let mut pg = Pg::start().expect("PostgreSQL is a test prerequisite; .ci/run installs it");
    pg.load(&sql).unwrap();

    let db = mx::Db::Rocks(dir.path().join("mx"));
    let (engine, summary, _) = mx::import(&db, &fixture(), dir.path(), Include::StateAndAuth).unwrap();
    assert!(summary.auth_events > 900, "{} events' auth events", summary.auth_events);

    let rooms = column(
        &pg.client()
            .simple_query("SELECT DISTINCT room_id FROM event_auth ORDER BY room_id")
            .unwrap(),
    );
    assert_eq!(rooms.len(), 3);
    let (mut chains, mut differences, mut subgraphs) = (0, 0, 0);
    for room_str in &rooms {
        let room = RoomId::parse(room_str).unwrap();
        // The room's events that Synapse gave a chain cover position.
        let events = column(
            &pg.client()
                .simple_query(&format!(
                    "SELECT DISTINCT a.event_id FROM event_auth a JOIN event_auth_chains c USING (event_id) \
                     WHERE a.room_id = '{room_str}' ORDER BY a.event_id"
                ))
                .unwrap(),
        );
        assert!(!events.is_empty());
        let covered: HashSet<&String> = events.iter().collect();
        for e in events.iter().chain(std::iter::once(&events.join("\u{0}"))) {
            // Each event alone, then all of the room's at once.
            let ask: Vec<String> = if e.contains('\u{0}') {
                events.clone()
            } else {
                vec![e.clone()]
            };
            let ids: Vec<EventId> = ask.iter().map(|e| EventId::parse(e).unwrap()).collect();
            for given in [false, true] {
                let (_, want) = pg_auth::auth_chain_ids(pg.client(), &ask, given).unwrap();
                let got = strings(&engine.auth_chain_unordered(&room, &ids, given).unwrap());
                assert_eq!(
                    got,
                    want,
                    "auth chain of {} event(s) from {e:.50}, include_given {given}",
                    ask.len()
                );
                chains += 1;
            }
        }

        // States of the room's groups, by Synapse's own state query, kept
        // to the events with a chain cover position.
        let groups: Vec<i64> = column(
            &pg.client()
                .simple_query(&format!(
                    "SELECT id FROM state_groups WHERE room_id = '{room_str}' ORDER BY id"
                ))
                .unwrap(),
        )
        .iter()
        .map(|g| g.parse().unwrap())
        .collect();
        let picked: Vec<i64> = groups.iter().step_by((groups.len() / 12).max(1)).copied().collect();
        let mut states: Vec<Vec<String>> = Vec::new();
        for &g in &picked {
            let (_, msgs) = pg.read(Read::Full, g).unwrap();
            let state: Vec<String> = pg::triples(&msgs)
                .unwrap()
                .into_iter()
                .map(|(_, _, e)| e)
                .filter(|e| covered.contains(e))
                .collect();
            states.push(state);
        }
        for (i, a) in states.iter().enumerate() {
            for b in states.iter().skip(i + 1).step_by(2) {
                let sets = vec![a.clone(), b.clone()];
                let ids: Vec<Vec<EventId>> = sets
                    .iter()
                    .map(|s| s.iter().map(|e| EventId::parse(e).unwrap()).collect())
                    .collect();
                let sa: BTreeSet<&String> = a.iter().collect();
                let sb: BTreeSet<&String> = b.iter().collect();
                let conflicted: Vec<String> = sa.symmetric_difference(&sb).map(|e| (*e).clone()).collect();
                let conflicted_ids: Vec<EventId> = conflicted.iter().map(|e| EventId::parse(e).unwrap()).collect();
                let none: Vec<EventId> = Vec::new();

                let (_, want) = pg_auth::auth_difference(pg.client(), &sets, None).unwrap();
                let got = engine
                    .auth_chain_difference_of(&room, &ids, None::<(&Vec<EventId>, &Vec<EventId>)>)
                    .unwrap();
                assert_eq!(strings(&got.auth_difference), want.auth_difference, "difference");
                differences += 1;

                let (_, want) = pg_auth::auth_difference(pg.client(), &sets, Some(&conflicted)).unwrap();
                let got = engine
                    .auth_chain_difference_of(&room, &ids, Some((&conflicted_ids, &none)))
                    .unwrap();
                assert_eq!(strings(&got.auth_difference), want.auth_difference, "v2.1 difference");
                assert_eq!(
                    got.conflicted_subgraph.as_ref().map(strings),
                    want.conflicted_subgraph,
                    "conflicted subgraph of {} conflicted events",
                    conflicted.len()
                );
                subgraphs += usize::from(!conflicted.is_empty());
            }
        }
    }
    assert!(chains > 1900, "{chains} chains compared");
    assert!(
        differences > 60 && subgraphs > 30,
        "{differences} differences, {subgraphs} subgraphs"
    );
}
