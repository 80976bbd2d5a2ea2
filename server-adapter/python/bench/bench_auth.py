"""Auth chain questions through Synapse's own stores: stock Synapse (its
chain cover index, `event_auth_chains` and `event_auth_chain_links`, on
PostgreSQL) against Synapse on mxstate (the auth index), on the same room.

The room is persisted on both homeservers through Synapse's own code, as
Synapse's tests build auth graphs (`tests/storage/test_event_federation.py`):
`events` rows, then `calculate_chain_cover_index_for_events_txn` and
`_persist_event_auth_chain_txn` (which the integration extends to write
mxstate), in transactions of 1,000 events. The room: a create event, power
levels (changed every 5,000 joins), join rules, --members joins (each
authorised by create, power levels, join rules and the user's previous
membership), then a tenth of the users leave and rejoin, and leaves for
the difference questions.

Questions (each call given fresh sets: Synapse's chain cover code
changes the sets it is given), timed on each side after checking that
both give the same answer: `get_auth_chain_ids` of the full state (what a join sends),
and `get_auth_chain_difference` of two full states differing by 1, 100
and 1,000 memberships. (State res v2.1's conflicted subgraph is not
asked: Synapse's chain cover code raised a KeyError for a conflicted
event of this room, `_get_auth_chain_difference_using_cover_index_txn`;
not investigated.)

Run from a directory holding Synapse's `tests/` (run-synapse-tests
bench-auth), with SYNAPSE_POSTGRES* set to a PostgreSQL server.

Usage: bench_auth.py --work DIR [--members N] [--repeats N]
"""

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.getcwd())

import tests.unittest  # noqa: E402,F401  (creates the PostgreSQL template database)

from synapse.synapse_rust.events import EventInternalMetadata  # noqa: E402

from bench_synapse import drive, fmt, make_hs, psql  # noqa: E402


class Event:
    """What the chain cover and `event_auth` code read of an event."""

    def __init__(self, event_id: str, room_id: str, etype: str, state_key: str, auth: list[str]) -> None:
        self.event_id = event_id
        self.room_id = room_id
        self.type = etype
        self.state_key = state_key
        self._auth = auth
        self.internal_metadata = EventInternalMetadata({})

    def auth_event_ids(self) -> list[str]:
        return self._auth

    def is_state(self) -> bool:
        return True


def build_room(room: str, members: int, leaves: int) -> tuple[list[Event], list[str], list[list[str]]]:
    """The room's events in order, its full state, and for each k in
    `leaves`' steps the leaves replacing k memberships."""
    n = 0

    def new() -> str:
        nonlocal n
        n += 1
        return f"$ev{n:09d}abcdefghijklmnopqrstuvwxyz"

    events: list[Event] = []
    create = new()
    events.append(Event(create, room, "m.room.create", "", []))
    alice = new()
    events.append(Event(alice, room, "m.room.member", "@alice:bench", [create]))
    pl = new()
    events.append(Event(pl, room, "m.room.power_levels", "", [create, alice]))
    jr = new()
    events.append(Event(jr, room, "m.room.join_rules", "", [create, pl, alice]))
    member: list[str] = []
    for u in range(members):
        if u % 5000 == 4999:
            p = new()
            events.append(Event(p, room, "m.room.power_levels", "", [create, pl, alice]))
            pl = p
        e = new()
        events.append(Event(e, room, "m.room.member", f"@u{u}:bench", [create, pl, jr]))
        member.append(e)
    for u in range(0, members, 10):
        leave = new()
        events.append(Event(leave, room, "m.room.member", f"@u{u}:bench", [create, pl, member[u]]))
        join = new()
        events.append(Event(join, room, "m.room.member", f"@u{u}:bench", [create, pl, jr, leave]))
        member[u] = join
    state = [create, alice, pl, jr, *member]
    replaced: list[list[str]] = []
    for u in range(leaves):
        i = (u * 7919) % members
        leave = new()
        events.append(Event(leave, room, "m.room.member", f"@u{i}:bench", [create, pl, member[i]]))
        replaced.append([member[i], leave])
    return events, state, replaced


