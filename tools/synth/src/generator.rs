//! The multi-room generator: every room's groups, in group id order.
//!
//! Rooms are generated one after the other (room 0, the big one, first);
//! group ids and event numbers are global and increase in creation order.
//! Only the current room's state is in memory.

use crate::chain_cover::{ChainCover, Position};
use crate::error::SynthError;
use crate::ids::EVENT_ID_LEN;
use crate::members::Membership;
use crate::options::{RoomSpec, SynthOptions};
use crate::room::{Counters, Emitted, RoomGen};
use crate::state::Entry;

/// One row of a group's state: `(type, state_key, event_id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StateRow<'a> {
    /// The event type (`m.room.member`, ...).
    pub event_type: &'a str,
    /// The state key (a user id for memberships, often empty).
    pub state_key: &'a str,
    /// The state event's id.
    pub event_id: &'a str,
}

impl<'a> From<&'a Entry> for StateRow<'a> {
    fn from(e: &'a Entry) -> Self {
        StateRow {
            event_type: e.event_type,
            state_key: &e.state_key,
            event_id: &e.event_id,
        }
    }
}

/// Streaming generator of state groups; see [`Generator::next_group`].
#[derive(Debug)]
pub struct Generator {
    opts: SynthOptions,
    next_room: u32,
    room: Option<RoomGen>,
    counters: Counters,
    out: Emitted,
    /// With [`SynthOptions::auth`]: Synapse's chain cover of the room.
    cover: Option<ChainCover>,
    /// The group's state event's chain cover position and links.
    chain: Option<Position>,
    chain_links: Vec<Position>,
}

impl Generator {
    /// A generator for `opts` (validated).
    pub fn new(opts: &SynthOptions) -> Result<Self, SynthError> {
        opts.validate()?;
        Ok(Generator {
            opts: opts.clone(),
            next_room: 0,
            room: None,
            counters: Counters::default(),
            out: Emitted::default(),
            cover: opts.auth.then(ChainCover::default),
            chain: None,
            chain_links: Vec::new(),
        })
    }

    /// The next state group, borrowed until the following call; `None` at
    /// the end. Reuses its buffers: a group costs about one small
    /// allocation (its event id in the room state), whatever its rows.
    pub fn next_group(&mut self) -> Option<GroupRef<'_>> {
        loop {
            let room = match &mut self.room {
                Some(room) => room,
                None => {
                    if self.next_room >= self.opts.rooms {
                        return None;
                    }
                    let spec = self.opts.room_spec(self.next_room);
                    self.next_room += 1;
                    if let Some(cover) = &mut self.cover {
                        cover.new_room();
                    }
                    self.room.insert(RoomGen::new(&self.opts, spec))
                }
            };
            if room.advance(&mut self.counters, &mut self.out) {
                break;
            }
            self.room = None;
        }
        self.chain = None;
        if let (Some(cover), Some(slot)) = (&mut self.cover, self.out.state_slot) {
            let auth: Vec<&str> = split_ids(&self.out.auth).collect();
            self.chain = Some(cover.add(&self.out.event_id, slot, &auth, &mut self.chain_links));
        }
        let room = self.room.as_ref()?;
        Some(GroupRef {
            room,
            out: &self.out,
            chain: self.chain,
            chain_links: &self.chain_links,
            auth: self.opts.auth,
        })
    }

    /// The largest chain id of the chain cover so far (0 without
    /// [`SynthOptions::auth`]): what Synapse's `event_auth_chain_id`
    /// sequence is set to after the groups generated so far.
    pub fn last_chain_id(&self) -> i64 {
        self.cover.as_ref().map_or(0, ChainCover::last_chain_id)
    }

    /// An iterator of owned groups (allocates every row; for tests and
    /// simple consumers — prefer [`Generator::next_group`] for speed).
    pub fn into_groups(self) -> Groups {
        Groups { generator: self }
    }
}

/// A state group just generated, with the events mapped to it.
#[derive(Debug, Clone, Copy)]
pub struct GroupRef<'a> {
    room: &'a RoomGen,
    out: &'a Emitted,
    chain: Option<Position>,
    chain_links: &'a [Position],
    auth: bool,
}

/// Fixed-length event ids concatenated in `s`.
fn split_ids(s: &str) -> impl Iterator<Item = &str> + '_ {
    (0..s.len() / EVENT_ID_LEN).map(move |i| &s[i * EVENT_ID_LEN..(i + 1) * EVENT_ID_LEN])
}

impl<'a> GroupRef<'a> {
    /// The group's id (`state_groups.id`).
    pub fn id(&self) -> i64 {
        self.out.id
    }

