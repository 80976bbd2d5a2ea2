"""A Synapse worker deployment on one `mxstate serve`: the main process,
two generic workers and an event persister, replicating through Redis, as
docs/synapse.md describes it. Requests are routed as a reverse proxy
would: the admin API to the main process, event creation and the
workload's own reads to `worker1`, the compared reads to `worker2` (or
any process given), and the persister persists every event."""

import subprocess
import time
from pathlib import Path
from typing import Any, Optional

import yaml

from harness import Homeserver, Postgres, kill9_process, log, stop_process


def wait_for(what: str, ready: Any, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready within {timeout} s")


class Service:
    """`mxstate serve` on a database directory, listening on a unix socket."""

    def __init__(self, binary: str, db: Path, sock: Path, log_path: Path) -> None:
        self.binary = binary
        self.db = db
        self.sock = sock
        self.log_path = log_path
        self.proc: Optional[subprocess.Popen] = None

    @property
    def address(self) -> str:
        return f"unix:{self.sock}"

    def start(self) -> None:
        out = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "serve", "--db", str(self.db), "--listen", self.address],
                                     stdout=out, stderr=subprocess.STDOUT)

        def answers() -> bool:
            if not self.sock.exists():
                return False
            r = subprocess.run([self.binary, "stats", "--server", self.address], capture_output=True)
            return r.returncode == 0

        wait_for("mxstate serve", answers, self.proc)

    def stop(self) -> None:
        stop_process(self)

    def kill9(self) -> None:
        kill9_process(self)


class Redis:
    """A private redis-server on a unix socket, nothing saved."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "redis.sock"
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", str(self.sock), "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", str(self.root)],
            stdout=open(self.root / "redis.log", "ab"), stderr=subprocess.STDOUT)
        wait_for("redis-server", self.sock.exists, self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None


class Worker(Homeserver):
    """A generic worker: the main process's homeserver.yaml plus its own worker.yaml."""

    def __init__(self, name: str, root: Path, port: int, main: Homeserver, replication_port: Optional[int]) -> None:
        super().__init__(name, root, port, main.pg, main.db, None, main.python, service=main.service)
        self.main = main
        self.replication_port = replication_port

    def write_config(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        resources = [{"names": ["client"], "compress": False}]
        listeners: list[dict] = [{"type": "http", "port": self.port, "bind_addresses": ["127.0.0.1"],
                                  "resources": resources}]
        if self.replication_port is not None:
            listeners.append({"type": "http", "port": self.replication_port, "bind_addresses": ["127.0.0.1"],
                              "resources": [{"names": ["replication"]}]})
        log_config = yaml.safe_load((self.main.dir / "log.yaml").read_text())
        log_config["handlers"]["file"]["filename"] = str(self.dir / "homeserver.log")
        (self.dir / "log.yaml").write_text(yaml.safe_dump(log_config))
        worker = {"worker_app": "synapse.app.generic_worker", "worker_name": self.name,
                  "worker_listeners": listeners, "worker_log_config": str(self.dir / "log.yaml")}
        path = self.dir / "worker.yaml"
        path.write_text(yaml.safe_dump(worker))
        return path

    def command(self) -> list[str]:
        return [self.python, "-m", "mxstate_synapse.worker", "-c", str(self.main.dir / "homeserver.yaml"),
                "-c", str(self.dir / "worker.yaml")]


class Deployment:
    """Main, worker1, worker2 and persister1 on one service, behind a router."""

    def __init__(self, root: Path, base_port: int, pg: Postgres, db: str, service: Service, redis: Redis,
                 python: str) -> None:
        self.name = "workers"
        self.root = root
        self.service = service
        self.redis = redis
        p = base_port
        extra = {
            "instance_map": {"main": {"host": "127.0.0.1", "port": p + 1},
                             "persister1": {"host": "127.0.0.1", "port": p + 7}},
            "stream_writers": {"events": ["persister1"]},
            "redis": {"enabled": True, "path": str(redis.sock)},
        }
        self.main = Homeserver("workers-main", root, p, pg, db, None, python, service=service.address, extra=extra)
        self.main.extra_listeners.append((p + 1, ["replication"]))
        self.worker1 = Worker("worker1", root, p + 2, self.main, None)
        self.worker2 = Worker("worker2", root, p + 4, self.main, None)
        self.persister = Worker("persister1", root, p + 6, self.main, p + 7)
        self.processes = [self.main, self.persister, self.worker1, self.worker2]
        # The compared reads go here (the workload's own reads follow its writes).
        self.readers: Homeserver = self.worker2

    def url(self, method: str, path: str) -> str:
        if path.startswith("/_synapse/admin/"):
            return self.main.url(method, path)
        return self.worker1.url(method, path)

    def reads_on(self, hs: Homeserver) -> "ReadsOn":
        return ReadsOn(self, hs)

    def start(self) -> None:
        self.redis.start()
        self.service.start()
        self.main.start()
        for w in (self.persister, self.worker1, self.worker2):
            w.start()
        log("workers: main, persister1, worker1 and worker2 up on " + self.service.address)

    def stop(self) -> None:
        for hs in reversed(self.processes):
            hs.stop()
        self.service.stop()
        self.redis.stop()


class ReadsOn:
    """The deployment with every request but the admin API sent to one process."""

    def __init__(self, d: Deployment, hs: Homeserver) -> None:
        self.d = d
        self.hs = hs
        self.name = f"workers/{hs.name}"

    def url(self, method: str, path: str) -> str:
        if path.startswith("/_synapse/admin/"):
            return self.d.main.url(method, path)
        return self.hs.url(method, path)
