"""The live workload, the same on every homeserver, and the answers the
homeservers are compared by.

Everything is deterministic and sequential per server, so the n-th event
of one run corresponds to the n-th event of another; event and room ids
differ between servers and are mapped through the names this module gives
them (rooms by role, messages by transaction id, sync tokens by
checkpoint)."""

import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Optional

from harness import Client, dumps, log


@dataclass
class Record:
    """What one server's run produced, by logical name."""

    admin: str = ""
    admin_token: str = ""
    users: list[tuple[str, str]] = field(default_factory=list)
    rooms: dict[str, str] = field(default_factory=dict)
    messages: dict[str, tuple[str, str]] = field(default_factory=dict)  # txn id -> (room, event id)
    tokens: dict[str, str] = field(default_factory=dict)  # checkpoint -> sync token
    acknowledged: list[tuple[str, str]] = field(default_factory=list)  # (room id, event id)
    peak_members: int = 0


def q(s: str) -> str:
    return urllib.parse.quote(s, safe="")


class Workload:
    def __init__(self, client: Client, members: int) -> None:
        self.c = client
        self.members = members
        self.r = Record()

    # -- primitives ---------------------------------------------------------

    def send(self, room: str, user: int, txn: str, body: str) -> None:
        """Sends a message as user `user` (-1: the admin)."""
        tok = self.r.admin_token if user < 0 else self.r.users[user][1]
        path = f"/_matrix/client/v3/rooms/{q(self.r.rooms[room])}/send/m.room.message/{q(txn)}"
        ev = self.c.call("PUT", path, tok, {"msgtype": "m.text", "body": body})["event_id"]
        self.r.messages[txn] = (room, ev)
        self.r.acknowledged.append((self.r.rooms[room], ev))

    def state(self, room: str, token: str, etype: str, key: str, content: dict) -> None:
        path = f"/_matrix/client/v3/rooms/{q(self.r.rooms[room])}/state/{q(etype)}/{q(key)}"
        ev = self.c.call("PUT", path, token, content)["event_id"]
        self.r.acknowledged.append((self.r.rooms[room], ev))

    def member_op(self, room: str, op: str, token: str, body: dict) -> None:
        self.c.call("POST", f"/_matrix/client/v3/rooms/{q(self.r.rooms[room])}/{op}", token, body)

    def join(self, room: str, user: int) -> None:
        self.c.call("POST", f"/_matrix/client/v3/join/{q(self.r.rooms[room])}", self.r.users[user][1], {})

    def leave(self, room: str, user: int) -> None:
        self.member_op(room, "leave", self.r.users[user][1], {})

    def checkpoint(self, name: str) -> None:
        f = dumps({"room": {"rooms": []}, "presence": {"types": []}, "account_data": {"types": []}})
        self.r.tokens[name] = self.c.call("GET", "/_matrix/client/v3/sync", self.r.admin_token,
                                          params={"filter": f, "timeout": "0"})["next_batch"]

    def create_room(self, name: str, preset: str) -> None:
        body = {"preset": preset, "name": f"room {name}", "topic": f"topic of {name}"}
        self.r.rooms[name] = self.c.call("POST", "/_matrix/client/v3/createRoom", self.r.admin_token, body)["room_id"]

    # -- the workload -------------------------------------------------------

    def setup(self) -> None:
        self.r.admin, self.r.admin_token = self.c.register("admin", admin=True)
        for i in range(self.members + 40):
            self.r.users.append(self.c.register(f"u{i:05}"))
        for name, preset in [("public", "public_chat"), ("private", "private_chat"),
                             ("history", "public_chat"), ("doomed", "public_chat")]:
            self.create_room(name, preset)

    def public_room(self) -> None:
        """Grows to `members` members with churn, messages and state changes."""
        n = self.members
        left: list[int] = []
        for i in range(n):
            self.join("public", i)
            if i % 10 == 9:
                self.send("public", i, f"pub-{i}", f"hello from {i}")
            if i % 97 == 96:
                self.state("public", self.r.admin_token, "m.room.topic", "", {"topic": f"topic at {i}"})
            if i % 250 == 249:
                levels = self.c.call("GET", f"/_matrix/client/v3/rooms/{q(self.r.rooms['public'])}/state/"
                                            "m.room.power_levels/", self.r.admin_token)
                levels.setdefault("users", {})[self.r.users[i][0]] = 50
                self.state("public", self.r.admin_token, "m.room.power_levels", "", levels)
            if i >= n // 3 and i % 7 == 0:
                victim = i - n // 4
                self.leave("public", victim)
                left.append(victim)
            if i == n // 2:
                self.checkpoint("public-half")
        for victim in left:
            self.join("public", victim)
        joined = self.c.call("GET", f"/_matrix/client/v3/rooms/{q(self.r.rooms['public'])}/joined_members",
                             self.r.admin_token)["joined"]
        self.r.peak_members = len(joined)
        self.checkpoint("public-peak")
        for j, victim in enumerate(left):
            if j % 3 == 0:
                self.leave("public", victim)
        self.state("public", self.r.admin_token, "m.room.name", "", {"name": "the public room"})
        self.checkpoint("public-end")

    def private_room(self) -> None:
        base = self.members
        admin = self.r.admin_token
        room = "private"
        for k in range(30):
            self.member_op(room, "invite", admin, {"user_id": self.r.users[base + k][0]})
        for k in range(25):
            self.join(room, base + k)
        for k in range(5):
            self.member_op(room, "kick", admin, {"user_id": self.r.users[base + k][0], "reason": "test kick"})
        for k in (5, 6, 29):
            self.member_op(room, "ban", admin, {"user_id": self.r.users[base + k][0], "reason": "test ban"})
        self.member_op(room, "unban", admin, {"user_id": self.r.users[base + 5][0]})
        self.member_op(room, "invite", admin, {"user_id": self.r.users[base + 5][0]})
        levels = self.c.call("GET", f"/_matrix/client/v3/rooms/{q(self.r.rooms[room])}/state/m.room.power_levels/",
                             admin)
        levels.setdefault("users", {})[self.r.users[base + 10][0]] = 50
        levels["state_default"] = 50
        self.state(room, admin, "m.room.power_levels", "", levels)
        self.state(room, self.r.users[base + 10][1], "m.room.topic", "", {"topic": "set by a moderator"})
        for k in range(10, 20):
            self.send(room, base + k, f"priv-{k}", f"private {k}")
        self.checkpoint("private-end")

    def history_room(self) -> None:
        """Messages and state, then the first half of its history purged."""
        room = "history"
        for k in range(40):
            self.join(room, k)
        for m in range(200):
            self.send(room, m % 40, f"hist-{m}", f"history {m}")
            if m % 50 == 25:
                self.state(room, self.r.admin_token, "m.room.topic", "", {"topic": f"history topic {m}"})
        purge_to = self.r.messages["hist-100"][1]
        rid = self.r.rooms[room]
        pid = self.c.call("POST", f"/_synapse/admin/v1/purge_history/{q(rid)}", self.r.admin_token,
                          {"purge_up_to_event_id": purge_to, "delete_local_events": True})["purge_id"]
        self.wait(f"/_synapse/admin/v1/purge_history_status/{q(pid)}", "status", "complete")

    def doomed_room(self) -> None:
        room = "doomed"
        for k in range(20):
            self.join(room, k)
        for m in range(30):
            self.send(room, m % 20, f"doom-{m}", f"doomed {m}")
        rid = self.r.rooms[room]
        did = self.c.call("DELETE", f"/_synapse/admin/v2/rooms/{q(rid)}", self.r.admin_token,
                          {"purge": True})["delete_id"]
        self.wait(f"/_synapse/admin/v2/rooms/delete_status/{q(did)}", "status", "complete")

    def wait(self, path: str, key: str, done: str, timeout: float = 300) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = self.c.call("GET", path, self.r.admin_token)
            status = r[key]
            if status == done:
                return
            if status == "failed":
                raise RuntimeError(f"{path}: failed: {r}")
            time.sleep(0.2)
        raise RuntimeError(f"{path}: not {done} after {timeout} s")

    def run_all(self) -> Record:
        t = time.time()
        self.setup()
        self.public_room()
        self.private_room()
        self.history_room()
        self.doomed_room()
        log(f"{self.c.hs.name}: workload done in {time.time() - t:.1f} s "
            f"({len(self.r.acknowledged)} messages and state events acknowledged; "
            f"the public room reached {self.r.peak_members} joined members)")
        return self.r

    def churn(self, rounds: int) -> None:
        """More activity on an existing history (after a migration)."""
        for k in range(rounds):
            user = self.members // 2 + k
            self.leave("public", user)
            self.send("public", -1, f"churn-{k}", f"churn {k}")
            self.join("public", user)
        self.checkpoint("churn-end")


