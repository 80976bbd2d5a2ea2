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

Usage: python run_live.py --work DIR --mxstate BIN [--members N]
"""

import argparse
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from harness import Client, Homeserver, Postgres, log, python_of_venv
from workload import Record, Workload, answers, compare


def run_both(stock: Homeserver, mx: Homeserver, members: int) -> tuple[Record, Record]:
    """The workload on both servers at once (one thread each)."""
    results: dict[str, Any] = {}

    def go(hs: Homeserver) -> None:
        try:
            results[hs.name] = Workload(Client(hs), members).run_all()
        except BaseException as e:  # reported below
            results[hs.name] = e

    threads = [threading.Thread(target=go, args=(hs,)) for hs in (stock, mx)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, r in results.items():
        if isinstance(r, BaseException):
            raise RuntimeError(f"workload on {name} failed") from r
    return results[stock.name], results[mx.name]


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
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    a.work.mkdir(parents=True)
    pg = Postgres(a.work / "pg")
    pg.start()
    py = python_of_venv()
    stock = Homeserver("stock", a.work, 18101, pg, "synapse_stock", None, py)
    mx = Homeserver("mxstate", a.work, 18102, pg, "synapse_mx", a.work / "mxstate-db", py)
    try:
        for hs in (stock, mx):
            pg.create_db(hs.db)
            hs.start()
        log(f"stock and mxstate Synapse up; workload with a {a.members}-member room")
        stock_record, mx_record = run_both(stock, mx, a.members)
        if mx_record.peak_members < a.members:
            raise SystemExit(f"the public room reached only {mx_record.peak_members} members")
        expected = answers(Client(stock), stock_record)
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
        pg.stop()


if __name__ == "__main__":
    main()
