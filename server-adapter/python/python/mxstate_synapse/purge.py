"""The two places of Synapse's purge controller that run SQL on the state
tables themselves, answered by mxstate instead.

`PurgeEventsStorageController` walks the state groups in the background
(`mark_unreferenced_state_groups_for_deletion_bg_update`) with raw SQL on
`state_groups`, `state_group_edges` and `state_groups_pending_deletion`.
When the homeserver's state store is mxstate's, the two methods below
take over; otherwise Synapse's own run.
"""

from typing import Any, Callable

from synapse.storage.controllers.purge_events import PurgeEventsStorageController

from .state_store import MxStateGroupDataStore

_PATCHED = "_mxstate_patched"


def _on_mxstate(controller: PurgeEventsStorageController) -> bool:
    return isinstance(controller.stores.state, MxStateGroupDataStore)


async def _find_unreferenced_groups_for_background_deletion(
    self: PurgeEventsStorageController, last_checked_state_group: int, batch_size: int
) -> tuple[set[int], int, bool]:
    """Synapse's walk, on mxstate's groups: the `batch_size` groups below
    `last_checked_state_group` (newest first); a group is a candidate when
    none of its children is a non-candidate outside the pending deletions;
    candidates on a chain leading to a referenced group are kept."""
    state = self.stores.state
    assert isinstance(state, MxStateGroupDataStore)
    groups = await state.get_state_groups_below(last_checked_state_group, batch_size)
    children = await state.get_next_state_groups(groups)
    pending = await self.stores.state_deletion.get_pending_deletions(list(children))
    kids: dict[int, list[int]] = {}
    for child, prev in children.items():
        kids.setdefault(prev, []).append(child)

    candidate: dict[int, bool] = {}
    edges: dict[int, int] = {}
    for group in groups:  # newest first: children are decided before parents
        deletable = True
        for child in kids.get(group, []):
            edges[child] = group
            if child not in pending and not candidate.get(child, False):
                deletable = False
        candidate[group] = deletable
    to_delete = {g for g, ok in candidate.items() if ok}

    final_batch = len(groups) < batch_size
    if not final_batch:
        last_checked_state_group = min(groups)
    if not groups:
        return set(), last_checked_state_group, final_batch

    referenced = await self.stores.main.get_referenced_state_groups(to_delete)
    for group in referenced:
        current: Any = group
        while current is not None:
            to_delete.discard(current)
            current = edges.get(current)
    return to_delete, last_checked_state_group, final_batch


def _wrap_background_update(original: Callable[..., Any]) -> Callable[..., Any]:
    async def _background_delete_unrefereneced_state_groups(
        self: PurgeEventsStorageController, progress: dict, batch_size: int
    ) -> int:
        if _on_mxstate(self) and progress.get("last_checked_state_group") is None:
            # Synapse's first run reads MAX(id) from the SQL table; start
            # from mxstate's highest group instead (no group: nothing to do).
            state = self.stores.state
            assert isinstance(state, MxStateGroupDataStore)
            highest = await state.get_max_state_group()
            # Synapse starts just above the highest group; with no group, at
            # 0, where the first batch is empty and the update ends.
            progress = dict(progress, last_checked_state_group=0 if highest is None else highest + 1)
        return await original(self, progress, batch_size)

    return _background_delete_unrefereneced_state_groups


def _wrap_find(original: Callable[..., Any]) -> Callable[..., Any]:
    async def wrapper(self: PurgeEventsStorageController, last_checked_state_group: int, batch_size: int) -> Any:
        if _on_mxstate(self):
            return await _find_unreferenced_groups_for_background_deletion(self, last_checked_state_group, batch_size)
        return await original(self, last_checked_state_group, batch_size)

    return wrapper


def patch_purge_controller() -> None:
    """Makes the purge controller ask mxstate where Synapse asked SQL."""
    cls = PurgeEventsStorageController
    if getattr(cls, _PATCHED, False):
        return
    cls._find_unreferenced_groups_for_background_deletion = _wrap_find(  # type: ignore[method-assign]
        cls._find_unreferenced_groups_for_background_deletion
    )
    cls._background_delete_unrefereneced_state_groups = _wrap_background_update(  # type: ignore[method-assign]
        cls._background_delete_unrefereneced_state_groups
    )
    setattr(cls, _PATCHED, True)
