//! The Synapse integration's requests through `mxstate serve` answer
//! exactly as the same calls on an engine in this process: the same
//! script (stores, lenient reads, lookups, the whole deletion protocol,
//! refused input) runs on both, reply by reply. Synapse's workers use
//! these requests (server-adapter/python); the live worker test runs them
//! from Synapse itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mxstate_api::{Error, ErrorKind};
use mxstate_engine::{Engine, EngineOptions};
use mxstate_remote::adapter::{AdapterOp, AdapterReply, WBase, WNewGroup};
use mxstate_remote::wire::{WDelta, WFilter};
use mxstate_tests::served::Served;

const ROOM: &str = "!room:x";
const OTHER: &str = "!other:x";

fn member(user: &str, ev: &str) -> (String, String, Option<String>) {
    ("m.room.member".into(), user.into(), Some(ev.into()))
}

fn group(room: &str, event: &str, base: WBase, entries: WDelta) -> WNewGroup {
    WNewGroup {
        room: room.into(),
        event: event.into(),
        base,
        entries,
    }
}

fn all() -> WFilter {
    WFilter {
        types: vec![],
        include_others: true,
    }
}

/// The script: each step is an op; later steps use ids from earlier
/// replies (`ids[i]`: the i-th id stored so far) and the deletion
/// candidates last offered (`cands`).
fn script(ids: &[u64], cands: &[(u64, u64)]) -> Vec<AdapterOp> {
    let id = |i: usize| ids.get(i).copied().unwrap_or(9_999);
    let now = 1_000_000;
    vec![
        // 0: a root and a chain on it, in one request.
        AdapterOp::StoreGroupsAt {
            groups: vec![
                group(
                    ROOM,
                    "$create",
                    WBase::Full,
                    vec![
                        ("m.room.create".into(), String::new(), Some("$create".into())),
                        member("@a:x", "$ja"),
                    ],
                ),
                group(ROOM, "$jb", WBase::Previous, vec![member("@b:x", "$jb")]),
                group(ROOM, "$jc", WBase::Previous, vec![member("@c:x", "$jc")]),
            ],
            now_ms: None,
        },
        // 3: a branch on the root, and a group of another room.
        AdapterOp::StoreGroupsAt {
            groups: vec![group(ROOM, "$jd", WBase::Prev(id(0)), vec![member("@d:x", "$jd")])],
            now_ms: Some(now),
        },
        AdapterOp::StoreGroupsAt {
            groups: vec![group(
                OTHER,
                "$o",
                WBase::Full,
                vec![("m.room.create".into(), String::new(), Some("$o".into()))],
            )],
            now_ms: None,
        },
        AdapterOp::StatesOrMissing {
            groups: vec![id(0), id(2), id(3), 777_777],
            filter: all(),
        },
        AdapterOp::StatesOrMissing {
            groups: vec![id(2)],
            filter: WFilter {
                types: vec![("m.room.member".into(), Some(vec!["@b:x".into(), "@z:x".into()]))],
                include_others: false,
            },
        },
        AdapterOp::StatesOrMissing {
            groups: vec![id(3)],
            filter: WFilter {
                types: vec![("m.room.member".into(), Some(vec![]))],
                include_others: true,
            },
        },
        AdapterOp::PreviousGroups(vec![id(0), id(1), id(2), id(3), 777_777]),
        AdapterOp::NextGroups(vec![id(0), id(1)]),
        AdapterOp::GroupRoom(id(4)),
        AdapterOp::GroupRoom(777_777),
        AdapterOp::GroupEvent(id(2)),
        AdapterOp::GroupEvent(777_777),
        AdapterOp::ExistingGroups(vec![id(0), id(4), 777_777]),
        AdapterOp::GroupsBelow {
            before: id(4),
            limit: 3,
        },
        AdapterOp::MaxGroup,
        // The deletion protocol.
        AdapterOp::MarkPendingDeletion {
            groups: vec![id(2), id(3)],
            now_ms: now,
        },
        AdapterOp::PendingDeletions(vec![id(0), id(2), id(3)]),
        AdapterOp::CheckAndBumpDeletion {
            groups: vec![id(3), 777_777],
            now_ms: now + 5,
        },
        AdapterOp::MarkPersisting {
            groups: vec![id(2)],
            instance: "persister1".into(),
            now_ms: now + 6,
        },
        AdapterOp::MarkPersisting {
            groups: vec![id(2), 777_777],
            instance: "persister2".into(),
            now_ms: now + 6,
        },
        AdapterOp::PersistingMarks,
        AdapterOp::NextDeletionCandidates {
            now_ms: now + 100_000,
            delay_ms: 10,
        },
        AdapterOp::FinishPersisting {
            groups: vec![id(2)],
            instance: "persister1".into(),
            error: false,
            now_ms: now + 7,
        },
        AdapterOp::ClearPersisting {
            instance: "persister1".into(),
            older_than_ms: 0,
        },
        AdapterOp::NextDeletionCandidates {
            now_ms: now + 100_000,
            delay_ms: 10,
        },
        AdapterOp::ReadyForDeletion {
            // Plus a group that is not pending deletion: never ready.
            candidates: cands.iter().copied().chain([(id(1), 0)]).collect(),
            now_ms: now + 100_000,
            delay_ms: 10,
        },
        AdapterOp::PurgeIfReady {
            room: ROOM.into(),
            candidates: cands.to_vec(),
            now_ms: now + 100_000,
            delay_ms: 10,
        },
        AdapterOp::PurgeIfReady {
            room: "!never:x".into(),
            candidates: vec![(1, 0)],
            now_ms: now,
            delay_ms: 0,
        },
        AdapterOp::MarkUsed(vec![id(2), id(3)]),
        AdapterOp::ExistingGroups(vec![id(0), id(1), id(2), id(3)]),
        AdapterOp::StatesOrMissing {
            groups: vec![id(0), id(1), id(2), id(3)],
            filter: all(),
        },
        // Refused input: the same error on both sides, nothing stored.
        AdapterOp::StoreGroupsAt {
            groups: vec![group(ROOM, "$x", WBase::Prev(777_777), vec![member("@x:x", "$x")])],
            now_ms: None,
        },
        AdapterOp::StoreGroupsAt {
            groups: vec![group("no-bang", "$x", WBase::Full, vec![])],
            now_ms: None,
        },
        AdapterOp::StoreGroupsAt {
            groups: vec![group(ROOM, "$x", WBase::Full, vec![("t".into(), "k".into(), None)])],
            now_ms: None,
        },
        AdapterOp::StoreGroupsAt {
            groups: vec![group(OTHER, "$x", WBase::Prev(id(0)), vec![])],
            now_ms: None,
        },
        AdapterOp::MaxGroup,
        // The auth index: no mark yet; auth events of two rooms with a
        // mark; the mark widened; an event added again with other auth
        // events, and a bad event id, refused (nothing written).
        AdapterOp::AuthMark,
        auth(
            vec![
                (ROOM, vec![("$c", vec![]), ("$m", vec!["$c"])]),
                (OTHER, vec![("$n", vec!["$c"])]),
            ],
            Some((3, 7)),
        ),
        AdapterOp::AuthMark,
        auth(vec![], Some((-2, 1))),
        AdapterOp::AuthMark,
        auth(vec![(ROOM, vec![("$m", vec!["$c", "$z"])])], Some((100, 200))),
        auth(vec![(ROOM, vec![("not-an-event", vec![])])], None),
        AdapterOp::AuthMark,
    ]
}

