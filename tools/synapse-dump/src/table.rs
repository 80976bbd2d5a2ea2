//! The four Synapse tables that hold room state.

use std::fmt;

/// One of Synapse's four state tables.
///
/// [`Table::ALL`] lists them in the order pg_dump writes their data
/// (alphabetical), which is also the order [`crate::live`] streams them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// `event_to_state_groups (event_id, state_group)`.
    EventToStateGroups,
    /// `state_group_edges (state_group, prev_state_group)`.
    StateGroupEdges,
    /// `state_groups (id, room_id, event_id)`.
    StateGroups,
    /// `state_groups_state (state_group, room_id, type, state_key, event_id)`.
    StateGroupsState,
}

impl Table {
    /// All four, in pg_dump's data order.
    pub const ALL: [Table; 4] = [
        Table::EventToStateGroups,
        Table::StateGroupEdges,
        Table::StateGroups,
        Table::StateGroupsState,
    ];

    /// The SQL table name.
    pub const fn name(self) -> &'static str {
        match self {
            Table::EventToStateGroups => "event_to_state_groups",
            Table::StateGroupEdges => "state_group_edges",
            Table::StateGroups => "state_groups",
            Table::StateGroupsState => "state_groups_state",
        }
    }

    /// The columns this crate reads and writes, in Synapse's declaration order.
    pub const fn columns(self) -> &'static [&'static str] {
        match self {
            Table::EventToStateGroups => &["event_id", "state_group"],
            Table::StateGroupEdges => &["state_group", "prev_state_group"],
            Table::StateGroups => &["id", "room_id", "event_id"],
            Table::StateGroupsState => &["state_group", "room_id", "type", "state_key", "event_id"],
        }
    }

    /// The table called `name` (unqualified, unquoted), if it is one of the four.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// A bit unique to this table, for small sets of tables.
    pub(crate) const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}
