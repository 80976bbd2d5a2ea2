"""The extension's caller killed (SIGKILL) in the middle of batches of
writes: the database opens, every acknowledged batch is there, every batch
is there whole or not at all, and every group reads its exact state.

Usage: python crash_midbatch.py WORKDIR [KILLS]
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mxstate_synapse as mx

CHAIN = 200  # groups per store_chain call
ROOM = "!crash:test"


def child(path: str, journal: str) -> None:
    """Stores chains of one-entry deltas forever, journalling each acknowledged call."""
    store = mx.Store(path)
    groups = store.room_groups(ROOM)
    if not groups:
        root = store.store_group(ROOM, "$root", None, None, {("m.room.create", ""): "$root"})
        groups = [root]
    with open(journal, "a") as j:
        j.write(f"acked {len(groups)}\n")
        j.flush()
        os.fsync(j.fileno())
        n = len(groups)
        last = groups[-1]
        while True:
            entries = [(f"$e{n + i}", {("m.room.member", f"@u{n + i}:test"): f"$e{n + i}"}) for i in range(CHAIN)]
            ids = store.store_chain(ROOM, last, entries, 1)
            n += len(ids)
            last = ids[-1]
            j.write(f"acked {n}\n")
            j.flush()
            os.fsync(j.fileno())


def check(path: str, acked: int) -> int:
    store = mx.Store(path)
    groups = store.room_groups(ROOM)
    if len(groups) < acked:
        raise SystemExit(f"{len(groups)} groups after the kill, {acked} were acknowledged")
    if (len(groups) - 1) % CHAIN != 0:
        raise SystemExit(f"{len(groups)} groups: a batch of {CHAIN} was stored in part")
    # A spread of groups and the newest ones (reading every group of a long
    # chain in full would be quadratic).
    positions = sorted(set(range(0, len(groups), 4999)) | set(range(max(0, len(groups) - CHAIN - 2), len(groups))))
    for position in positions:
        g = groups[position]
        state = store.state_for_groups([g])[g]
        if len(state) != position + 1:
            raise SystemExit(f"group {g} (number {position}) has {len(state)} entries, want {position + 1}")
        if position and state.get(("m.room.member", f"@u{position}:test")) != f"$e{position}":
            raise SystemExit(f"group {g} lacks its own change")
    store.close()
    return len(groups)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    work = Path(sys.argv[1])
    kills = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    db, journal = str(work / "db"), str(work / "journal")
    rng = random.Random(7)
    for k in range(kills):
        p = subprocess.Popen([sys.executable, __file__, "--child", db, journal])
        time.sleep(rng.uniform(0.5, 2.0))
        p.send_signal(signal.SIGKILL)
        p.wait()
        acked = max((int(line.split()[1]) for line in open(journal) if line.startswith("acked")), default=0)
        total = check(db, acked)
        print(f"[crash-midbatch] kill {k + 1}: {acked} groups acknowledged, {total} stored, all whole and exact")
    print(f"[crash-midbatch] {kills} kills: every acknowledged batch kept, none stored in part")


if __name__ == "__main__":
    main()