def normalize(ev: dict) -> tuple:
    """What two servers share of an event: not its id, timestamps or unsigned."""
    return (ev.get("type"), ev.get("state_key"), ev.get("sender"), dumps(ev.get("content", {})))


def answers(c: Client, r: Record) -> dict[str, Any]:
    """Every answer the servers are compared by, keyed by a logical name."""
    out: dict[str, Any] = {}
    tok = r.admin_token

    def get(key: str, path: str, params: Optional[dict] = None, transform: Any = None) -> None:
        code, body = c.call("GET", path, tok, params=params, ok=(200, 403, 404))
        out[key] = (code, transform(body) if (transform and code == 200) else (body if code == 200 else None))

    for name, rid in sorted(r.rooms.items()):
        base = f"/_matrix/client/v3/rooms/{q(rid)}"
        get(f"{name}/state", base + "/state", transform=lambda b: sorted(normalize(e) for e in b))
        for etype, key in [("m.room.power_levels", ""), ("m.room.name", ""), ("m.room.topic", ""),
                           ("m.room.join_rules", ""), ("m.room.create", "")]:
            get(f"{name}/state/{etype}/{key}", base + f"/state/{q(etype)}/{q(key)}", transform=dumps)
        for i in [0, 1, 5, 6, 29, len(r.users) // 2, len(r.users) - 41]:
            uid = r.users[i][0]
            get(f"{name}/member/{uid}", base + f"/state/m.room.member/{q(uid)}", transform=dumps)
        get(f"{name}/members", base + "/members",
            transform=lambda b: sorted(normalize(e) for e in b["chunk"]))
        for cp, token in sorted(r.tokens.items()):
            get(f"{name}/members?at={cp}", base + "/members", params={"at": token},
                transform=lambda b: sorted(normalize(e) for e in b["chunk"]))
    for txn, (room, ev) in sorted(r.messages.items()):
        if not (txn.endswith("0") or txn.startswith("priv") or txn.startswith("churn")):
            continue
        rid = r.rooms[room]
        get(f"context/{txn}", f"/_matrix/client/v3/rooms/{q(rid)}/context/{q(ev)}", params={"limit": "2"},
            transform=lambda b: {"event": normalize(b["event"]),
                                 "state": sorted(normalize(e) for e in b.get("state", []))})
    f = dumps({"room": {"timeline": {"limit": 5}, "state": {"lazy_load_members": False}}})
    sync = c.call("GET", "/_matrix/client/v3/sync", tok, params={"filter": f, "timeout": "0"})
    names = {rid: name for name, rid in r.rooms.items()}
    for rid, room in sorted(sync.get("rooms", {}).get("join", {}).items()):
        out[f"sync/{names.get(rid, '?')}/state"] = sorted(normalize(e) for e in room["state"]["events"])
        out[f"sync/{names.get(rid, '?')}/timeline"] = [normalize(e) for e in room["timeline"]["events"]]
    return out



def compare(a: dict[str, Any], b: dict[str, Any], what: str) -> None:
    """Fails with the first differences when two sets of answers differ."""
    diffs = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if diffs:
        for k in diffs[:5]:
            log(f"{what}: {k}:\n    {str(a.get(k))[:800]}\n    {str(b.get(k))[:800]}")
        raise SystemExit(f"{what}: {len(diffs)} of {len(a)} answers differ")
    log(f"{what}: all {len(a)} answers equal")
