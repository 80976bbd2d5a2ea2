//! `mxstate serve` against hostile clients, from raw sockets: garbage
//! bytes, a frame over the limit, a truncated frame, an unknown request, a
//! wrong protocol version, a wrong or missing secret, a client that never
//! finishes its handshake. Each is refused (counted in the service's
//! figures) while a well-behaved client keeps being served, and the
//! database stays whole.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use mxstate_api::{EventId, GroupContent, GroupWrite, RoomId, StateFilter, StateKey, StateMap, StateStore};
use mxstate_engine::EngineOptions;
use mxstate_remote::auth::{ClientHello, Secret, ServerHello, Welcome, MAGIC, VERSION};
use mxstate_remote::frame;
use mxstate_remote::{Addr, RemoteOptions, RemoteStore};
use mxstate_tests::served::Served;

const SECRET: &[u8] = b"correct horse battery staple";
const MAX: u32 = 1 << 20;

fn serve() -> Served {
    let dir = tempfile::tempdir().unwrap();
    Served::start_at(
        dir,
        Addr::Tcp("127.0.0.1:0".into()),
        EngineOptions::default(),
        |mut o| {
            o.secret = Secret::new(SECRET);
            o.max_frame = MAX;
            o.handshake_timeout = Duration::from_millis(500);
            o.frame_timeout = Duration::from_millis(500);
            o
        },
    )
}

fn connect(s: &Served) -> TcpStream {
    let Addr::Tcp(hp) = &s.addr else { unreachable!() };
    let c = TcpStream::connect(hp).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c
}

fn read_frame<T: serde::de::DeserializeOwned>(c: &mut TcpStream) -> T {
    let mut len = [0u8; 4];
    c.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    c.read_exact(&mut body).unwrap();
    frame::decode(&body, MAX).unwrap()
}

fn send<T: serde::Serialize>(c: &mut TcpStream, msg: &T) {
    c.write_all(&frame::encode(msg, MAX).unwrap()).unwrap();
}

