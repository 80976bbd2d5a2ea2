"""Auth chains from mxstate: Synapse's `event_auth` rows kept in mxstate's
auth index, and the questions state resolution and joins ask answered
from it.

- **Persisting.** `PersistEventsStore._persist_event_auth_chain_txn`
  writes the `event_auth` rows of a batch; the same auth events go to
  mxstate in that database transaction, before it commits (on the
  database thread). A failure there fails the transaction, so a committed
  row is always in mxstate; a crash after mxstate's write and before the
  commit leaves mxstate with auth events of events Synapse does not have,
  which are facts of the (signed) events and harmless. The batch's stream
  orderings widen mxstate's mark.
- **Catching up.** At startup, a process that persists events reads the
  `event_auth` rows of events outside mxstate's mark (all of them the
  first time) and adds them, with the mark, before the homeserver runs:
  events persisted while the integration was off are never missed.
- **Answering.** `get_auth_chain_ids` and
  `get_auth_chain_difference_extended` (hence `get_auth_chain_difference`)
  are answered by mxstate once it has a mark; before that (a process that
  does not persist, started before any persister caught up), Synapse's own
  SQL answers.

Identifiers: Synapse's tests use bare event ids ("a") and room ids
("@ROOM:local"); the extension's auth methods keep any string that is not
a Matrix id under a reserved form and give it back as it came (Rust side,
`convert::auth_event`): ids pass through here untouched.
"""

import logging
import os
from typing import TYPE_CHECKING, Any, Collection, Iterable, Optional

from synapse.logging.context import defer_to_thread
from synapse.storage.database import LoggingTransaction, make_conn
from synapse.storage.databases.main.event_federation import EventFederationWorkerStore, StateDifference
from synapse.storage.databases.main.events import PersistEventsStore
from synapse.storage.engines import create_engine

from .opening import TEST_LOG_ENV

if TYPE_CHECKING:
    from synapse.server import HomeServer

logger = logging.getLogger(__name__)

_PATCHED = "_mxstate_auth_patched"
#: Rows read per catch-up query.
CATCH_UP_BATCH = 10_000


def _mx(hs: "HomeServer") -> Any:
    """The mxstate store of the homeserver, or None when its state store is
    Synapse's own."""
    from .state_store import MxStateGroupDataStore

    state = hs.get_datastores().state
    return state._mx if isinstance(state, MxStateGroupDataStore) else None


def _rooms_of(events: Iterable[Any]) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """`event_auth`'s rows of `events` (state events only, as Synapse
    writes them), grouped by room, in mxstate's ids."""
    rooms: dict[str, list[tuple[str, list[str]]]] = {}
    for e in events:
        if e.is_state():
            rooms.setdefault(e.room_id, []).append((e.event_id, list(e.auth_event_ids())))
    return list(rooms.items())


def _mark_of(events: Iterable[Any]) -> Optional[tuple[int, int]]:
    orderings = []
    for e in events:
        meta = getattr(e, "internal_metadata", None)
        so = getattr(meta, "stream_ordering", None) if meta is not None else None
        if so is None:
            return None
        orderings.append(so)
    return (min(orderings), max(orderings)) if orderings else None


def _persist_event_auth_chain_txn(
    self: PersistEventsStore, txn: LoggingTransaction, events: list[Any], new_event_links: Any
) -> None:
    _ORIGINAL["persist"](self, txn, events, new_event_links)
    mx = _mx(self.hs)
    if mx is None:
        return
    rooms = _rooms_of(events)
    if rooms:
        # Only a process that caught up may widen the mark.
        mark = _mark_of(events) if getattr(self.hs, "_mxstate_auth_caught_up", False) else None
        mx.add_auth_events(rooms, mark)


def catch_up(mx: Any, conn: Any) -> int:
    """Adds the `event_auth` rows of events outside mxstate's mark, in
    batches, each widening the mark by what it covers. Returns the rows
    added."""
    mark = mx.auth_mark()
    if mark is None:
        # The first time: everything, upwards from the lowest ordering.
        cur = conn.cursor(txn_name="mxstate-auth-range")
        cur.execute("SELECT MIN(stream_ordering) FROM events")
        (lo,) = cur.fetchone()
        cur.close()
        # An empty range at the lowest ordering: the reads below widen it.
        mark = (0, 0) if lo is None else (lo, lo - 1)
        mx.add_auth_events([], mark)
    lo, hi = mark
    return _read(mx, conn, hi, ascending=True) + _read(mx, conn, lo, ascending=False)


