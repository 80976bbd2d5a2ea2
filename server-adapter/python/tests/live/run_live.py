"""Live tests of Synapse on mxstate, against stock Synapse as the oracle.

1. The same workload (users, public and private rooms, joins, leaves,
   kicks, bans, invites, name/topic/power-level changes, messages, a room
   grown to --members members with churn, purge history, delete room) runs
   on stock Synapse and on Synapse on mxstate; every answer of /state,
   /state/{type}/{key}, /members (now and ?at= checkpoints), /context and
   the state and timeline of /sync must be equal.
2. Synapse on mxstate restarts on the same database: the same answers.
3. Synapse on mxstate is killed (SIGKILL) in the middle of a burst of
   writes and restarted: every event the API acknowledged still has its
   state (/context answers with the room's state).
4. Migration: the stock server's PostgreSQL database is imported with
   `mxstate import --postgres`, Synapse restarts on mxstate: the same
   answers as before; more activity; exported back into the SQL tables and
   restarted stock: the same answers as on mxstate.
5. Workers: the same workload, at the same time, on a worker deployment
   (main, two generic workers, an event persister, Redis) sharing one
   `mxstate serve`: the answers read from worker2 and from the main
   process equal stock Synapse's. `mxstate stats --server` inspects the
   live service; the service is killed (SIGKILL) and restarted under the
   running Synapse processes, which reconnect by themselves: a write
   during the outage fails, nothing hangs, and afterwards events are
   created and read with their state again.

Usage: python run_live.py --work DIR --mxstate BIN [--members N] [--only workers]
"""

import argparse
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from harness import Client, Homeserver, Postgres, log, python_of_venv, run
from workers import Deployment, Redis, Service
from workload import Record, Workload, answers, compare, q