/// Whether the server closed the connection (EOF, or a reset).
fn closed(c: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// A client that completed the handshake.
fn authenticated(s: &Served) -> TcpStream {
    let mut c = connect(s);
    let hello: ServerHello = read_frame(&mut c);
    assert!(hello.secret_required);
    let proof = Secret::new(SECRET).unwrap().prove(&hello.nonce);
    send(
        &mut c,
        &ClientHello {
            magic: MAGIC,
            version: VERSION,
            proof: Some(proof),
        },
    );
    assert_eq!(read_frame::<Welcome>(&mut c), Welcome::Accepted);
    c
}

fn good_client(s: &Served) -> RemoteStore {
    RemoteStore::new(
        s.addr.clone(),
        RemoteOptions {
            secret: Secret::new(SECRET),
            ..RemoteOptions::default()
        },
    )
}

async fn store_one(c: &RemoteStore, n: u64) -> u64 {
    let state: StateMap = [(
        StateKey::new("m.room.create", "").unwrap(),
        EventId::parse(format!("$c{n}")).unwrap(),
    )]
    .into_iter()
    .collect();
    c.store_state_groups(vec![GroupWrite {
        id: None,
        room_id: RoomId::parse("!r:x").unwrap(),
        event_id: EventId::parse(format!("$g{n}")).unwrap(),
        content: GroupContent::Full(state),
    }])
    .await
    .unwrap()[0]
}

fn refused(c: &RemoteStore, rt: &tokio::runtime::Runtime) -> u64 {
    let stats: serde_json::Value = serde_json::from_str(&rt.block_on(c.stats()).unwrap()).unwrap();
    stats["service"]["refused"].as_u64().unwrap()
}

#[test]
fn hostile_clients_are_refused_and_others_served() {
    let s = serve();
    let rt = mxstate_tests::runtime();
    let good = good_client(&s);
    let g1 = rt.block_on(store_one(&good, 1));
    let mut expected_refusals = 0;

    // Garbage instead of a hello.
    let mut c = connect(&s);
    let _: ServerHello = read_frame(&mut c);
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(closed(&mut c), "garbage: connection kept");
    expected_refusals += 1;

    // A wrong protocol version: told why, then closed.
    let mut c = connect(&s);
    let hello: ServerHello = read_frame(&mut c);
    let proof = Secret::new(SECRET).unwrap().prove(&hello.nonce);
    send(
        &mut c,
        &ClientHello {
            magic: MAGIC,
            version: VERSION + 1,
            proof: Some(proof),
        },
    );
    match read_frame::<Welcome>(&mut c) {
        Welcome::Refused(why) => assert!(why.contains("version"), "{why}"),
        w => panic!("a wrong version was {w:?}"),
    }
    assert!(closed(&mut c));
    expected_refusals += 1;

    // A wrong secret, and no secret.
    for proof in [
        Some(Secret::new(b"not the secret at all").unwrap().prove(&hello.nonce)),
        None,
    ] {
        let mut c = connect(&s);
        let _: ServerHello = read_frame(&mut c);
        send(
            &mut c,
            &ClientHello {
                magic: MAGIC,
                version: VERSION,
                proof,
            },
        );
        match read_frame::<Welcome>(&mut c) {
            Welcome::Refused(why) => assert!(why.contains("secret"), "{why}"),
            w => panic!("a bad proof was {w:?}"),
        }
        assert!(closed(&mut c));
        expected_refusals += 1;
    }
    // A replayed proof (from another connection's nonce) is refused too.
    let mut c = connect(&s);
    let _: ServerHello = read_frame(&mut c);
    send(
        &mut c,
        &ClientHello {
            magic: MAGIC,
            version: VERSION,
            proof: Some(proof),
        },
    );
    assert!(matches!(read_frame::<Welcome>(&mut c), Welcome::Refused(_)));
    expected_refusals += 1;

    // A client that never finishes its handshake.
    let mut c = connect(&s);
    let _: ServerHello = read_frame(&mut c);
    c.write_all(&[0, 0]).unwrap();
    assert!(closed(&mut c), "a stalled handshake was not cut");
    expected_refusals += 1;

    assert_eq!(refused(&good, &rt), expected_refusals);

    // After the handshake: a frame over the limit, garbage, a truncated
    // frame, an unknown request. Each closes that connection only.
    let mut c = authenticated(&s);
    c.write_all(&(MAX + 1).to_be_bytes()).unwrap();
    assert!(closed(&mut c), "an oversized frame was read");

    let mut c = authenticated(&s);
    c.write_all(&[0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap();
    assert!(closed(&mut c), "garbage was taken for a request");

    let mut c = authenticated(&s);
    c.write_all(&[0, 0, 1, 0, 1, 2, 3]).unwrap();
    assert!(closed(&mut c), "a truncated frame was waited for forever");

    let mut c = authenticated(&s);
    // Request { id: 7, op: variant 250 }: bincode varint encoding.
    c.write_all(&[0, 0, 0, 3, 7, 250, 0]).unwrap();
    assert!(closed(&mut c), "an unknown request was served");

    // The good client was served throughout, and its write is whole.
    let g2 = rt.block_on(store_one(&good, 2));
    let states = rt
        .block_on(good.state_for_groups(vec![g1, g2], StateFilter::all()))
        .unwrap();
    assert_eq!(states.len(), 2);
    assert_eq!(states[&g2].len(), 1);
}

#[test]
fn a_client_without_the_secret_gets_a_clear_error() {
    let s = serve();
    let rt = mxstate_tests::runtime();
    let c = RemoteStore::new(s.addr.clone(), RemoteOptions::default());
    let e = rt.block_on(c.room_groups(RoomId::parse("!r:x").unwrap())).unwrap_err();
    assert!(e.to_string().contains("requires a shared secret"), "{e}");
}

#[test]
fn binding_beyond_loopback_needs_a_secret() {
    let rt = mxstate_tests::runtime();
    let dir = tempfile::tempdir().unwrap();
    let engine = std::sync::Arc::new(mxstate_rocks::open(&dir.path().join("db"), EngineOptions::default()).unwrap());
    let opts = mxstate_serve::ServeOptions::new(Addr::Tcp("0.0.0.0:0".into()));
    let e = rt
        .block_on(mxstate_serve::Server::bind(engine, opts))
        .err()
        .expect("0.0.0.0 without a secret");
    assert!(e.to_string().contains("--secret-file"), "{e}");
}

#[test]
fn an_answer_over_the_frame_limit_is_an_error_not_silence() {
    let s = serve();
    let rt = mxstate_tests::runtime();
    let c = good_client(&s);
    // One group of 40,000 members: its full state is over the 1 MiB limit.
    let state: StateMap = (0..40_000)
        .map(|n| {
            (
                StateKey::new("m.room.member", format!("@member-with-a-long-name-{n}:example.org")).unwrap(),
                EventId::parse(format!("$e{n}")).unwrap(),
            )
        })
        .collect();
    // The request itself is over the service's limit: refused by the
    // client (it learned the limit at the handshake), the connection kept.
    let big = rt.block_on(c.store_state_group(
        EventId::parse("$big").unwrap(),
        RoomId::parse("!r:x").unwrap(),
        None,
        None,
        state.clone(),
    ));
    let e = big.unwrap_err();
    assert_eq!(e.kind(), mxstate_api::ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("at most 1048576 bytes"), "{e}");
    // Stored in pieces (deltas of 5,000), then read whole.
    let mut entries = state.into_iter();
    let first: StateMap = entries.by_ref().take(5000).collect();
    let mut g = rt
        .block_on(c.store_state_group(
            EventId::parse("$p0").unwrap(),
            RoomId::parse("!r:x").unwrap(),
            None,
            None,
            first,
        ))
        .unwrap();
    for i in 1..8 {
        let delta: mxstate_api::StateDelta = entries.by_ref().take(5000).map(|(k, e)| (k, Some(e))).collect();
        g = rt
            .block_on(c.store_state_group(
                EventId::parse(format!("$p{i}")).unwrap(),
                RoomId::parse("!r:x").unwrap(),
                Some(g),
                Some(delta),
                StateMap::default(),
            ))
            .unwrap();
    }
    let e = rt
        .block_on(c.state_for_groups(vec![g], StateFilter::all()))
        .unwrap_err();
    assert_eq!(e.kind(), mxstate_api::ErrorKind::Capacity, "{e}");
    assert!(e.to_string().contains("fewer groups"), "{e}");
    // The connection still serves.
    let one = rt
        .block_on(c.state_for_groups(
            vec![g],
            StateFilter::from_types([("m.room.member", Some("@member-with-a-long-name-7:example.org"))]),
        ))
        .unwrap();
    assert_eq!(one[&g].len(), 1);
}
