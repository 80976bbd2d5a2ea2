//! One room's state history, produced one state group at a time.
//!
//! Follows Synapse's shape: every state event gets its own state group, a
//! one-row delta on the group before it; when the chain of deltas behind the
//! previous group already has `max_delta_hops` edges, the new group is a
//! full copy instead (no edge, every row). Every `fork_every` state events
//! two concurrent state events fork the state (two groups sharing a prev),
//! and the next event (a message) gets the resolved state: a merge group
//! whose prev is the first branch and whose delta is the second branch's row.

use crate::ids::{self, push_event_id};
use crate::members::{Members, Membership};
use crate::options::{RoomSpec, SynthOptions};
use crate::rng::{mix64, Rng};
use crate::state::{Previous, Slot, StateMap};

mod choice;

use choice::{Change, INITIAL_TYPES};

/// `m.room.member`.
pub const MEMBER: &str = "m.room.member";
/// Element's widget state type (state key = widget id).
pub const WIDGETS: &str = "im.vector.modular.widgets";

/// `m.room.create`.
const CREATE: &str = "m.room.create";
/// `m.room.power_levels`.
const POWER_LEVELS: &str = "m.room.power_levels";
/// `m.room.join_rules`.
const JOIN_RULES: &str = "m.room.join_rules";

/// Number of state events of a room's initial state.
pub const INITIAL_STATE_EVENTS: usize = INITIAL_TYPES.len();

/// Group ids and event numbers, global across rooms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) next_group: i64,
    pub(crate) next_event: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            next_group: 1,
            next_event: 0,
        }
    }
}

/// A state group's id and its distance (in edges) from a full copy.
#[derive(Debug, Clone, Copy)]
struct Node {
    id: i64,
    depth: u32,
}

/// The group a room just produced. Reused between groups (no allocation).
#[derive(Debug, Default)]
pub(crate) struct Emitted {
    pub(crate) id: i64,
    pub(crate) prev: Option<i64>,
    pub(crate) depth: u32,
    /// The event that created the group.
    pub(crate) event_id: String,
    /// Position in the room's state of the delta row (delta groups only).
    pub(crate) delta_index: usize,
    /// Events mapped to the group, concatenated (each `EVENT_ID_LEN` bytes).
    pub(crate) mapped: String,
    pub(crate) last_in_room: bool,
    /// The `(type, state_key)` of the group's state event; `None` when the
    /// group's event is not a state event (a merge).
    pub(crate) state_slot: Option<Slot>,
    /// The state event's auth events, concatenated (each `EVENT_ID_LEN`
    /// bytes), in the order of the Matrix spec's auth rules: create, power
    /// levels, the sender's membership, then for a membership the target's
    /// membership and (for a join) the join rules.
    pub(crate) auth: String,
}

/// Where a room is in its history.
#[derive(Debug)]
enum Phase {
    /// Linear history (or the room's first group).
    Normal,
    /// The first branch of a fork was emitted; the second is next.
    ForkB {
        base: Node,
        a_node: Node,
        a: Change,
        a_undo: Previous,
        a_event: String,
    },
    /// Both branches were emitted; the merge group is next.
    Merge {
        a_node: Node,
        a: Change,
        a_event: String,
        b: Change,
    },
    /// No more groups.
    Done,
}

/// Generator of one room's groups.
#[derive(Debug)]
pub(crate) struct RoomGen {
    spec: RoomSpec,
    seed: u64,
    max_hops: u32,
    fork_every: u32,
    messages: u64,
    room_id: String,
    rng: Rng,
    state: StateMap,
    members: Members,
    user_base: u64,
    widgets: u32,
    widget_salt: u64,
    /// Whether auth events are wanted ([`SynthOptions::auth`]).
    auth: bool,
    state_events_done: u64,
    since_fork: u32,
    head: Option<Node>,
    phase: Phase,
}

impl RoomGen {
    /// A fresh room following `spec`.
    pub(crate) fn new(opts: &SynthOptions, spec: RoomSpec) -> Self {
        let mut rng = Rng::new(opts.seed, u64::from(spec.index) + 1);
        let room_id = ids::room_id(&mut rng);
        let user_base = if spec.index == 0 {
            0
        } else {
            rng.below(u64::from(opts.members.max(1)))
        };
        let widget_salt = rng.next_u64();
        RoomGen {
            spec,
            seed: opts.seed,
            max_hops: opts.max_delta_hops,
            fork_every: opts.fork_every,
            messages: u64::from(opts.messages_per_state_event),
            room_id,
            rng,
            state: StateMap::default(),
            members: Members::default(),
            user_base,
            widgets: 0,
            widget_salt,
            auth: opts.auth,
            state_events_done: 0,
            since_fork: 0,
            head: None,
            phase: Phase::Normal,
        }
    }

    /// The room's id.
    pub(crate) fn room_id(&self) -> &str {
        &self.room_id
    }

    /// The room's plan.
    pub(crate) fn spec(&self) -> RoomSpec {
        self.spec
    }

    /// The state of the group last emitted.
    pub(crate) fn state(&self) -> &StateMap {
        &self.state
    }

    /// Membership after every state event generated so far.
    pub(crate) fn members(&self) -> &Members {
        &self.members
    }

    /// The global user id of local user `user`.
    pub(crate) fn user_id(&self, user: u32) -> String {
        ids::user_id(self.user_base + u64::from(user))
    }