    /// The room's id.
    pub fn room_id(&self) -> &'a str {
        self.room.room_id()
    }

    /// The room's plan.
    pub fn room_spec(&self) -> RoomSpec {
        self.room.spec()
    }

    /// The event that created the group (`state_groups.event_id`).
    pub fn event_id(&self) -> &'a str {
        &self.out.event_id
    }

    /// The group this one is a delta on (`state_group_edges`), if any.
    pub fn prev(&self) -> Option<i64> {
        self.out.prev
    }

    /// True for a full copy of the room state (no prev).
    pub fn is_full_copy(&self) -> bool {
        self.out.prev.is_none()
    }

    /// Edges between this group and the nearest full copy.
    pub fn hops(&self) -> u32 {
        self.out.depth
    }

    /// Number of rows stored for this group (`state_groups_state`).
    pub fn row_count(&self) -> usize {
        if self.is_full_copy() {
            self.room.state().len()
        } else {
            1
        }
    }

    /// The rows stored for this group: every state entry for a full copy,
    /// the one changed entry for a delta.
    pub fn rows(&self) -> impl Iterator<Item = StateRow<'a>> + 'a {
        let entries = self.room.state().entries();
        let slice = if self.is_full_copy() {
            entries
        } else {
            let i = self.out.delta_index;
            entries.get(i..=i).unwrap_or(&[])
        };
        slice.iter().map(StateRow::from)
    }

    /// The complete state of this group (what resolving its edges gives).
    pub fn state(&self) -> impl Iterator<Item = StateRow<'a>> + 'a {
        self.room.state().entries().iter().map(StateRow::from)
    }

    /// Events mapped to this group (`event_to_state_groups`): the creating
    /// event first, then the non-state events that followed it.
    pub fn mapped_events(&self) -> impl Iterator<Item = &'a str> + 'a {
        split_ids(&self.out.mapped)
    }

    /// The auth events of the group's event (`event_auth` rows), when it is
    /// a state event and [`SynthOptions::auth`] is on; Synapse keeps none
    /// for other events. The create event has none.
    pub fn auth_events(&self) -> impl Iterator<Item = &'a str> + 'a {
        let ids: &'a str = if self.auth { &self.out.auth } else { "" };
        split_ids(ids)
    }

    /// The group's event's `(chain_id, sequence_number)` in Synapse's chain
    /// cover (`event_auth_chains`), when it is a state event and
    /// [`SynthOptions::auth`] is on.
    pub fn auth_chain_position(&self) -> Option<(i64, i64)> {
        self.chain
    }

    /// The chain cover links from [`GroupRef::auth_chain_position`]
    /// (`event_auth_chain_links`): target `(chain_id, sequence_number)`s.
    pub fn auth_chain_links(&self) -> &'a [(i64, i64)] {
        self.chain_links
    }

    /// Number of events mapped to this group.
    pub fn mapped_count(&self) -> usize {
        self.out.mapped.len() / EVENT_ID_LEN
    }

    /// True for the room's last group.
    pub fn is_last_in_room(&self) -> bool {
        self.out.last_in_room
    }

    /// Users joined after every state event generated so far in the room
    /// (for the last group of a room: its final membership), sorted.
    pub fn joined_members(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .room
            .members()
            .joined()
            .iter()
            .map(|&u| self.room.user_id(u))
            .collect();
        v.sort_unstable();
        v
    }

    /// Users who have left (after every state event so far), sorted.
    pub fn left_members(&self) -> Vec<String> {
        let m = self.room.members();
        let mut v: Vec<String> = (0..m.users())
            .filter(|&u| m.status(u) == Some(Membership::Left))
            .map(|u| self.room.user_id(u))
            .collect();
        v.sort_unstable();
        v
    }

    /// An owned copy of the group.
    pub fn to_owned_group(&self) -> SynthGroup {
        SynthGroup {
            id: self.id(),
            room_id: self.room_id().to_owned(),
            event_id: self.event_id().to_owned(),
            prev: self.prev(),
            rows: self
                .rows()
                .map(|r| (r.event_type.to_owned(), r.state_key.to_owned(), r.event_id.to_owned()))
                .collect(),
            mapped_events: self.mapped_events().map(str::to_owned).collect(),
        }
    }
}

/// An owned state group, as written to the dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthGroup {
    /// `state_groups.id`.
    pub id: i64,
    /// `state_groups.room_id`.
    pub room_id: String,
    /// `state_groups.event_id`.
    pub event_id: String,
    /// `state_group_edges.prev_state_group`, for a delta group.
    pub prev: Option<i64>,
    /// `state_groups_state` rows: `(type, state_key, event_id)`.
    pub rows: Vec<(String, String, String)>,
    /// `event_to_state_groups` events mapped to this group, in order.
    pub mapped_events: Vec<String>,
}

/// Iterator of owned groups; see [`Generator::into_groups`].
#[derive(Debug)]
pub struct Groups {
    generator: Generator,
}

impl Iterator for Groups {
    type Item = SynthGroup;

    fn next(&mut self) -> Option<SynthGroup> {
        self.generator.next_group().map(|g| g.to_owned_group())
    }
}

/// All groups of `opts`, owned, in id order.
pub fn groups(opts: &SynthOptions) -> Result<Groups, SynthError> {
    Ok(Generator::new(opts)?.into_groups())
}