def _read(mx: Any, conn: Any, start: int, ascending: bool) -> int:
    """Reads the rows of events past `start` (above it, or below it), a
    batch of whole events at a time, adding each batch with the part of
    the mark it completes."""
    where, order = ("e.stream_ordering > ?", "ASC") if ascending else ("e.stream_ordering < ?", "DESC")
    sql = (
        "SELECT e.stream_ordering, a.room_id, a.event_id, a.auth_id FROM event_auth AS a"
        " INNER JOIN events AS e USING (event_id)"
        f" WHERE {where} ORDER BY e.stream_ordering {order} LIMIT {CATCH_UP_BATCH}"
    )
    added = 0
    edge = start
    while True:
        cur = conn.cursor(txn_name="mxstate-auth-catch-up")
        cur.execute(sql, (edge,))
        rows = cur.fetchall()
        cur.close()
        if not rows:
            return added
        full = len(rows) == CATCH_UP_BATCH
        if full:
            # The last event's rows may go on past the batch: whole events
            # only (the next batch starts with it).
            last = rows[-1][0]
            rows = [r for r in rows if r[0] != last]
            if not rows:
                raise RuntimeError(f"mxstate: the event at stream ordering {last} has {CATCH_UP_BATCH} auth events")
        rooms: dict[str, dict[str, list[str]]] = {}
        for _so, room_id, event_id, auth_id in rows:
            rooms.setdefault(room_id, {}).setdefault(event_id, []).append(auth_id)
        reached = rows[-1][0]
        # Every event strictly between `edge` and `reached`, and `reached`,
        # is in: the mark grows by that range.
        mark = (edge + 1, reached) if ascending else (reached, edge - 1)
        mx.add_auth_events([(r, list(evs.items())) for r, evs in rooms.items()], mark)
        added += len(rows)
        edge = reached
        if not full:
            return added


async def get_auth_chain_ids(
    self: EventFederationWorkerStore, room_id: str, event_ids: Collection[str], include_given: bool = False
) -> set[str]:
    mx = _mx(self.hs)
    if mx is None or not _ready(self.hs, mx):
        return await _ORIGINAL["chain"](self, room_id, event_ids, include_given)
    # A new set, made by the extension.
    return await defer_to_thread(self.hs.get_reactor(), mx.auth_chain, room_id, list(event_ids), include_given)


async def get_auth_chain_difference_extended(
    self: EventFederationWorkerStore,
    room_id: str,
    state_sets: list[set[str]],
    conflicted_set: Optional[set[str]],
    additional_backwards_reachable_conflicted_events: Optional[set[str]],
) -> StateDifference:
    mx = _mx(self.hs)
    if mx is None or not _ready(self.hs, mx):
        return await _ORIGINAL["difference"](
            self, room_id, state_sets, conflicted_set, additional_backwards_reachable_conflicted_events
        )
    sets = [list(s) for s in state_sets]
    conflicted = None if conflicted_set is None else list(conflicted_set)
    additional = list(additional_backwards_reachable_conflicted_events or ())
    difference, subgraph = await defer_to_thread(
        self.hs.get_reactor(), mx.auth_chain_difference, room_id, sets, conflicted, additional
    )
    # New sets, made by the extension.
    return StateDifference(auth_difference=difference, conflicted_subgraph=subgraph)


def _ready(hs: "HomeServer", mx: Any) -> bool:
    """Whether mxstate answers: once a mark exists (remembered). In test
    mode, an answer left to Synapse's SQL is logged."""
    if getattr(hs, "_mxstate_auth_ready", False):
        return True
    if mx.auth_mark() is not None:
        hs._mxstate_auth_ready = True  # type: ignore[attr-defined]
        return True
    log = os.environ.get(TEST_LOG_ENV)
    if log:
        with open(log, "a") as f:
            f.write(f"auth-sql {os.getpid()}\n")
    return False


def after_databases(databases: Any, hs: "HomeServer") -> None:
    """Runs after Synapse built its stores: a process that persists events
    catches mxstate's auth index up with `event_auth` before it runs."""
    from .state_store import MxStateGroupDataStore

    if not isinstance(databases.state, MxStateGroupDataStore) or databases.persist_events is None:
        return
    mx = databases.state._mx
    for database_config in hs.config.database.databases:
        if "main" not in database_config.databases:
            continue
        engine = create_engine(database_config.config)
        with make_conn(
            db_config=database_config, engine=engine, default_txn_name="mxstate-auth", server_name=hs.hostname
        ) as conn:
            added = catch_up(mx, conn)
            conn.commit()
        if added:
            logger.info("mxstate: caught the auth index up with %d event_auth rows", added)
    hs._mxstate_auth_caught_up = True  # type: ignore[attr-defined]
    hs._mxstate_auth_ready = True  # type: ignore[attr-defined]


_ORIGINAL: dict[str, Any] = {}


def patch_auth_chains() -> None:
    """Installs the above into Synapse's classes (idempotent)."""
    if getattr(EventFederationWorkerStore, _PATCHED, False):
        return
    _ORIGINAL["persist"] = PersistEventsStore._persist_event_auth_chain_txn
    _ORIGINAL["chain"] = EventFederationWorkerStore.get_auth_chain_ids
    _ORIGINAL["difference"] = EventFederationWorkerStore.get_auth_chain_difference_extended
    PersistEventsStore._persist_event_auth_chain_txn = _persist_event_auth_chain_txn  # type: ignore[method-assign]
    EventFederationWorkerStore.get_auth_chain_ids = get_auth_chain_ids  # type: ignore[method-assign]
    EventFederationWorkerStore.get_auth_chain_difference_extended = get_auth_chain_difference_extended  # type: ignore[method-assign]
    setattr(EventFederationWorkerStore, _PATCHED, True)