/// One room's events with their auth events, as the script names them.
type Room<'a> = (&'a str, Vec<(&'a str, Vec<&'a str>)>);

fn auth(rooms: Vec<Room<'_>>, mark: Option<(i64, i64)>) -> AdapterOp {
    AdapterOp::AddAuthMarked {
        rooms: rooms
            .into_iter()
            .map(|(r, evs)| {
                (
                    r.to_owned(),
                    evs.into_iter()
                        .map(|(e, a)| (e.to_owned(), a.into_iter().map(str::to_owned).collect()))
                        .collect(),
                )
            })
            .collect(),
        mark,
    }
}

/// A reply or an error, comparable across the wire (errors by kind and
/// message; a state's entries in key order, which a state does not fix).
fn outcome(r: Result<AdapterReply, Error>) -> Result<AdapterReply, (ErrorKind, String)> {
    r.map(|reply| match reply {
        AdapterReply::MaybeStates(mut v) => {
            for (_, s) in &mut v {
                if let Some(s) = s {
                    s.sort();
                }
            }
            AdapterReply::MaybeStates(v)
        }
        other => other,
    })
    .map_err(|e| {
        let kind = e.kind();
        let msg = match e {
            Error::Remote { message, .. } => message,
            e => e.to_string(),
        };
        (kind, msg)
    })
}

