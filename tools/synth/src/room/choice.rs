//! What the next state event of a room is: the initial state in
//! `createRoom` order, then mostly membership churn (joins until about the
//! target is reached, then leaves, re-joins, profile changes) with other
//! usual state types sprinkled in.

use super::{RoomGen, MEMBER, WIDGETS};
use crate::state::Slot;

/// The state events every room starts with, in Synapse's `createRoom` order
/// (index 1, the creator's join, is the only membership event).
pub(super) const INITIAL_TYPES: [&str; 10] = [
    "m.room.create",
    MEMBER,
    "m.room.power_levels",
    "m.room.canonical_alias",
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.guest_access",
    "m.room.encryption",
    "m.room.name",
    "m.room.topic",
];

/// Non-membership state types sprinkled through a room's life, with weights.
const OTHER_TYPES: [(&str, u64); 11] = [
    ("m.room.name", 12),
    ("m.room.topic", 14),
    ("m.room.power_levels", 24),
    ("m.room.pinned_events", 10),
    ("m.room.server_acl", 4),
    (WIDGETS, 14),
    ("m.room.canonical_alias", 6),
    ("m.room.avatar", 8),
    ("m.room.join_rules", 2),
    ("m.room.history_visibility", 2),
    ("m.room.guest_access", 2),
];

/// Share of non-initial state events that are not memberships (per mille).
const OTHER_PERMILLE: u64 = 80;

/// One state event's effect.
#[derive(Debug, Clone, Copy)]
pub(super) enum Change {
    /// A user joins; `new` if never seen in the room before.
    Join { user: u32, new: bool },
    /// A joined user leaves (or is kicked/banned).
    Leave { user: u32 },
    /// A joined user changes its profile (a new join event).
    Profile { user: u32 },
    /// Any other state event.
    Other { slot: Slot, event_type: &'static str },
}

impl Change {
    pub(super) fn slot(self) -> Slot {
        match self {
            Change::Join { user, .. } | Change::Leave { user } | Change::Profile { user } => Slot::Member(user),
            Change::Other { slot, .. } => slot,
        }
    }

    pub(super) fn event_type(self) -> &'static str {
        match self {
            Change::Other { event_type, .. } => event_type,
            _ => MEMBER,
        }
    }
}

impl RoomGen {
    /// The initial state event number `state_events_done`.
    pub(super) fn initial_change(&mut self) -> Change {
        let event_type = INITIAL_TYPES[self.state_events_done as usize];
        if event_type == MEMBER {
            Change::Join {
                user: self.members.users(),
                new: true,
            }
        } else {
            Change::Other {
                slot: Slot::Plain(event_type),
                event_type,
            }
        }
    }

    /// A random state event, `remaining` state events before the room ends.
    pub(super) fn propose(&mut self, remaining: u64) -> Change {
        if self.rng.chance(OTHER_PERMILLE) {
            self.propose_other()
        } else {
            self.propose_member(remaining)
        }
    }

    /// A random state event whose slot is not `taken`.
    pub(super) fn propose_distinct(&mut self, taken: Slot, remaining: u64) -> Change {
        for _ in 0..16 {
            let c = self.propose(remaining);
            if c.slot() != taken {
                return c;
            }
        }
        let event_type = if taken == Slot::Plain("m.room.topic") {
            "m.room.name"
        } else {
            "m.room.topic"
        };
        Change::Other {
            slot: Slot::Plain(event_type),
            event_type,
        }
    }

    /// A membership event: mostly new joins until the target is reached,
    /// then a churn of leaves, re-joins, profile changes and a few joins.
    fn propose_member(&mut self, remaining: u64) -> Change {
        let joined = self.members.joined_count() as u64;
        let target = u64::from(self.spec.members);
        let new_permille = if joined < target {
            ((target - joined) * 4000 / (3 * remaining.max(1))).clamp(700, 1000)
        } else {
            40
        };
        let new_join = Change::Join {
            user: self.members.users(),
            new: true,
        };
        if self.rng.chance(new_permille) {
            return new_join;
        }
        let leave_permille = if joined > target { 400 } else { 300 };
        let r = self.rng.below(1000);
        if r < leave_permille && joined > 1 {
            if let Some(user) = self.members.random_joined(&mut self.rng) {
                return Change::Leave { user };
            }
        } else if r < leave_permille + 250 {
            if let Some(user) = self.members.random_left(&mut self.rng) {
                return Change::Join { user, new: false };
            }
        }
        match self.members.random_joined(&mut self.rng) {
            Some(user) => Change::Profile { user },
            None => new_join,
        }
    }

    /// A non-membership state event of a weighted random type.
    fn propose_other(&mut self) -> Change {
        let total: u64 = OTHER_TYPES.iter().map(|(_, w)| w).sum();
        let mut r = self.rng.below(total);
        let mut event_type = OTHER_TYPES[0].0;
        for (t, w) in OTHER_TYPES {
            if r < w {
                event_type = t;
                break;
            }
            r -= w;
        }
        let slot = if event_type == WIDGETS {
            let w = if self.widgets == 0 || self.rng.chance(400) {
                self.widgets
            } else {
                self.rng.below(u64::from(self.widgets)) as u32
            };
            Slot::Widget(w)
        } else {
            Slot::Plain(event_type)
        };
        Change::Other { slot, event_type }
    }
}
