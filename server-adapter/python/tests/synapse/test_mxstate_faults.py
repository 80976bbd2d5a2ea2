"""Bad input to Synapse's state stores on mxstate: a clear error, nothing
stored half, and a reactor that goes on serving. Runs with Synapse's own
test harness (every homeserver on mxstate), from run-synapse-tests."""

from twisted.internet.testing import MemoryReactor

from synapse.rest import admin
from synapse.rest.client import login, room
from synapse.server import HomeServer
from synapse.types.state import StateFilter
from synapse.util.clock import Clock

from tests.unittest import HomeserverTestCase


class MxStateFaultsTestCase(HomeserverTestCase):
    servlets = [admin.register_servlets, room.register_servlets, login.register_servlets]

    def prepare(self, reactor: MemoryReactor, clock: Clock, hs: HomeServer) -> None:
        self.state_store = hs.get_datastores().state
        self.user = self.register_user("u", "pass")
        self.tok = self.login("u", "pass")
        self.room_id = self.helper.create_room_as(self.user, tok=self.tok)

    def groups_of_room(self) -> list[int]:
        return self.get_success(self.state_store.get_room_state_groups(self.room_id))

    def assert_still_serving(self) -> None:
        """The homeserver still stores and reads state."""
        self.helper.send_state(self.room_id, "org.mxstate.after", {"ok": True}, tok=self.tok)
        state = self.get_success(
            self.hs.get_storage_controllers().state.get_current_state_ids(self.room_id)
        )
        self.assertIn(("org.mxstate.after", ""), state)

    def test_unknown_prev_group_is_a_clear_error(self) -> None:
        before = self.groups_of_room()
        failure = self.get_failure(
            self.state_store.store_state_group(
                event_id="$x", room_id=self.room_id, prev_group=987654321,
                delta_ids={("m.room.name", ""): "$x"}, current_state_ids=None,
            ),
            Exception,
        )
        self.assertIn("unpersisted prev_group: 987654321", str(failure.value))
        self.assertEqual(self.groups_of_room(), before, "nothing was stored")
        # An unknown group reads as no state, as with Synapse's tables.
        got = self.get_success(self.state_store._get_state_groups_from_groups([987654321], StateFilter.all()))
        self.assertEqual(got, {987654321: {}})
        self.assert_still_serving()

    def test_invalid_ids_are_refused_whole(self) -> None:
        from mxstate_synapse import InvalidInputError

        groups = self.groups_of_room()
        before = self.groups_of_room()
        self.get_failure(
            self.state_store.store_state_group(
                event_id="not-an-event-id", room_id=self.room_id, prev_group=groups[-1],
                delta_ids={("m.room.name", ""): "$y"}, current_state_ids=None,
            ),
            InvalidInputError,
        )
        self.get_failure(
            self.state_store.store_state_group(
                event_id="$z", room_id=self.room_id, prev_group=None, delta_ids=None,
                current_state_ids={("", "empty type"): "$z"},
            ),
            InvalidInputError,
        )
        self.assertEqual(self.groups_of_room(), before)
        self.assert_still_serving()

    def test_a_64_kib_state_key_round_trips(self) -> None:
        key = "k" * 65536
        groups = self.groups_of_room()
        sg = self.get_success(
            self.state_store.store_state_group(
                event_id="$big", room_id=self.room_id, prev_group=groups[-1],
                delta_ids={("org.mxstate.big", key): "$big"}, current_state_ids=None,
            )
        )
        got = self.get_success(
            self.state_store._get_state_groups_from_groups(
                [sg], StateFilter.from_types([("org.mxstate.big", key)])
            )
        )
        self.assertEqual(got[sg], {("org.mxstate.big", key): "$big"})
        self.assert_still_serving()

    def test_a_64_kib_state_key_through_the_api_is_refused_by_synapse(self) -> None:
        before = self.groups_of_room()
        channel = self.make_request(
            "PUT",
            f"/rooms/{self.room_id}/state/org.mxstate.big/{'k' * 65536}",
            {"x": 1},
            access_token=self.tok,
        )
        self.assertTrue(400 <= channel.code < 500, channel.result)
        # Synapse may have stored the state group of the refused event before
        # refusing it (it does so on its own tables too): every group of the
        # room still reads whole, and the big key is not in the room's state.
        after = self.groups_of_room()
        self.assertEqual(after[: len(before)], before)
        states = self.get_success(self.state_store._get_state_groups_from_groups(after, StateFilter.all()))
        self.assertEqual(sorted(states), after)
        self.assertTrue(all(states[g] for g in after[len(before):]), "every new group has its state")
        current = self.get_success(self.hs.get_storage_controllers().state.get_current_state_ids(self.room_id))
        self.assertNotIn(("org.mxstate.big", "k" * 65536), current)
        self.assert_still_serving()
