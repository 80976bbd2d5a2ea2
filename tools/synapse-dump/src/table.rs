//! The four Synapse tables that hold room state, and `event_auth`.

use std::fmt;

/// One of Synapse's four state tables, or `event_auth` (each event's auth
/// events, read only when asked for: see [`crate::Include`]).
///
/// [`Table::ALL`] lists the state tables in the order pg_dump writes their
/// data (alphabetical), which is also the order [`crate::live`] streams
/// them in; [`Table::WITH_AUTH`] puts `event_auth` before them, as pg_dump
/// does.
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
    /// `event_auth (event_id, auth_id, room_id)`: in Synapse's main
    /// database, not in a separate state database.
    EventAuth,
}

impl Table {
    /// The four state tables, in pg_dump's data order.
    pub const ALL: [Table; 4] = [
        Table::EventToStateGroups,
        Table::StateGroupEdges,
        Table::StateGroups,
        Table::StateGroupsState,
    ];

    /// `event_auth` and the four state tables, in pg_dump's data order.
    pub const WITH_AUTH: [Table; 5] = [
        Table::EventAuth,
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
            Table::EventAuth => "event_auth",
        }
    }

    /// The columns this crate reads and writes, in Synapse's declaration order.
    pub const fn columns(self) -> &'static [&'static str] {
        match self {
            Table::EventToStateGroups => &["event_id", "state_group"],
            Table::StateGroupEdges => &["state_group", "prev_state_group"],
            Table::StateGroups => &["id", "room_id", "event_id"],
            Table::StateGroupsState => &["state_group", "room_id", "type", "state_key", "event_id"],
            Table::EventAuth => &["event_id", "auth_id", "room_id"],
        }
    }

    /// The table called `name` (unqualified, unquoted), if it is one of the
    /// five.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::WITH_AUTH.into_iter().find(|t| t.name() == name)
    }

    /// Whether this is one of the four state tables (not `event_auth`).
    pub const fn is_state(self) -> bool {
        !matches!(self, Table::EventAuth)
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