    /// Produces the room's next group into `out`; false when the room is done.
    pub(crate) fn advance(&mut self, ctr: &mut Counters, out: &mut Emitted) -> bool {
        out.event_id.clear();
        out.mapped.clear();
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        let delta_slot = match phase {
            Phase::Done => return false,
            Phase::Normal => {
                let initial = self.state_events_done < INITIAL_STATE_EVENTS as u64;
                if !initial && self.state_events_done >= self.spec.state_events {
                    return false;
                }
                let remaining = self.spec.state_events - self.state_events_done;
                let fork = !initial && self.fork_every > 0 && self.since_fork >= self.fork_every && remaining >= 2;
                let change = if initial {
                    self.initial_change()
                } else {
                    self.propose(remaining)
                };
                self.state_event(ctr, change, out);
                self.auth_events(change, out);
                let undo = self.write_state(change, &out.event_id);
                let base = self.head;
                let node = self.place(base, ctr, out);
                if fork {
                    self.since_fork = 0;
                    self.phase = Phase::ForkB {
                        // A fork needs a base, and forks never come first.
                        base: base.unwrap_or(node),
                        a_node: node,
                        a: change,
                        a_undo: undo,
                        a_event: out.event_id.clone(),
                    };
                } else {
                    if !initial {
                        self.since_fork += 1;
                    }
                    self.head = Some(node);
                    self.phase = Phase::Normal;
                }
                change.slot()
            }
            Phase::ForkB {
                base,
                a_node,
                a,
                a_undo,
                a_event,
            } => {
                let remaining = self.spec.state_events - self.state_events_done;
                let b = self.propose_distinct(a.slot(), remaining);
                self.state.undo(a.slot(), a_undo);
                self.state_event(ctr, b, out);
                self.auth_events(b, out);
                self.write_state(b, &out.event_id);
                self.place(Some(base), ctr, out);
                self.phase = Phase::Merge { a_node, a, a_event, b };
                b.slot()
            }
            Phase::Merge { a_node, a, a_event, b } => {
                out.state_slot = None;
                out.auth.clear();
                self.write_state(a, &a_event);
                push_event_id(self.seed, ctr.next_event, &mut out.event_id);
                ctr.next_event += 1;
                let node = self.place(Some(a_node), ctr, out);
                self.head = Some(node);
                self.phase = Phase::Normal;
                b.slot()
            }
        };
        out.delta_index = self.state.position(delta_slot).unwrap_or(0);
        out.mapped.push_str(&out.event_id);
        // No messages while the room is being created.
        let creating = self.state_events_done < INITIAL_STATE_EVENTS as u64;
        let n = if self.messages == 0 || creating {
            0
        } else {
            self.rng.below(2 * self.messages + 1)
        };
        for _ in 0..n {
            push_event_id(self.seed, ctr.next_event, &mut out.mapped);
            ctr.next_event += 1;
        }
        out.last_in_room = matches!(self.phase, Phase::Normal) && self.state_events_done >= self.spec.state_events;
        true
    }

    /// Allocates a state event's id into `out.event_id` and accepts `change`.
    fn state_event(&mut self, ctr: &mut Counters, change: Change, out: &mut Emitted) {
        push_event_id(self.seed, ctr.next_event, &mut out.event_id);
        ctr.next_event += 1;
        self.state_events_done += 1;
        match change {
            Change::Join { user, new: true } => {
                let added = self.members.add_joined();
                debug_assert_eq!(added, user);
            }
            Change::Join { user, new: false } => self.members.set(user, Membership::Joined),
            Change::Leave { user } => self.members.set(user, Membership::Left),
            Change::Profile { .. } => {}
            Change::Other { slot, .. } => {
                if let Slot::Widget(w) = slot {
                    self.widgets = self.widgets.max(w + 1);
                }
            }
        }
    }

    /// The state event of `change`: its slot and its auth events, chosen
    /// by the auth rules from the room state before it (the room's creator,
    /// local user 0, sends every event that is not a membership).
    fn auth_events(&self, change: Change, out: &mut Emitted) {
        let slot = change.slot();
        out.state_slot = Some(slot);
        out.auth.clear();
        if !self.auth || slot == Slot::Plain(CREATE) {
            return;
        }
        let (sender, join) = match change {
            Change::Join { user, .. } | Change::Profile { user } => (user, true),
            Change::Leave { user } => (user, false),
            Change::Other { .. } => (0, false),
        };
        let mut wanted = [
            Some(Slot::Plain(CREATE)),
            Some(Slot::Plain(POWER_LEVELS)),
            Some(Slot::Member(sender)),
            None,
        ];
        if join {
            wanted[3] = Some(Slot::Plain(JOIN_RULES));
        }
        let entries = self.state.entries();
        for s in wanted.into_iter().flatten() {
            if let Some(i) = self.state.position(s) {
                out.auth.push_str(&entries[i].event_id);
            }
        }
    }

    /// Records `change`'s event in the room state.
    fn write_state(&mut self, change: Change, event_id: &str) -> Previous {
        let slot = change.slot();
        let (user_base, widget_salt) = (self.user_base, self.widget_salt);
        let key = move || match slot {
            Slot::Plain(_) => String::new(),
            Slot::Member(u) => ids::user_id(user_base + u64::from(u)),
            Slot::Widget(w) => format!("widget_{:016x}", mix64(widget_salt ^ u64::from(w))),
        };
        self.state.set(slot, change.event_type(), key, event_id)
    }

    /// Gives the new group an id and places it: a delta on `prev` unless
    /// `prev`'s chain is already `max_hops` long (then a full copy).
    fn place(&mut self, prev: Option<Node>, ctr: &mut Counters, out: &mut Emitted) -> Node {
        let id = ctr.next_group;
        ctr.next_group += 1;
        let (prev, depth) = match prev {
            Some(p) if p.depth < self.max_hops => (Some(p.id), p.depth + 1),
            _ => (None, 0),
        };
        out.id = id;
        out.prev = prev;
        out.depth = depth;
        Node { id, depth }
    }
}
