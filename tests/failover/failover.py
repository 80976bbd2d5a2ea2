"""Failover of mxstate on a replicated PostgreSQL, tested.

A three-node etcd, a three-node PostgreSQL cluster managed by Patroni
(synchronous mode: a commit waits for a standby), all on loopback ports,
and `mxstate serve` on a multi-host URL with
`target_session_attrs=read-write`. Under a running load of writes and
checked reads through the service, the primary's machine dies (Patroni and
PostgreSQL killed with SIGKILL): calls fail with errors, never hang; the
service resumes on the promoted standby by itself; every write it
acknowledged is there and every answer matches the model. Then a second
`mxstate serve` on the same database is refused while the first holds it,
and takes over when the first is killed.

Usage: python failover.py --work DIR --mxstate BIN   (the Python package
mxstate_synapse must be importable: it is the client)
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

import yaml

from mxstate_synapse import MxStateError, Store

PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1] if Path("/usr/lib/postgresql").exists() else None
ETCD = [(23790 + 2 * i, 23791 + 2 * i) for i in range(3)]  # (client, peer)
PG = [25441 + i for i in range(3)]
REST = [28008 + i for i in range(3)]
ROOM = "!failover:test"


def log(msg: str) -> None:
    print(f"[failover {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--"] + cmd if os.geteuid() == 0 else cmd


def wait(what: str, ready: Any, timeout: float) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            v = ready()
            if v is not None and v is not False:  # a node number may be 0
                return v
        except Exception:  # not ready yet
            pass
        time.sleep(0.25)
    raise SystemExit(f"{what}: not within {timeout} s")


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as r:
        return json.loads(r.read())


class Cluster:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: dict[str, subprocess.Popen] = {}

    def spawn(self, name: str, cmd: list[str]) -> None:
        out = open(self.work / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def start_etcd(self) -> None:
        initial = ",".join(f"e{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(ETCD))
        for i, (client, peer) in enumerate(ETCD):
            self.spawn(f"etcd{i}", [
                "etcd", "--name", f"e{i}", "--data-dir", str(self.work / f"etcd{i}"),
                "--listen-client-urls", f"http://127.0.0.1:{client}",
                "--advertise-client-urls", f"http://127.0.0.1:{client}",
                "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", "mxstate-failover"])
        wait("etcd", lambda: all(http_json(f"http://127.0.0.1:{c}/health")["health"] == "true" for c, _ in ETCD), 60)
        log("etcd: three members healthy")

    def patroni_config(self, i: int) -> Path:
        d = self.work / f"pg{i}"
        sock = self.work / f"sock{i}"
        sock.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(sock, "postgres", "postgres")
        cfg = {
            "scope": "mxstate-failover",
            "name": f"pg{i}",
            "restapi": {"listen": f"127.0.0.1:{REST[i]}", "connect_address": f"127.0.0.1:{REST[i]}"},
            "etcd3": {"hosts": [f"127.0.0.1:{c}" for c, _ in ETCD]},
            "bootstrap": {
                "dcs": {
                    "ttl": 10, "loop_wait": 1, "retry_timeout": 3, "maximum_lag_on_failover": 0,
                    "synchronous_mode": True,
                    "postgresql": {"use_pg_rewind": False, "parameters": {
                        "wal_level": "replica", "hot_standby": "on", "max_wal_senders": 10,
                        "max_replication_slots": 10, "wal_keep_size": "64MB"}},
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}],
                "pg_hba": ["host replication replicator 127.0.0.1/32 trust",
                           "host all all 127.0.0.1/32 trust", "local all all trust"],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{PG[i]}", "connect_address": f"127.0.0.1:{PG[i]}",
                "data_dir": str(d), "bin_dir": str(PG_BIN), "pgpass": str(self.work / f"pgpass{i}"),
                "authentication": {"replication": {"username": "replicator", "password": "rep"},
                                   "superuser": {"username": "postgres", "password": "pg"}},
                "parameters": {"unix_socket_directories": str(sock)},
            },
        }
        path = self.work / f"patroni{i}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    def start_patroni(self, i: int) -> None:
        self.spawn(f"patroni{i}", as_postgres(["patroni", str(self.patroni_config(i))]))

    def members(self) -> list[dict]:
        for port in REST:
            try:
                return http_json(f"http://127.0.0.1:{port}/cluster")["members"]
            except Exception:
                continue
        return []

    def leader(self) -> Optional[int]:
        for m in self.members():
            if m["role"] == "leader" and m["state"] == "running":
                return int(m["name"][2:])
        return None

    def has_sync_standby(self) -> bool:
        return any(m["role"] == "sync_standby" and m["state"] in ("running", "streaming") for m in self.members())

    def kill_machine(self, i: int) -> None:
        """Patroni and every PostgreSQL process of node i, SIGKILL."""
        p = self.procs.pop(f"patroni{i}")
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        subprocess.run(["pkill", "-9", "-f", f"postgres -D {self.work / f'pg{i}'}"], check=False)
        pid_file = self.work / f"pg{i}" / "postmaster.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass

    def stop(self) -> None:
        for name, p in list(self.procs.items()):
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=20)
            except Exception:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        subprocess.run(["pkill", "-9", "-f", str(self.work / "pg")], check=False)


class Load:
    """Writers extend a chain of groups; readers check acknowledged groups
    against the model. Records what the service acknowledged and every
    error, and the longest call."""

    def __init__(self, sock: str) -> None:
        self.store = Store.connect(sock, timeout_s=5.0)
        self.model: dict[int, dict] = {}
        self.acked: list[int] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.errors: list[tuple[float, str]] = []
        self.wrong: list[str] = []
        self.longest = 0.0
        self.writes = self.reads = 0
        self.last_ok_write = 0.0

    def call(self, f: Any, *args: Any) -> Any:
        t = time.time()
        try:
            return f(*args)
        except MxStateError as e:
            self.errors.append((t, str(e)[:200]))
            return None
        finally:
            self.longest = max(self.longest, time.time() - t)

    def writer(self) -> None:
        n = 0
        prev = None
        state: dict = {}
        while not self.stop.is_set():
            n += 1
            ev = f"$w{n}"
            key = ("m.room.member", f"@u{n % 500}:test")
            if prev is None:
                new_state = {("m.room.create", ""): "$create", key: ev}
                g = self.call(self.store.store_group, ROOM, ev, None, None, new_state)
            else:
                new_state = {**state, key: ev}
                g = self.call(self.store.store_group, ROOM, ev, prev, {key: ev}, None)
            if g is None:
                time.sleep(0.05)
                continue
            with self.lock:
                self.model[g] = new_state
                self.acked.append(g)
                self.writes += 1
                self.last_ok_write = time.time()
            prev, state = g, new_state

    def reader(self) -> None:
        rng = random.Random(7)
        while not self.stop.is_set():
            with self.lock:
                if not self.acked:
                    g = None
                else:
                    g = self.acked[rng.randrange(len(self.acked))]
                    want = self.model[g]
            if g is None:
                time.sleep(0.01)
                continue
            got = self.call(self.store.state_for_groups, [g])
            if got is None:
                time.sleep(0.05)
                continue
            self.reads += 1
            if got.get(g) != want:
                self.wrong.append(f"group {g}: {len(got.get(g, {}))} entries, model {len(want)}")

    def verify_all(self, store: Store) -> None:
        groups = list(self.model)
        for i in range(0, len(groups), 100):
            chunk = groups[i:i + 100]
            got = store.state_for_groups(chunk)
            for g in chunk:
                if got.get(g) != self.model[g]:
                    raise SystemExit(f"acknowledged group {g} reads {len(got.get(g, {}))} entries, "
                                     f"model {len(self.model[g])}")


def serve(mxstate: str, url: str, sock: Path, log_path: Path) -> subprocess.Popen:
    return subprocess.Popen([mxstate, "serve", "--db", url, "--listen", f"unix:{sock}"],
                            stdout=open(log_path, "ab"), stderr=subprocess.STDOUT)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--mxstate", required=True)
    a = ap.parse_args()
    if PG_BIN is None:
        raise SystemExit("PostgreSQL server binaries not found under /usr/lib/postgresql")
    shutil.rmtree(a.work, ignore_errors=True)
    a.work.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(a.work, "postgres", "postgres")
    c = Cluster(a.work)
    service: Optional[subprocess.Popen] = None
    second: Optional[subprocess.Popen] = None
    try:
        c.start_etcd()
        for i in range(3):
            c.start_patroni(i)
        leader = wait("a Patroni leader", c.leader, 120)
        wait("a synchronous standby", c.has_sync_standby, 120)
        log(f"patroni: pg{leader} leads, a synchronous standby streams")
        subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(PG[leader]), "-U", "postgres",
                        "-c", "CREATE DATABASE mx"], check=True, env={**os.environ, "PGPASSWORD": "pg"})
        hosts = ",".join(f"127.0.0.1:{p}" for p in PG)
        url = f"postgresql://postgres:pg@{hosts}/mx?target_session_attrs=read-write&connect_timeout=2"
        sock = a.work / "mxstate.sock"
        service = serve(a.mxstate, url, sock, a.work / "serve.log")
        wait("mxstate serve", sock.exists, 60)

        load = Load(f"unix:{sock}")
        threads = [threading.Thread(target=load.writer)] + [threading.Thread(target=load.reader) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(5)
        before = load.writes
        log(f"load: {before} groups acknowledged, {load.reads} reads checked; killing pg{leader}'s machine")
        killed_at = time.time()
        c.kill_machine(leader)
        def new_leader_up() -> Optional[int]:
            now = c.leader()
            return now if now is not None and now != leader else None

        try:
            new_leader = wait("a new leader", new_leader_up, 90)
        except SystemExit:
            log(f"members: {c.members()}")
            raise
        promoted = time.time() - killed_at
        wait("writes through the service again", lambda: load.last_ok_write > killed_at + promoted, 60)
        resumed = load.last_ok_write - killed_at
        time.sleep(5)
        load.stop.set()
        for t in threads:
            t.join()
        outage = [e for e in load.errors if e[0] >= killed_at]
        log(f"failover: pg{new_leader} promoted {promoted:.1f} s after the kill; writes through the service "
            f"resumed {resumed:.1f} s after it; {len(outage)} calls failed meanwhile (e.g. "
            f"{outage[0][1] if outage else '-'}); the longest call took {load.longest:.1f} s")
        if load.wrong:
            raise SystemExit(f"{len(load.wrong)} wrong answers, e.g. {load.wrong[:3]}")
        if load.longest > 15:
            raise SystemExit(f"a call took {load.longest:.1f} s: clients must get errors, not hangs")
        if load.writes <= before:
            raise SystemExit("no write was acknowledged after the failover")
        load.verify_all(load.store)
        log(f"all {len(load.model)} acknowledged groups read back exactly; {load.reads} reads checked, 0 wrong")

        # One owner: a second service is refused, then takes over.
        sock2 = a.work / "mxstate2.sock"
        refused = subprocess.run([a.mxstate, "serve", "--db", url, "--listen", f"unix:{sock2}"],
                                 capture_output=True, timeout=60)
        if refused.returncode == 0 or b"in use" not in refused.stderr:
            raise SystemExit(f"a second service was not refused: {refused.stderr.decode()[-300:]}")
        log("a second mxstate serve on the same database: refused while the first runs")
        service.send_signal(signal.SIGKILL)
        service.wait()
        service = None
        t = time.time()
        second = serve(a.mxstate, url, sock2, a.work / "serve2.log")
        wait("the second service", sock2.exists, 60)
        log(f"the first killed: the second took over in {time.time() - t:.1f} s")
        load.verify_all(Store.connect(f"unix:{sock2}", timeout_s=10.0))
        log("every acknowledged group read back through the second service")
        log("failover tests passed")
    finally:
        for p in (service, second):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
        c.stop()


if __name__ == "__main__":
    main()
