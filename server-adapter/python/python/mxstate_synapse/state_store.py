"""`StateGroupDataStore` on mxstate.

The subclass keeps everything of Synapse's store that is about meaning and
caching (the two `DictionaryCache`s, `_get_state_for_groups`, the cache
prefill of full groups, the background updates registered on the state
database) and replaces every method that touched the SQL state tables.
"""

import logging
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional, TypeVar

from synapse.api.constants import EventTypes
from synapse.events import EventBase
from synapse.events.snapshot import UnpersistedEventContext, UnpersistedEventContextBase
from synapse.logging.context import defer_to_thread
from synapse.storage.database import DatabasePool, LoggingDatabaseConnection, LoggingTransaction
from synapse.storage.databases.state.store import StateGroupDataStore, _GetStateGroupDelta
from synapse.types import StateMap
from synapse.types.state import StateFilter
from synapse.util.caches.descriptors import cached

from ._native import NotFoundError

if TYPE_CHECKING:
    from synapse.server import HomeServer

    from .deletion_store import MxStateDeletionDataStore

logger = logging.getLogger(__name__)

R = TypeVar("R")


def _filter_args(state_filter: Optional[StateFilter]) -> tuple[Optional[dict], bool]:
    """A Synapse `StateFilter` as the extension takes it: `(types, include_others)`."""
    if state_filter is None:
        return None, True
    return dict(state_filter.types), state_filter.include_others