def run_together(targets: list[Any], members: int) -> list[Record]:
    """The workload on every target at once (one thread each)."""
    results: dict[str, Any] = {}

    def go(hs: Any) -> None:
        try:
            results[hs.name] = Workload(Client(hs), members).run_all()
        except BaseException as e:  # reported below
            results[hs.name] = e

    threads = [threading.Thread(target=go, args=(hs,)) for hs in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, r in results.items():
        if isinstance(r, BaseException):
            raise RuntimeError(f"workload on {name} failed") from r
    return [results[hs.name] for hs in targets]


def compare_eventually(expected: dict[str, Any], read: Any, what: str, timeout: float = 60) -> None:
    """`compare`, allowing a worker the time replication takes to catch up."""
    deadline = time.time() + timeout
    while True:
        got = read()
        if got == expected or time.time() > deadline:
            compare(expected, got, what)
            return
        time.sleep(1)


def workers_test(d: Deployment, record: Record, expected: dict[str, Any], mxstate: str) -> None:
    """Answers from two processes of the deployment; the service inspected
    live, killed and restarted under it."""
    compare_eventually(expected, lambda: answers(Client(d.reads_on(d.worker2)), record),
                       "workers: stock vs the deployment, read from worker2")
    compare_eventually(expected, lambda: answers(Client(d.reads_on(d.main)), record),
                       "workers: stock vs the deployment, read from the main process")
    stats = json.loads(run([mxstate, "stats", "--server", d.service.address, "--json"]).stdout)
    groups = stats["database"]["groups"]
    if groups < record.peak_members:
        raise SystemExit(f"workers: the service holds {groups} groups, fewer than the joins made")
    log(f"workers: `mxstate stats --server` on the live service: {groups} groups, "
        f"{stats['service']['requests']} requests served")

    # The service dies under the running deployment.
    c = Client(d)
    w = Workload(c, 0)
    w.r = record
    d.service.kill9()
    t = time.time()
    try:
        w.state("private", record.admin_token, "org.mxstate.test", "outage", {"down": True})
        raise SystemExit("workers: a state event was accepted while the state service was down")
    except RuntimeError as e:
        log(f"workers: with the service down, a write failed in {time.time() - t:.1f} s: {str(e)[:160]}")
    d.service.start()
    deadline = time.time() + 60
    while True:
        try:
            w.state("private", record.admin_token, "org.mxstate.test", "after", {"back": True})
            break
        except RuntimeError as e:
            if time.time() > deadline:
                raise SystemExit(f"workers: no write succeeded within 60 s of the service's restart: {e}")
            time.sleep(0.5)
    log(f"workers: writes succeed again {time.time() - t:.1f} s after the kill, without restarting Synapse")
    w.send("private", -1, "after-restart", "after the service restart")
    room, event = record.messages["after-restart"]
    path = f"/_matrix/client/v3/rooms/{q(record.rooms[room])}/context/{q(event)}"
    reader = Client(d.reads_on(d.worker2))
    deadline = time.time() + 60
    while True:
        code, body = reader.call("GET", path, record.admin_token, params={"limit": "0"}, ok=(200, 404))
        keys = {(e["type"], e.get("state_key")) for e in body.get("state", [])} if code == 200 else set()
        if ("org.mxstate.test", "after") in keys:
            break
        if time.time() > deadline:
            raise SystemExit(f"workers: worker2 does not see the new state after the restart ({code})")
        time.sleep(0.5)
    log("workers: worker2 reads the events created after the restart with their state")


def crash_test(mx: Homeserver, record: Record, members: int) -> None:
    """SIGKILL during writes; after a restart every acknowledged event has its state."""
    c = Client(mx)
    w = Workload(c, members)
    w.r = record
    w.create_room("crash", "public_chat")
    for user in range(5):
        w.join("crash", user)
    acked_before = len(record.acknowledged)
    stop = threading.Event()
    errors: list[BaseException] = []

    def burst() -> None:
        k = 0
        while not stop.is_set():
            try:
                if k % 3 == 0:
                    w.join("crash", members + (k // 3) % 40)
                elif k % 3 == 1:
                    w.send("crash", k % 5, f"crash-{k}", f"crash {k}")
                else:
                    w.state("crash", record.admin_token, "org.mxstate.test", str(k), {"k": k})
                k += 1
            except BaseException as e:  # the kill ends the burst
                errors.append(e)
                return

    t = threading.Thread(target=burst)
    t.start()
    time.sleep(4)
    mx.kill9()
    stop.set()
    t.join()
    acked = record.acknowledged[acked_before:]
    log(f"crash: killed Synapse on mxstate after {len(acked)} acknowledged events")
    if not acked:
        raise SystemExit(f"crash: no event was acknowledged before the kill ({errors[:1]})")
    mx.start()
    c = Client(mx)
    for room_id, event_id in acked:
        path = f"/_matrix/client/v3/rooms/{room_id}/context/{event_id}"
        body = c.call("GET", path, record.admin_token, params={"limit": "0"})
        types = {e["type"] for e in body.get("state", [])}
        if "m.room.create" not in types:
            raise SystemExit(f"crash: acknowledged event {event_id} lost its state: {sorted(types)}")
    log(f"crash: all {len(acked)} acknowledged events have their state after the restart")


def migration_test(pg: Postgres, stock: Homeserver, stock_record: Record, work: Path, mxstate: str,
                   members: int) -> None:
    """Stock Synapse's database -> mxstate -> back to the SQL tables."""
    before = answers(Client(stock), stock_record)
    stock.stop()
    db = work / "migrated-mxstate"
    shutil.rmtree(db, ignore_errors=True)
    t = time.time()
    out = __import__("harness").run([mxstate, "import", "--db", str(db), "--postgres", pg.url(stock.db)])
    log(f"migration: imported the stock state in {time.time() - t:.1f} s\n" + out.stdout.decode())
    migrated = Homeserver(stock.name, stock.dir.parent, stock.port, pg, stock.db, db, stock.python)
    migrated.start()
    compare(before, answers(Client(migrated), stock_record), "migration: stock -> mxstate")
    w = Workload(Client(migrated), members)
    w.r = stock_record
    w.churn(20)
    on_mxstate = answers(Client(migrated), stock_record)
    migrated.stop()
    sql = work / "state-export.sql"
    __import__("harness").run([mxstate, "export", "--db", str(db), "--out", str(sql), "--without-event-mappings"])
    pg.psql(stock.db, "-c", "TRUNCATE state_groups, state_group_edges, state_groups_state")
    pg.psql(stock.db, "-f", str(sql))
    stock.start()
    compare(on_mxstate, answers(Client(stock), stock_record), "migration: mxstate -> stock")
    stock.stop()


def report_sizes(pg: Postgres, stock: Homeserver, mx: Homeserver) -> None:
    """Disk of the state after the workload: Synapse's tables against mxstate's database."""
    import mxstate_synapse

    tables = "'state_groups','state_group_edges','state_groups_state'"
    pg.psql(stock.db, "-c", "VACUUM ANALYZE")
    pg_bytes = int(pg.psql(stock.db, "-At", "-c",
                           f"SELECT sum(pg_total_relation_size(t)) FROM unnest(ARRAY[{tables}]) AS t").strip())
    assert mx.mxstate is not None
    store = mxstate_synapse.Store(str(mx.mxstate), create=False)
    store.compact()
    stats = store.stats()
    store.close()
    log(f"disk after the workload: Synapse's state tables {pg_bytes / 1024:.0f} KiB, the mxstate database "
        f"{stats['bytes_on_disk'] / 1024:.0f} KiB ({pg_bytes / stats['bytes_on_disk']:.1f}x smaller; "
        f"{stats['groups']} groups)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--mxstate", required=True, help="the mxstate CLI binary")
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--only", choices=["workers"], help="only stock Synapse and the worker deployment")
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    a.work.mkdir(parents=True)
    pg = Postgres(a.work / "pg")
    pg.start()
    py = python_of_venv()
    stock = Homeserver("stock", a.work, 18101, pg, "synapse_stock", None, py)
    mx = Homeserver("mxstate", a.work, 18102, pg, "synapse_mx", a.work / "mxstate-db", py)
    service = Service(a.mxstate, a.work / "served-db", a.work / "mxstate.sock", a.work / "serve.log")
    workers = Deployment(a.work, 18110, pg, "synapse_workers", service, Redis(a.work / "redis"), py)
    single = [stock] if a.only else [stock, mx]
    try:
        for hs in single:
            pg.create_db(hs.db)
            hs.start()
        pg.create_db(workers.main.db)
        workers.start()
        log(f"{', '.join(hs.name for hs in single)} and the worker deployment up; "
            f"workload with a {a.members}-member room")
        records = run_together(single + [workers], a.members)
        stock_record, workers_record = records[0], records[-1]
        if workers_record.peak_members < a.members:
            raise SystemExit(f"the public room reached only {workers_record.peak_members} members")
        expected = answers(Client(stock), stock_record)
        workers_test(workers, workers_record, expected, a.mxstate)
        workers.stop()
        if a.only:
            log("the worker tests passed")
            return
        mx_record = records[1]
        compare(expected, answers(Client(mx), mx_record), "live: stock vs mxstate")
        mx.stop()
        mx.start()
        compare(expected, answers(Client(mx), mx_record), "restart: stock vs mxstate after a restart")
        mx.stop()
        report_sizes(pg, stock, mx)
        mx.start()
        crash_test(mx, mx_record, a.members)
        mx.stop()
        migration_test(pg, stock, stock_record, a.work, a.mxstate, a.members)
        log("all live tests passed")
    finally:
        for hs in Homeserver.ALL:
            hs.stop()
        service.stop()
        workers.redis.stop()
        pg.stop()


if __name__ == "__main__":
    main()
