//! Generation options and the per-room plan derived from them.

use crate::error::SynthError;
use crate::room::INITIAL_STATE_EVENTS;

/// Synapse's `MAX_STATE_DELTA_HOPS`: the longest chain of delta groups.
pub const MAX_STATE_DELTA_HOPS: u32 = 100;

/// What to generate. Construct with `..Default::default()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthOptions {
    /// Number of rooms. Room 0 is the big one.
    pub rooms: u32,
    /// Target joined members of the biggest room (room 0). Room `r >= 1`
    /// aims at `max(members / (10 r), min(members, min_room_members))`.
    pub members: u32,
    /// State events of the biggest room; 0 derives `2 * members` for every
    /// room. Otherwise the other rooms get the same ratio to their members.
    /// A room never has fewer than its initial state events.
    pub state_events: u64,
    /// Seed of every random choice and id: same options, same bytes.
    pub seed: u64,
    /// Mean number of non-state events (messages) after each state event,
    /// each mapped to the room's current group (uniform in `0..=2 * mean`).
    pub messages_per_state_event: u32,
    /// Every `fork_every` state events, two concurrent state events fork the
    /// room's state (two groups with the same prev), followed by a merge
    /// group. 0 disables forks.
    pub fork_every: u32,
    /// The longest delta chain before a full copy (Synapse: 100).
    pub max_delta_hops: u32,
    /// Floor of the member target of the smaller rooms.
    pub min_room_members: u32,
    /// Also give every state event its auth events (`event_auth`) and
    /// Synapse's chain cover (`event_auth_chains`,
    /// `event_auth_chain_links`). Holds one more map of the room's events
    /// in memory while generating.
    pub auth: bool,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            rooms: 1,
            members: 1000,
            state_events: 0,
            seed: 0,
            messages_per_state_event: 4,
            fork_every: 50,
            max_delta_hops: MAX_STATE_DELTA_HOPS,
            min_room_members: 30,
            auth: false,
        }
    }
}

impl SynthOptions {
    /// Checks the options describe a dump.
    pub fn validate(&self) -> Result<(), SynthError> {
        if self.members == 0 {
            return Err(SynthError::InvalidOptions("members must be at least 1".into()));
        }
        if self.messages_per_state_event > 1_000_000 {
            return Err(SynthError::InvalidOptions(
                "messages_per_state_event must be at most 1000000".into(),
            ));
        }
        Ok(())
    }

    /// The plan of room `index` (`index < rooms`).
    pub fn room_spec(&self, index: u32) -> RoomSpec {
        let big = self.members.max(1);
        let floor = big.min(self.min_room_members).max(1);
        let members = match (big / 10).checked_div(index) {
            None => big,
            Some(share) => share.max(floor),
        };
        let state_events = if self.state_events == 0 {
            2 * u64::from(members)
        } else if index == 0 {
            self.state_events
        } else {
            let scaled = u128::from(self.state_events) * u128::from(members) / u128::from(big);
            u64::try_from(scaled).unwrap_or(u64::MAX)
        };
        RoomSpec {
            index,
            members,
            state_events: state_events.max(INITIAL_STATE_EVENTS as u64),
        }
    }

    /// The plans of all rooms, in generation order.
    pub fn room_specs(&self) -> impl Iterator<Item = RoomSpec> + '_ {
        (0..self.rooms).map(|i| self.room_spec(i))
    }
}

/// The plan of one room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomSpec {
    /// Position of the room in generation order.
    pub index: u32,
    /// Target number of joined members.
    pub members: u32,
    /// Number of state events (initial state included).
    pub state_events: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_shrink_to_a_floor() {
        let o = SynthOptions {
            rooms: 4,
            members: 1000,
            ..Default::default()
        };
        let m: Vec<u32> = o.room_specs().map(|s| s.members).collect();
        assert_eq!(m, vec![1000, 100, 50, 33]);
        let o = SynthOptions {
            rooms: 40,
            members: 100,
            state_events: 1000,
            ..Default::default()
        };
        let s = o.room_spec(39);
        assert_eq!(s.members, 30);
        assert_eq!(s.state_events, 300);
        assert_eq!(o.room_spec(0).state_events, 1000);
    }
}