class MxStateGroupDataStore(StateGroupDataStore):
    """State groups stored in mxstate instead of the SQL state tables."""

    def __init__(
        self,
        database: DatabasePool,
        db_conn: LoggingDatabaseConnection,
        hs: "HomeServer",
        state_deletion_store: "MxStateDeletionDataStore",
    ):
        super().__init__(database, db_conn, hs, state_deletion_store)
        self._mx = state_deletion_store._mx
        self._reactor = hs.get_reactor()

    async def _run(self, f: Callable[..., R], *args: Any) -> R:
        """Runs blocking mxstate work on the database thread pool."""
        return await defer_to_thread(self._reactor, f, *args)

    def _now(self) -> int:
        return self.hs.get_clock().time_msec()

    @cached(max_entries=10000, iterable=True)
    async def get_state_group_delta(self, state_group: int) -> _GetStateGroupDelta:
        found = await self._run(self._mx.group_delta, state_group)
        if found is None:
            return _GetStateGroupDelta(None, None)
        prev_group, delta = found
        return _GetStateGroupDelta(prev_group, delta)

    async def _get_state_groups_from_groups(
        self, groups: list[int], state_filter: StateFilter
    ) -> dict[int, StateMap[str]]:
        types, include_others = _filter_args(state_filter)
        return await self._run(self._mx.state_for_groups, list(groups), types, include_others)

    def _get_state_groups_from_groups_txn(
        self, txn: Optional[LoggingTransaction], groups: list[int], state_filter: Optional[StateFilter] = None
    ) -> Mapping[int, StateMap[str]]:
        types, include_others = _filter_args(state_filter)
        return self._mx.state_for_groups(list(groups), types, include_others)

    def _count_state_group_hops_txn(self, txn: Optional[LoggingTransaction], state_group: int) -> int:
        # mxstate bounds every read by its own chain policy; Synapse's cap of
        # 100 hops (falling back to a full copy) does not apply.
        return 0

    async def store_state_group(
        self,
        event_id: str,
        room_id: str,
        prev_group: Optional[int],
        delta_ids: Optional[StateMap[str]],
        current_state_ids: Optional[StateMap[str]],
    ) -> int:
        if prev_group is None and current_state_ids is None:
            raise Exception("current_state_ids and prev_group can't both be None")
        if prev_group is not None and delta_ids is None:
            raise Exception("delta_ids is None when prev_group is not None")

        if prev_group is not None:
            assert delta_ids is not None
            try:
                return await self._run(
                    self._mx.store_group, room_id, event_id, prev_group, dict(delta_ids), None, self._now()
                )
            except NotFoundError:
                raise Exception("Trying to persist state with unpersisted prev_group: %r" % (prev_group,))

        assert current_state_ids is not None
        seq_members = self._state_group_members_cache.sequence
        seq_others = self._state_group_cache.sequence
        state_group = await self._run(
            self._mx.store_group, room_id, event_id, None, None, dict(current_state_ids), self._now()
        )
        # Prefill the caches with the new group, as Synapse does (its state
        # cannot change: groups are immutable).
        self._state_group_members_cache.update(
            seq_members,
            key=state_group,
            value={k: v for k, v in current_state_ids.items() if k[0] == EventTypes.Member},
        )
        self._state_group_cache.update(
            seq_others,
            key=state_group,
            value={k: v for k, v in current_state_ids.items() if k[0] != EventTypes.Member},
        )
        return state_group

    async def store_state_deltas_for_batched(
        self,
        events_and_context: list[tuple[EventBase, UnpersistedEventContextBase]],
        room_id: str,
        prev_group: int,
    ) -> list[tuple[EventBase, UnpersistedEventContext]]:
        now = self._now()
        entries = [
            (event.event_id, {(event.type, event.state_key): event.event_id})
            for event, _ in events_and_context
            if event.is_state()
        ]
        try:
            if entries:
                state_groups = await self._run(self._mx.store_chain, room_id, prev_group, entries, now)
            else:
                if await self._run(self._mx.check_and_bump_deletion, [prev_group], now):
                    raise NotFoundError(f"state group {prev_group} does not exist")
                state_groups = []
        except NotFoundError:
            raise Exception("Trying to persist state with unpersisted prev_group: %r" % (prev_group,))

        sg_before = prev_group
        state_group_iter = iter(state_groups)
        for event, context in events_and_context:
            assert isinstance(context, UnpersistedEventContext)
            if not event.is_state():
                context.state_group_after_event = sg_before
                context.state_group_before_event = sg_before
                continue
            sg_after = next(state_group_iter)
            context.state_group_after_event = sg_after
            context.state_group_before_event = sg_before
            context.state_delta_due_to_event = {(event.type, event.state_key): event.event_id}
            sg_before = sg_after
        return events_and_context  # type: ignore[return-value]

    async def purge_unreferenced_state_groups(
        self, room_id: str, state_groups_to_sequence_numbers: Mapping[int, int]
    ) -> bool:
        deleted = await self._run(
            self._mx.purge_if_ready,
            room_id,
            dict(state_groups_to_sequence_numbers),
            self._now(),
            self._state_deletion_store.DELAY_BEFORE_DELETION_MS,
        )
        if deleted:
            logger.info("[purge] deleted %i state groups (their children re-based, not copied)", len(deleted))
        return bool(deleted)

    def _purge_unreferenced_state_groups(
        self, txn: Optional[LoggingTransaction], room_id: str, state_groups_to_sequence_numbers: Mapping[int, int]
    ) -> bool:
        deleted = self._mx.purge_if_ready(
            room_id,
            dict(state_groups_to_sequence_numbers),
            self._now(),
            self._state_deletion_store.DELAY_BEFORE_DELETION_MS,
        )
        return bool(deleted)

    async def get_previous_state_groups(self, state_groups: Iterable[int]) -> dict[int, int]:
        return await self._run(self._mx.previous_groups, list(state_groups))

    async def get_next_state_groups(self, state_groups: Iterable[int]) -> dict[int, int]:
        return await self._run(self._mx.next_groups, list(state_groups))

    async def purge_room_state(self, room_id: str) -> None:
        logger.info("[purge] removing the state groups of %s", room_id)
        await self._run(self._mx.purge_room, room_id)

    def _purge_room_state_txn(self, txn: Optional[LoggingTransaction], room_id: str) -> None:
        self._mx.purge_room(room_id)

    # Reads mxstate adds for admins and tests: what Synapse's tables answer.

    async def get_room_state_groups(self, room_id: str) -> list[int]:
        """The state groups of a room (`SELECT id FROM state_groups WHERE room_id = ?`)."""
        return await self._run(self._mx.room_groups, room_id)

    async def get_state_group_event(self, state_group: int) -> Optional[str]:
        """The event a group was stored for, or None if it does not exist."""
        return await self._run(self._mx.group_event, state_group)

    async def get_state_group_room(self, state_group: int) -> Optional[str]:
        """The room of a group, or None if it does not exist."""
        return await self._run(self._mx.group_room, state_group)

    async def get_max_state_group(self) -> Optional[int]:
        """The highest state group id, or None (`SELECT MAX(id) FROM state_groups`)."""
        return await self._run(self._mx.max_group)

    async def get_state_groups_below(self, before: int, limit: int) -> list[int]:
        """Up to `limit` state group ids below `before`, descending."""
        return await self._run(self._mx.groups_below, before, limit)

    async def get_state_groups_existing(self, state_groups: Iterable[int]) -> set[int]:
        """Which of the groups exist."""
        return await self._run(self._mx.existing_groups, list(state_groups))
