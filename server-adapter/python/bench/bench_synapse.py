"""Synapse's own StateStorageController, stock (state tables on PostgreSQL)
against Synapse on mxstate, on the same history: a Synapse-shaped dump with
one room of --members members (`mxstate synth`), loaded into the stock
homeserver's tables with psql and into mxstate with `mxstate import`.

Reads go through `StateStorageController.get_state_ids_for_group` with
Synapse's two state caches cleared before each read, so every read reaches
the storage and builds the Python dict. Writes are
`StateStorageController.store_state_group`, one member join on the
previous group. Both homeservers live in this process on Synapse's test
reactor (database work runs synchronously, as in Synapse's tests).

Run from a directory holding Synapse's `tests/` (run-synapse-tests bench),
with SYNAPSE_POSTGRES* set to a PostgreSQL server.

Usage: bench_synapse.py --mxstate BIN --work DIR [--members N] [--samples N] [--stores N]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

sys.path.insert(0, os.getcwd())

import tests.unittest  # noqa: E402,F401  (creates the PostgreSQL template database)
from twisted.internet.defer import ensureDeferred  # noqa: E402
from twisted.python.failure import Failure  # noqa: E402

from synapse.api.constants import EventTypes  # noqa: E402
from synapse.types.state import StateFilter  # noqa: E402
from tests.server import get_clock, setup_test_homeserver  # noqa: E402
from tests.unittest import make_homeserver_config_obj  # noqa: E402
from tests.utils import POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, default_config  # noqa: E402


def drive(reactor: Any, aw: Awaitable) -> Any:
    d = ensureDeferred(aw)  # type: ignore[arg-type]
    out: list = []
    d.addBoth(out.append)
    for _ in range(10000):
        if out:
            break
        reactor.advance(0)
    if not out:
        raise RuntimeError("deferred did not complete")
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]


def psql(db: str, *args: str, stdin: Any = None) -> str:
    cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", POSTGRES_HOST, "-p", str(POSTGRES_PORT), "-U",
           POSTGRES_USER, "-d", db, *args]
    return subprocess.run(cmd, stdin=stdin, capture_output=True, check=True, text=True).stdout


def make_hs(name: str, mxstate_path: Any, cleanups: list) -> tuple[Any, Any]:
    reactor, clock = get_clock()
    config = default_config(server_name=name)
    if mxstate_path is not None:
        config["mxstate"] = {"path": str(mxstate_path), "sync_writes": True}
    hs = setup_test_homeserver(cleanup_func=cleanups.append, server_name=name,
                               config=make_homeserver_config_obj(config), reactor=reactor, clock=clock)
    return hs, reactor


def timed(reactor: Any, n: int, f: Callable[[int], Awaitable]) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        drive(reactor, f(i))
        out.append(time.perf_counter() - t)
    return out


def fmt(s: float) -> str:
    return f"{s * 1e3:.2f} ms" if s >= 1e-3 else f"{s * 1e6:.1f} µs"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mxstate", required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--members", type=int, default=10000)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--stores", type=int, default=300)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    a.work.mkdir(parents=True)
    dump = a.work / "synth.sql"
    subprocess.run([a.mxstate, "synth", "--out", str(dump), "--rooms", "1", "--members", str(a.members), "--seed", "1"],
                   check=True, capture_output=True)

    cleanups: list = []
    stock, stock_reactor = make_hs("stock.bench", None, cleanups)
    stock_db = stock.config.database.databases[0].config["args"]["dbname"]
    t = time.time()
    with open(dump) as f:
        # The homeserver created the tables and indexes: load the rows.
        data = "".join(_copy_blocks(f))
    loaded = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", POSTGRES_HOST, "-p",
                             str(POSTGRES_PORT), "-U", POSTGRES_USER, "-d", stock_db],
                            input=data, text=True, capture_output=True)
    if loaded.returncode != 0:
        raise SystemExit(f"loading the dump into PostgreSQL: {loaded.stderr[-2000:]}")
    psql(stock_db, "-c", "SELECT setval('state_group_id_seq', (SELECT max(id) FROM state_groups))")
    psql(stock_db, "-c", "VACUUM ANALYZE")
    load_pg = time.time() - t

    import mxstate_synapse

    mxstate_synapse.install()
    mx_path = a.work / "mxstate-db"
    t = time.time()
    subprocess.run([a.mxstate, "import", "--db", str(mx_path), str(dump), "--quiet"], check=True)
    load_mx = time.time() - t
    mx, mx_reactor = make_hs("mx.bench", mx_path, cleanups)

    groups = [int(x) for x in psql(stock_db, "-At", "-c", "SELECT id FROM state_groups ORDER BY id").split()]
    room = psql(stock_db, "-At", "-c", "SELECT room_id FROM state_groups LIMIT 1").strip()
    step = max(1, len(groups) // a.samples)
    sample = groups[::step][: a.samples]
    if groups[-1] not in sample:
        sample.append(groups[-1])

    shapes = {
        "full state": StateFilter.all(),
        "one key (m.room.power_levels)": StateFilter.from_types([(EventTypes.PowerLevels, "")]),
        "all but members": StateFilter(types=_immutable({EventTypes.Member: frozenset()}), include_others=True),
    }
    rows = []
    floors = []
    entries_full = None
    for shape, flt in shapes.items():
        results = {}
        for side, hs, reactor in (("stock", stock, stock_reactor), ("mxstate", mx, mx_reactor)):
            ctl = hs.get_storage_controllers().state
            store = hs.get_datastores().state

            async def read(i: int, ctl: Any = ctl, store: Any = store, flt: Any = flt) -> Any:
                store._state_group_cache.invalidate_all()
                store._state_group_members_cache.invalidate_all()
                return await ctl.get_state_ids_for_group(sample[i], flt)

            async def cached(i: int, ctl: Any = ctl, flt: Any = flt) -> Any:
                return await ctl.get_state_ids_for_group(sample[i], flt)

            # Equal answers first (untimed), then the timed reads; then the
            # same reads answered from Synapse's caches: Synapse's own work.
            answers = [drive(reactor, read(i)) for i in range(len(sample))]
            results[side] = (answers, timed(reactor, len(sample), read), timed(reactor, len(sample), cached))
        if results["stock"][0] != results["mxstate"][0]:
            raise SystemExit(f"{shape}: the answers differ")
        if shape == "full state":
            entries_full = statistics.median(len(x) for x in results["stock"][0])
        s, m = statistics.median(results["stock"][1]), statistics.median(results["mxstate"][1])
        rows.append((f"read: {shape}, median", s, m))
        floor = min(statistics.median(results["stock"][2]), statistics.median(results["mxstate"][2]))
        floors.append((shape, floor, s - floor, m - floor))

    # Stores: one member join on the previous group, `stores` times, each side.
    store_times = {}
    for side, hs, reactor in (("stock", stock, stock_reactor), ("mxstate", mx, mx_reactor)):
        ctl = hs.get_storage_controllers().state
        prev = [groups[-1]]

        async def store(i: int, ctl: Any = ctl, prev: list = prev) -> None:
            key = (EventTypes.Member, f"@bench{i}:bench")
            prev[0] = await ctl.store_state_group(f"$bench{i}", room, prev[0], {key: f"$bench{i}"}, None)

        store_times[side] = timed(reactor, a.stores, store)
    for stat in ("median", "mean"):
        f = statistics.median if stat == "median" else statistics.mean
        rows.append((f"store_state_group, {stat}", f(store_times["stock"]), f(store_times["mxstate"])))

    pg_bytes = int(psql(stock_db, "-At", "-c", "SELECT sum(pg_total_relation_size(t)) FROM unnest(ARRAY["
                        "'state_groups','state_group_edges','state_groups_state']) AS t").strip())
    mx_store = mx.get_datastores().state._mx
    mx_store.compact()
    mx_bytes = mx_store.stats()["bytes_on_disk"]

    print(f"\n### Through Synapse's StateStorageController: {a.members:,} members\n")
    print(f"history: `mxstate synth --rooms 1 --members {a.members} --seed 1`: {len(groups):,} groups; "
          f"full state median {entries_full:,.0f} entries over {len(sample)} sampled groups; "
          f"loaded into PostgreSQL in {load_pg:.1f} s (psql + VACUUM ANALYZE), into mxstate in {load_mx:.1f} s\n")
    print("| measure | stock Synapse (PostgreSQL) | Synapse on mxstate | ratio |")
    print("|---|---:|---:|---:|")
    for name, s, m in rows:
        print(f"| {name} | {fmt(s)} | {fmt(m)} | {s / m:.1f}x |")
    print(f"| disk: the state tables (heap, indexes, TOAST) vs the mxstate database | {pg_bytes / 2**20:.1f} MiB "
          f"| {mx_bytes / 2**20:.2f} MiB | {pg_bytes / mx_bytes:.1f}x |")
    print("\nThe same reads answered from Synapse's caches take Synapse's own work (the filter, the "
          "cache lookups, the dict copies), which both sides pay; without it, the storage alone:\n")
    print("| read | Synapse's own work (cached read) | storage, stock | storage, mxstate | ratio |")
    print("|---|---:|---:|---:|---:|")
    for shape, floor, s_only, m_only in floors:
        ratio = f"{s_only / m_only:.1f}x" if m_only > 0 else "n/a"
        print(f"| {shape} | {fmt(floor)} | {fmt(s_only)} | {fmt(max(m_only, 0.0))} | {ratio} |")
    for c in cleanups:
        c()


def _copy_blocks(lines: Any) -> Any:
    """Only the COPY blocks of a dump (the tables and indexes exist)."""
    inside = False
    for line in lines:
        if line.startswith("COPY "):
            inside = True
        if inside:
            yield line
        if line.startswith("\\."):
            inside = False


def _immutable(d: dict) -> Any:
    from immutabledict import immutabledict

    return immutabledict(d)


if __name__ == "__main__":
    main()
