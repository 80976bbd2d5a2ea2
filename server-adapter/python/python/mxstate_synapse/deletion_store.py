"""`StateDeletionDataStore` on mxstate: the bookkeeping that keeps a state
group from being deleted while an event that uses it is being persisted.

Every step is one atomic write inside mxstate (see docs/synapse.md). The
`_txn` forms that Synapse's own code and tests call inside SQL
transactions are kept: they ignore the SQL transaction and go to mxstate.
"""

import contextlib
import logging
from typing import TYPE_CHECKING, AbstractSet, Any, AsyncIterator, Callable, Collection, Mapping, Optional, TypeVar

from synapse.events.snapshot import EventPersistencePair
from synapse.logging.context import defer_to_thread
from synapse.storage.database import DatabasePool, LoggingDatabaseConnection, LoggingTransaction
from synapse.storage.databases.state.deletion import StateDeletionDataStore
from synapse.util.stringutils import shortstr

from .opening import open_store

if TYPE_CHECKING:
    from synapse.server import HomeServer

logger = logging.getLogger(__name__)

R = TypeVar("R")


class MxStateDeletionDataStore(StateDeletionDataStore):
    """Synapse's deletion protocol, kept in the mxstate database."""

    def __init__(self, database: DatabasePool, db_conn: LoggingDatabaseConnection, hs: "HomeServer"):
        # Not the parent's __init__: it clears rows of an SQL table mxstate
        # replaces. The same attributes, and the database.
        self._clock = hs.get_clock()
        self.db_pool = database
        self._instance_name = hs.get_instance_name()
        self._reactor = hs.get_reactor()
        self._mx = open_store(hs, self)
        self._clear_existing_persisting(None)

    async def _run(self, f: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Runs blocking mxstate work on the database thread pool."""
        return await defer_to_thread(self._reactor, f, *args, **kwargs)

    def _now(self) -> int:
        return self._clock.time_msec()

    def _clear_existing_persisting(self, txn: Optional[LoggingTransaction]) -> None:
        cutoff = max(0, self._now() - self.STALE_PERSISTING_DURATION.as_millis())
        cleared = self._mx.clear_persisting(self._instance_name, cutoff)
        if cleared:
            logger.info("Cleared %d stale state groups from the persisting marks: %s", len(cleared), shortstr(cleared))

    async def check_state_groups_and_bump_deletion(self, state_groups: AbstractSet[int]) -> Collection[int]:
        missing = await self._run(self._mx.check_and_bump_deletion, state_groups, self._now())
        return missing or ()

    def _check_state_groups_and_bump_deletion_txn(
        self, txn: Optional[LoggingTransaction], state_groups: AbstractSet[int], lock: bool = True
    ) -> Collection[int]:
        return self._mx.check_and_bump_deletion(state_groups, self._now()) or ()

    def _bump_deletion_txn(self, txn: Optional[LoggingTransaction], state_groups: Collection[int]) -> None:
        if state_groups:
            self._mx.check_and_bump_deletion(state_groups, self._now())

    def _get_existing_groups_with_lock(
        self, txn: Optional[LoggingTransaction], state_groups: Collection[int], lock: bool = True
    ) -> AbstractSet[int]:
        return self._mx.existing_groups(state_groups)

    @contextlib.asynccontextmanager
    async def persisting_state_group_references(
        self, event_and_contexts: Collection[EventPersistencePair]
    ) -> AsyncIterator[None]:
        referenced_state_groups: set[int] = set()
        for event, ctx in event_and_contexts:
            if ctx.rejected or event.internal_metadata.is_outlier():
                continue
            assert ctx.state_group is not None
            referenced_state_groups.add(ctx.state_group)
            if ctx.state_group_before_event:
                referenced_state_groups.add(ctx.state_group_before_event)

        if not referenced_state_groups:
            yield
            return

        await self._run(self._mark_state_groups_as_persisting_txn, None, referenced_state_groups)
        error = True
        try:
            yield None
            error = False
        finally:
            await self._run(self._finish_persisting_txn, None, referenced_state_groups, error)

    def _mark_state_groups_as_persisting_txn(self, txn: Optional[LoggingTransaction], state_groups: set[int]) -> None:
        missing = self._mx.mark_persisting(state_groups, self._instance_name, self._now())
        if missing:
            raise Exception(f"state groups have been deleted: {shortstr(missing)}")

    def _finish_persisting_txn(
        self, txn: Optional[LoggingTransaction], state_groups: Collection[int], error: bool
    ) -> None:
        self._mx.finish_persisting(state_groups, self._instance_name, error, self._now())

    async def mark_state_groups_as_pending_deletion(self, state_groups: Collection[int]) -> None:
        await self._run(self._mx.mark_pending_deletion, state_groups, self._now())

    def _mark_state_groups_as_pending_deletion_txn(
        self, txn: Optional[LoggingTransaction], state_groups: Collection[int]
    ) -> None:
        self._mx.mark_pending_deletion(state_groups, self._now())

    async def mark_state_groups_as_used(self, state_groups: Collection[int]) -> None:
        await self._run(self._mx.mark_used, state_groups)

    async def get_pending_deletions(self, state_groups: Collection[int]) -> Mapping[int, int]:
        return await self._run(self._mx.pending_deletions, state_groups)

    def get_state_groups_ready_for_potential_deletion_txn(
        self, txn: Optional[LoggingTransaction], state_groups_to_sequence_numbers: Mapping[int, int]
    ) -> Collection[int]:
        if not state_groups_to_sequence_numbers:
            return state_groups_to_sequence_numbers
        return self._mx.ready_for_deletion(
            dict(state_groups_to_sequence_numbers), self._now(), self.DELAY_BEFORE_DELETION_MS
        )

    async def get_next_state_group_collection_to_delete(self) -> Optional[tuple[str, Mapping[int, int]]]:
        return await self._run(self._get_next_state_group_collection_to_delete_txn, None)

    def _get_next_state_group_collection_to_delete_txn(
        self, txn: Optional[LoggingTransaction]
    ) -> Optional[tuple[str, Mapping[int, int]]]:
        return self._mx.next_deletion_candidates(self._now(), self.DELAY_BEFORE_DELETION_MS)

    async def get_persisting_marks(self) -> list[tuple[int, str, int]]:
        """`(state_group, instance_name, inserted_ts)` of the persists in
        flight: what `state_groups_persisting` holds in stock Synapse."""
        return await self._run(self._mx.persisting_marks)
