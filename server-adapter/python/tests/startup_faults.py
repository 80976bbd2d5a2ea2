"""Synapse on mxstate refuses to start, with a message that names the
problem, when its state database cannot be used. Each case starts the
launcher on a fresh SQLite homeserver and expects it to exit non-zero.

Usage: python startup_faults.py WORKDIR SET_FORMAT_VERSION_BIN
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

work = Path(sys.argv[1])
set_format_version = sys.argv[2]
py = sys.executable


def config(name: str, mxstate: object, extra: dict | None = None) -> Path:
    d = work / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    cfg = {
        "server_name": "faults.test",
        "pid_file": str(d / "pid"),
        "listeners": [{"port": 18200, "bind_addresses": ["127.0.0.1"], "type": "http", "resources": [{"names": ["client"]}]}],
        "database": {"name": "sqlite3", "args": {"database": str(d / "homeserver.db")}},
        "media_store_path": str(d / "media"),
        "signing_key_path": str(d / "signing.key"),
        "report_stats": False,
        "trusted_key_servers": [],
        "log_config": None,
    }
    cfg.pop("log_config")
    if mxstate is not None:
        cfg["mxstate"] = mxstate
    cfg.update(extra or {})
    path = d / "homeserver.yaml"
    path.write_text(yaml.safe_dump(cfg))
    subprocess.run([py, "-m", "synapse.app.homeserver", "-c", str(path), "--generate-keys"], check=True,
                   capture_output=True)
    return path


def refused(name: str, path: Path, expect: str, env: dict | None = None) -> None:
    out = subprocess.run([py, "-m", "mxstate_synapse", "-c", str(path)], capture_output=True, timeout=120,
                         env={**os.environ, **(env or {})})
    text = (out.stdout + out.stderr).decode(errors="replace")
    if out.returncode == 0 or expect not in text:
        print(text[-3000:])
        raise SystemExit(f"{name}: expected a refusal mentioning {expect!r} (exit {out.returncode})")
    print(f"[startup-faults] {name}: refused, exit {out.returncode}: ...{expect}...")


# No `mxstate:` block.
refused("no mxstate block", config("no-block", None), "has no `mxstate:` block")
# A path that cannot be created (its parent is a file).
blocker = work / "a-file"
blocker.write_text("not a directory")
refused("unusable path", config("bad-path", {"path": str(blocker / "db")}), "cannot open the state database")
# A directory that holds something else.
other = work / "not-mxstate"
other.mkdir(exist_ok=True)
(other / "something").write_text("x")
refused("not a database", config("other-dir", {"path": str(other)}), "not an mxstate database")
# A database of a format version this build does not read.
future = work / "future-db"
shutil.rmtree(future, ignore_errors=True)
subprocess.run([py, "-c", f"import mxstate_synapse as m; m.Store({str(future)!r}).close()"], check=True)
subprocess.run([set_format_version, str(future), "99"], check=True)
refused("future format", config("future", {"path": str(future)}), "format version 99 is not supported")
# Settings of the wrong type.
refused("bad setting", config("bad-setting", {"path": str(work / "db"), "cache_mb": "lots"}), "cache_mb")
# A worker process.
worker = {"worker_app": "synapse.app.generic_worker", "worker_name": "worker1",
          "instance_map": {"main": {"host": "127.0.0.1", "port": 18201}}}
refused("worker", config("worker", {"path": str(work / "db")}, worker), "belongs to one process")
# A service that is not running, a malformed address, both kinds at once.
refused("service down", config("service-down", {"server": f"unix:{work / 'nobody.sock'}"}),
        "cannot reach the state service")
refused("bad address", config("bad-address", {"server": str(work / "x.sock")}), "must be `unix:PATH`")
refused("path and server", config("both", {"path": str(work / "db"), "server": "unix:/x"}), "not both")
# The database in use by another process (RocksDB's lock).
held = work / "held-db"
shutil.rmtree(held, ignore_errors=True)
holder = subprocess.Popen([py, "-c", f"import mxstate_synapse as m, time; s = m.Store({str(held)!r}); "
                                      "print('open', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
assert holder.stdout is not None and holder.stdout.readline().strip() == b"open"
try:
    refused("held by another process", config("held", {"path": str(held)}), "cannot open the state database")
finally:
    holder.kill()
print("[startup-faults] all cases refused with a clear message")

# A Synapse outside the tested releases.
check = subprocess.run([py, "-c", "from mxstate_synapse.install import check_synapse_version; "
                                  "check_synapse_version('1.164.0')"], capture_output=True)
if check.returncode == 0 or b"supports Synapse 1.163.x" not in check.stderr:
    raise SystemExit("version check: Synapse 1.164.0 was not refused")
print("[startup-faults] Synapse 1.164.0: refused")
