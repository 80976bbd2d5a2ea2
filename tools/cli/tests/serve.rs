//! `mxstate serve` as a separate process: two clients read and write the
//! same rooms; kill -9 of the service under load gives the clients errors
//! (not hangs), they reconnect by themselves after a restart, and every
//! write the service acknowledged is there; a client that goes away in the
//! middle of a big request leaves no partial group; SIGTERM stops the
//! service cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{ok, s};
use mxstate_api::{
    Error, EventId, GroupContent, GroupId, GroupWrite, RoomId, StateFilter, StateKey, StateMap, StateStore,
};
use mxstate_remote::{Addr, RemoteOptions, RemoteStore};

/// A running `mxstate serve`, killed if the test ends without stopping it
/// (a leftover service would hold the test's output open).
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(db: &Path, sock: &Path) -> Service {
    let child = Command::new(assert_cmd::cargo::cargo_bin("mxstate"))
        .args(["serve", "--db", s(db), "--listen", &format!("unix:{}", s(sock))])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let t = Instant::now();
    while std::os::unix::net::UnixStream::connect(sock).is_err() {
        assert!(t.elapsed() < Duration::from_secs(30), "the service did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Service(child)
}

fn client(sock: &Path) -> RemoteStore {
    RemoteStore::new(
        Addr::Unix(sock.to_owned()),
        RemoteOptions {
            request_timeout: Duration::from_secs(20),
            connections: 2,
            ..RemoteOptions::default()
        },
    )
}

fn room() -> RoomId {
    RoomId::parse("!shared:x").unwrap()
}

fn ev(n: u64) -> EventId {
    EventId::parse(format!("$e{n}")).unwrap()
}

fn member(n: u64) -> StateKey {
    StateKey::new("m.room.member", format!("@u{n}:x")).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Retries `f` until the service answers (it is restarting).
async fn until_up<T>(mut f: impl AsyncFnMut() -> Result<T, Error>) -> T {
    let t = Instant::now();
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) => {
                assert!(t.elapsed() < Duration::from_secs(30), "never came back: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[test]
fn two_clients_share_rooms_and_survive_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let (db, sock) = (dir.path().join("db"), dir.path().join("mx.sock"));
    let mut server = start(&db, &sock);
    let rt = runtime();
    let (a, b) = (client(&sock), client(&sock));
    // A root by one client, deltas on it by the other: both see both.
    let root_state: StateMap = [(StateKey::new("m.room.create", "").unwrap(), ev(0))]
        .into_iter()
        .collect();
    let root = rt
        .block_on(a.store_state_group(ev(0), room(), None, None, root_state))
        .unwrap();
    let g = rt
        .block_on(b.store_state_group(
            ev(1),
            room(),
            Some(root),
            Some([(member(1), Some(ev(1)))].into()),
            StateMap::default(),
        ))
        .unwrap();
    let seen = rt.block_on(a.state_for_groups(vec![g], StateFilter::all())).unwrap();
    assert_eq!(seen[&g].len(), 2);
    assert_eq!(rt.block_on(b.room_groups(room())).unwrap(), vec![root, g]);

    // Load: each client stores a chain of deltas; kill -9 meanwhile.
    let acked = rt.block_on(async {
        let mut tasks = Vec::new();
        for (w, c) in [a.clone(), b.clone()].into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                let mut acked: Vec<(GroupId, u64)> = Vec::new();
                let mut errors = Vec::new();
                let mut prev = g;
                for i in 0..100_000u64 {
                    let n = 1000 * (w as u64 + 1) * 1000 + i;
                    let delta = [(member(n), Some(ev(n)))].into();
                    match c
                        .store_state_group(ev(n), room(), Some(prev), Some(delta), StateMap::default())
                        .await
                    {
                        Ok(id) => {
                            acked.push((id, n));
                            prev = id;
                        }
                        Err(e) => {
                            errors.push(e);
                            break;
                        }
                    }
                }
                (acked, errors)
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.0.kill().unwrap();
        server.0.wait().unwrap();
        let mut all = Vec::new();
        for t in tasks {
            let (acked, errors) = t.await.unwrap();
            assert!(!acked.is_empty(), "no write went through before the kill");
            let e = errors.first().expect("the kill ended the load with an error");
            assert!(
                matches!(e, Error::Unavailable { .. }) && !e.to_string().contains("no answer within"),
                "an error, not a hang: {e}"
            );
            all.extend(acked);
        }
        // While the service is down: a clear error at once.
        let e = a.room_groups(room()).await.unwrap_err();
        assert!(matches!(e, Error::Unavailable { .. }), "{e}");
        all
    });

    // Restart: the same clients reconnect by themselves.
    let mut server = start(&db, &sock);
    let groups = rt.block_on(until_up(async || a.room_groups(room()).await));
    for chunk in acked.chunks(25) {
        let ids: Vec<GroupId> = chunk.iter().map(|&(id, _)| id).collect();
        let states = rt.block_on(until_up(async || {
            b.state_for_groups(ids.clone(), StateFilter::all()).await
        }));
        for &(id, n) in chunk {
            assert!(groups.contains(&id), "acknowledged group {id} lost");
            assert_eq!(
                states[&id].get(&member(n)),
                Some(&ev(n)),
                "group {id} lost its own change"
            );
        }
    }

    // A client that sends a big batch and vanishes: all of it or none.
    let batch_first = 50_000_000u64;
    let batch: Vec<GroupWrite> = (0..2000u64)
        .map(|i| GroupWrite {
            id: Some(batch_first + i),
            room_id: room(),
            event_id: ev(batch_first + i),
            content: GroupContent::Delta {
                prev: if i == 0 { g } else { batch_first + i - 1 },
                delta: [(member(i), Some(ev(batch_first + i)))].into(),
            },
        })
        .collect();
    let req = mxstate_remote::wire::Request {
        id: 1,
        op: mxstate_remote::wire::Op::StoreGroups(batch.iter().map(mxstate_remote::wire::group_out).collect()),
    };
    let bytes = mxstate_remote::frame::encode(&req, 64 << 20).unwrap();
    {
        let mut raw = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        let mut len = [0u8; 4];
        use std::io::Read;
        raw.read_exact(&mut len).unwrap();
        let mut hello = vec![0u8; u32::from_be_bytes(len) as usize];
        raw.read_exact(&mut hello).unwrap();
        let answer = mxstate_remote::auth::ClientHello {
            magic: mxstate_remote::auth::MAGIC,
            version: mxstate_remote::auth::VERSION,
            proof: None,
        };
        raw.write_all(&mxstate_remote::frame::encode(&answer, 1024).unwrap())
            .unwrap();
        raw.read_exact(&mut len).unwrap();
        let mut welcome = vec![0u8; u32::from_be_bytes(len) as usize];
        raw.read_exact(&mut welcome).unwrap();
        // Half of the request, then gone.
        raw.write_all(&bytes[..bytes.len() / 2]).unwrap();
    }
    let deltas = rt.block_on(a.state_group_delta(batch_first)).map(|d| d.is_some());
    assert!(
        matches!(deltas, Err(Error::UnknownGroup(_)) | Ok(false)),
        "a half-sent batch stored something: {deltas:?}"
    );
    let present = rt.block_on(a.room_groups(room())).unwrap();
    let of_batch = present.iter().filter(|&&id| id >= batch_first).count();
    assert!(
        of_batch == 0 || of_batch == 2000,
        "{of_batch} of 2000 groups of one batch stored"
    );

    // SIGTERM: a clean stop, and the database checks clean.
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = server.0.wait().unwrap();
    assert!(status.success(), "serve exited with {status:?} on SIGTERM");
    assert!(!sock.exists(), "the socket file was left behind");
    let out = ok(&["check", "--db", s(&db)]);
    assert!(out.contains("clean"), "{out}");
}

#[test]
fn state_stats_and_verify_read_through_a_running_service() {
    let dir = tempfile::tempdir().unwrap();
    let (db, sock) = (dir.path().join("db"), dir.path().join("mx.sock"));
    ok(&["import", "--quiet", "--db", s(&db), s(&common::fixture())]);
    let offline = ok(&["state", "--db", s(&db), "--group", "1142", "--json"]);
    let server = start(&db, &sock);
    let addr = format!("unix:{}", s(&sock));
    // The directory is the service's now: a clear refusal, not a lock error.
    let e = common::fails(&["state", "--db", s(&db), "--group", "1142"]);
    assert!(e.contains("in use by another process"), "{e}");
    let online = ok(&["state", "--server", &addr, "--group", "1142", "--json"]);
    assert_eq!(online, offline);
    let stats: serde_json::Value = serde_json::from_str(&ok(&["stats", "--server", &addr, "--json"])).unwrap();
    assert_eq!(stats["database"]["groups"], 1198);
    let v = ok(&["verify", "--server", &addr, s(&common::fixture())]);
    assert!(v.contains("checked 1198 of 1198 groups: 0 mismatches"), "{v}");
    drop(server);
    let e = common::fails(&["stats", "--server", &addr]);
    assert!(e.contains("unavailable"), "{e}");
}

#[test]
fn serve_refuses_unsafe_or_bad_settings() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let e = common::fails(&["serve", "--db", s(&db), "--listen", "tcp:0.0.0.0:0"]);
    assert!(e.contains("--secret-file"), "{e}");
    let short = dir.path().join("short");
    std::fs::write(&short, "too short\n").unwrap();
    let e = common::fails(&[
        "serve",
        "--db",
        s(&db),
        "--listen",
        "tcp:127.0.0.1:0",
        "--secret-file",
        s(&short),
    ]);
    assert!(e.contains("at least 16 bytes"), "{e}");
    let e = common::fails(&["serve", "--db", s(&db), "--listen", "http://x"]);
    assert!(e.contains("unix:PATH or tcp:HOST:PORT"), "{e}");
    let e = common::fails(&[
        "stats",
        "--server",
        "unix:/nonexistent.sock",
        "--secret-file",
        s(&short),
    ]);
    assert!(e.contains("at least 16 bytes"), "{e}");
}
