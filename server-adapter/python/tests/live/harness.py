"""Processes for the live tests: a private PostgreSQL cluster, Synapse
homeservers (stock, or on mxstate through the launcher), and a small
client of the client-server and admin APIs."""

import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import requests
import yaml

SERVER_NAME = "live.test"
SHARED_SECRET = "mxstate-live-secret"


def log(msg: str) -> None:
    print(f"[live {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Postgres:
    """A PostgreSQL cluster of our own, on a Unix socket only."""

    def __init__(self, root: Path, port: int = 55434) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        if not bins:
            raise SystemExit("PostgreSQL server binaries not found under /usr/lib/postgresql")
        self.bin = bins[-1]
        self.root = root
        self.sock = root / "sock"
        self.port = port
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def start(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self.sock.mkdir(parents=True)
        if self.as_user:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.sock, "postgres", "postgres")
        run(self.as_user + [str(self.bin / "initdb"), "-D", str(self.root / "data"), "-U", "postgres",
                            "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        opts = f"-k {self.sock} -p {self.port} -c listen_addresses='' -c fsync=off -c synchronous_commit=off"
        run(self.as_user + [str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-l",
                            str(self.root / "server.log"), "-w", "start", "-o", opts])

    def stop(self) -> None:
        subprocess.run(self.as_user + [str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def psql(self, db: str, *args: str, input: Optional[bytes] = None) -> str:
        out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.sock), "-p", str(self.port),
                              "-U", "postgres", "-d", db, *args], input=input, capture_output=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"psql {args}: {out.stderr.decode()}")
        return out.stdout.decode()

    def create_db(self, name: str) -> None:
        self.psql("postgres", "-c", f"CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE='C' LC_CTYPE='C' TEMPLATE template0")

    def url(self, db: str) -> str:
        """A libpq connection string (key=value) for `db` over the socket."""
        return f"host={self.sock} port={self.port} user=postgres dbname={db}"


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, **kw)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({out.returncode}): {out.stderr.decode(errors='replace')[-2000:]}")
    return out


class Homeserver:
    """One Synapse process with its own directory, PostgreSQL database and port."""

    #: Every homeserver made, so that a run can stop them all whatever happens.
    ALL: list["Homeserver"] = []

    def __init__(self, name: str, root: Path, port: int, pg: Postgres, db: str,
                 mxstate: Optional[Path], python: str, service: Optional[str] = None,
                 extra: Optional[dict] = None) -> None:
        """`mxstate`: a database directory this process opens; `service`: the
        address of an `mxstate serve` instead; neither: stock Synapse.
        `extra`: more settings (a worker deployment's main process)."""
        self.name = name
        self.service = service
        self.extra = extra or {}
        #: More HTTP listeners: (port, resource names).
        self.extra_listeners: list[tuple[int, list[str]]] = []
        self.dir = root / name
        self.port = port
        self.pg = pg
        self.db = db
        self.mxstate = mxstate
        self.python = python
        self.proc: Optional[subprocess.Popen] = None
        self.base = f"http://127.0.0.1:{port}"
        Homeserver.ALL.append(self)

    def write_config(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        limit = {"per_second": 100000, "burst_count": 100000}
        config: dict[str, Any] = {
            "server_name": SERVER_NAME,
            "pid_file": str(self.dir / "homeserver.pid"),
            "listeners": [{"port": self.port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                           "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}],
            "database": {"name": "psycopg2", "args": {"user": "postgres", "dbname": self.db, "host": str(self.pg.sock),
                                                     "port": self.pg.port, "cp_min": 1, "cp_max": 4}},
            "log_config": str(self.dir / "log.yaml"),
            "media_store_path": str(self.dir / "media"),
            "signing_key_path": str(self.dir / "signing.key"),
            "registration_shared_secret": SHARED_SECRET,
            "report_stats": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "bcrypt_rounds": 4,
            "enable_registration": False,
            "use_presence": False,
            "federation_domain_whitelist": [],
            "rc_message": limit, "rc_registration": limit, "rc_room_creation": limit,
            "rc_login": {"address": limit, "account": limit, "failed_attempts": limit},
            "rc_joins": {"local": limit, "remote": limit}, "rc_joins_per_room": limit,
            "rc_invites": {"per_room": limit, "per_user": limit, "per_issuer": limit},
            "rc_admin_redaction": limit, "rc_presence": {"per_user": limit},
            "max_event_delay_duration": None,
            # Answers are compared at several points: no cached /sync responses.
            "caches": {"sync_response_cache_duration": 0},
        }
        if self.mxstate is not None:
            config["mxstate"] = {"path": str(self.mxstate)}
        if self.service is not None:
            config["mxstate"] = {"server": self.service}
        config.update(self.extra)
        for port, names in self.extra_listeners:
            config["listeners"].append({"port": port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                                        "x_forwarded": False, "resources": [{"names": names, "compress": False}]})
        log_config = {
            "version": 1,
            "formatters": {"f": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
            "handlers": {"file": {"class": "logging.FileHandler", "filename": str(self.dir / "homeserver.log"),
                                  "formatter": "f"}},
            "root": {"level": "INFO", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }
        (self.dir / "log.yaml").write_text(yaml.safe_dump(log_config))
        path = self.dir / "homeserver.yaml"
        path.write_text(yaml.safe_dump(config))
        if not (self.dir / "signing.key").exists():
            run([self.python, "-m", "synapse.app.homeserver", "-c", str(path), "--generate-keys"])
        return path

    def url(self, method: str, path: str) -> str:
        """Where a request goes (a worker deployment routes by path)."""
        return self.base + path

    def command(self) -> list[str]:
        on_mxstate = self.mxstate is not None or self.service is not None
        module = "mxstate_synapse" if on_mxstate else "synapse.app.homeserver"
        return [self.python, "-m", module, "-c", str(self.dir / "homeserver.yaml")]

    def start(self, timeout: float = 120) -> None:
        self.write_config()
        out = open(self.dir / "stdout.log", "ab")
        self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: see {self.dir}/stdout.log")
            try:
                if requests.get(self.base + "/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not answer /health within {timeout} s")

    def stop(self) -> None:
        stop_process(self)

    def kill9(self) -> None:
        kill9_process(self)


def stop_process(owner: Any) -> None:
    """SIGTERM to `owner.proc` and a wait (SIGKILL after 60 s)."""
    if owner.proc is not None and owner.proc.poll() is None:
        owner.proc.send_signal(signal.SIGTERM)
        try:
            owner.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            owner.proc.kill()
            owner.proc.wait()
    owner.proc = None


def kill9_process(owner: Any) -> None:
    """SIGKILL to `owner.proc`, reaped."""
    assert owner.proc is not None
    owner.proc.send_signal(signal.SIGKILL)
    owner.proc.wait()
    owner.proc = None


class Client:
    """A Matrix client of one homeserver (plain HTTP through requests)."""

    def __init__(self, hs: Homeserver) -> None:
        self.hs = hs
        self.http = requests.Session()

    def call(self, method: str, path: str, token: Optional[str] = None, body: Any = None,
             params: Optional[dict] = None, ok: tuple[int, ...] = (200,)) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = self.http.request(method, self.hs.url(method, path), headers=headers, json=body, params=params, timeout=300)
        if r.status_code not in ok:
            raise RuntimeError(f"{self.hs.name}: {method} {path} -> {r.status_code} {r.text[:500]}")
        return (r.status_code, r.json()) if len(ok) > 1 else r.json()

    def register(self, localpart: str, admin: bool = False) -> tuple[str, str]:
        """Registers a user with the shared secret; returns (user_id, token)."""
        nonce = self.call("GET", "/_synapse/admin/v1/register")["nonce"]
        password = "pw-" + localpart
        parts = [nonce, localpart, password, "admin" if admin else "notadmin"]
        mac = hmac.new(SHARED_SECRET.encode(), b"\x00".join(p.encode() for p in parts), hashlib.sha1)
        body = {"nonce": nonce, "username": localpart, "password": password, "admin": admin,
                "mac": mac.hexdigest()}
        r = self.call("POST", "/_synapse/admin/v1/register", body=body)
        return r["user_id"], r["access_token"]


def dumps(x: Any) -> str:
    return json.dumps(x, sort_keys=True, separators=(",", ":"))


def python_of_venv() -> str:
    return sys.executable