def persist(hs: Any, reactor: Any, room: str, events: list[Event]) -> float:
    store = hs.get_datastores().main
    persist_events = hs.get_datastores().persist_events

    def store_room(txn: Any) -> None:
        store.db_pool.simple_insert_txn(
            txn, "rooms", {"room_id": room, "creator": "@alice:bench", "is_public": True, "room_version": "10",
                           "has_auth_chain_index": True})

    drive(reactor, store.db_pool.runInteraction("bench_store_room", store_room))
    t = time.perf_counter()
    for start in range(0, len(events), 1000):
        chunk = events[start:start + 1000]

        def insert(txn: Any, chunk: list = chunk, start: int = start) -> None:
            store.db_pool.simple_insert_many_txn(
                txn, table="events",
                keys=("event_id", "room_id", "depth", "topological_ordering", "type", "processed", "outlier",
                      "stream_ordering"),
                values=[(e.event_id, room, start + i + 1, start + i + 1, e.type, True, False, start + i + 1)
                        for i, e in enumerate(chunk)])
            links = persist_events.calculate_chain_cover_index_for_events_txn(txn, room, chunk)
            persist_events._persist_event_auth_chain_txn(txn, chunk, links)

        drive(reactor, store.db_pool.runInteraction("bench_persist", insert))
    return time.perf_counter() - t


def timed(reactor: Any, repeats: int, f: Any) -> tuple[Any, float]:
    answer = drive(reactor, f())
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        drive(reactor, f())
        times.append(time.perf_counter() - t)
    return answer, statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--members", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    a.work.mkdir(parents=True)
    room = "!bench:bench"
    steps = [k for k in (1, 100, 1000) if k <= a.members]
    events, state, replaced = build_room(room, a.members, max(steps))

    cleanups: list = []
    stock, stock_reactor = make_hs("stock.bench", None, cleanups)
    import mxstate_synapse

    mxstate_synapse.install()
    mx, mx_reactor = make_hs("mx.bench", a.work / "mxstate-db", cleanups)
    took = {}
    for side, hs, reactor in (("stock", stock, stock_reactor), ("mxstate", mx, mx_reactor)):
        took[side] = persist(hs, reactor, room, events)
    stock_db = stock.config.database.databases[0].config["args"]["dbname"]
    psql(stock_db, "-c", "VACUUM ANALYZE")

    full = set(state)
    questions: list[tuple[str, Any]] = [
        (f"auth chain of the full state ({len(full):,} events)",
         lambda s: s.get_auth_chain_ids(room, set(full))),
    ]
    for k in steps:
        other = set(full)
        for old, new in replaced[:k]:
            other.discard(old)
            other.add(new)
        questions.append((f"auth difference, states differing by {k:,} memberships",
                          lambda s, other=other: s.get_auth_chain_difference(room, [set(full), set(other)])))
    rows = []
    for name, ask in questions:
        answers = {}
        medians = {}
        for side, hs, reactor in (("stock", stock, stock_reactor), ("mxstate", mx, mx_reactor)):
            store = hs.get_datastores().main
            answers[side], medians[side] = timed(reactor, a.repeats, lambda store=store: ask(store))
        if answers["stock"] != answers["mxstate"]:
            st, mx_ = answers["stock"], answers["mxstate"]
            if not isinstance(st, (set, frozenset)):
                st, mx_ = st.auth_difference, mx_.auth_difference
            raise SystemExit(f"{name}: the answers differ: only stock {sorted(st - mx_)[:5]} "
                             f"({len(st - mx_)}), only mxstate {sorted(mx_ - st)[:5]} ({len(mx_ - st)})")
        size = answers["stock"]
        size = len(size) if isinstance(size, (set, frozenset)) else len(size.auth_difference)
        rows.append((name, size, medians["stock"], medians["mxstate"]))

    tables = ["event_auth", "event_auth_chains", "event_auth_chain_links"]
    pg_bytes = int(psql(stock_db, "-At", "-c", "SELECT sum(pg_total_relation_size(t)) FROM unnest(ARRAY[" +
                        ",".join(f"'{t}'" for t in tables) + "]) AS t").strip())
    mx_store = mx.get_datastores().state._mx
    mx_store.compact()
    mx_auth = mx_store.stats()["column_families"]["auth"]

    print(f"\n### Auth chains through Synapse's stores: {a.members:,} members, {len(events):,} events\n")
    print(f"persisted through Synapse's code in {took['stock']:.1f} s (stock: chain cover) and "
          f"{took['mxstate']:.1f} s (mxstate: chain cover and auth index); medians of {a.repeats}\n")
    print("| question | answer (events) | stock Synapse (chain cover, PostgreSQL) | Synapse on mxstate | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, size, s, m in rows:
        print(f"| {name} | {size:,} | {fmt(s)} | {fmt(m)} | {s / m:.1f}x |")
    print(f"| disk: `event_auth` + chain cover tables vs mxstate's `auth` family | | {pg_bytes / 2**20:.2f} MiB | "
          f"{mx_auth / 2**20:.2f} MiB | {pg_bytes / max(mx_auth, 1):.1f}x |")
    for c in cleanups:
        c()


if __name__ == "__main__":
    main()