#[test]
fn adapter_requests_through_the_service_answer_as_in_process() {
    let local_dir = tempfile::tempdir().unwrap();
    let local: Engine = mxstate_rocks::open(local_dir.path(), EngineOptions::default()).unwrap();
    let served = Served::start(EngineOptions::default());
    let client = served.client();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let mut ids: Vec<u64> = Vec::new();
    let mut cands: Vec<(u64, u64)> = Vec::new();
    let mut deleted: Vec<u64> = Vec::new();
    let mut errors = 0;
    let mut step = 0;
    loop {
        let ops = script(&ids, &cands);
        let Some(op) = ops.get(step).cloned() else { break };
        let here = outcome(mxstate_serve::adapter::run(&local, op.clone()));
        let there = outcome(rt.block_on(client.adapter(op.clone())));
        assert_eq!(here, there, "step {step}: {op:?}");
        match &here {
            Ok(AdapterReply::Ids(new)) if matches!(op, AdapterOp::StoreGroupsAt { .. }) => ids.extend(new),
            Ok(AdapterReply::Ids(gone)) if matches!(op, AdapterOp::PurgeIfReady { .. }) => deleted.extend(gone),
            Ok(AdapterReply::Candidates(Some((_, c)))) => cands.clone_from(c),
            Err(_) => errors += 1,
            _ => {}
        }
        step += 1;
    }
    assert_eq!(ids.len(), 5, "every store succeeded: {ids:?}");
    assert_eq!(errors, 6, "every refused store and auth request was refused");
    // The auth events and the mark arrived the same on both sides.
    assert_eq!(local.auth_mark().unwrap().map(|m| (m.min, m.max)), Some((-2, 7)));
    let room = mxstate_api::RoomId::parse(ROOM).unwrap();
    let m = mxstate_api::EventId::parse("$m").unwrap();
    let chain = rt
        .block_on(mxstate_api::StateStore::auth_chain(
            &client,
            room.clone(),
            vec![m.clone()],
            true,
        ))
        .unwrap();
    assert_eq!(chain, local.auth_chain(&room, &[m], true).unwrap());
    assert_eq!(chain.len(), 2, "{chain:?}");

    // The deletion protocol ran to its end: the groups the purge deleted
    // are gone, and only they.
    assert!(!deleted.is_empty(), "the purge deleted nothing");
    let states = rt
        .block_on(client.adapter(AdapterOp::StatesOrMissing {
            groups: ids.clone(),
            filter: all(),
        }))
        .unwrap();
    let AdapterReply::MaybeStates(states) = states else {
        panic!("{states:?}")
    };
    let missing: Vec<u64> = states.iter().filter(|(_, s)| s.is_none()).map(|(g, _)| *g).collect();
    assert_eq!(missing, deleted, "{states:?}");
    let chain = states[1].1.as_ref().unwrap();
    assert_eq!(
        chain.len(),
        3,
        "group 1 still has the create event and two members: {chain:?}"
    );
}
