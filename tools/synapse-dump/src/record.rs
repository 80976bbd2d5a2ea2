//! [`Record`]: one row of one of the four state tables; [`AuthEdge`]: one
//! `event_auth` row; [`SourceRow`]: either.

use crate::table::Table;

/// One row of a Synapse state table, as read from a dump or a live database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Record {
    /// A `state_groups` row: a state group, its room and the event that created it.
    StateGroup {
        /// `state_groups.id`.
        id: i64,
        /// `state_groups.room_id`.
        room_id: String,
        /// `state_groups.event_id`.
        event_id: String,
    },
    /// A `state_group_edges` row: `state_group` is a delta on top of `prev_state_group`.
    Edge {
        /// `state_group_edges.state_group`.
        state_group: i64,
        /// `state_group_edges.prev_state_group`.
        prev_state_group: i64,
    },
    /// A `state_groups_state` row: one `(type, state_key) -> event_id` entry of a group.
    StateRow {
        /// `state_groups_state.state_group`.
        state_group: i64,
        /// `state_groups_state.room_id`.
        room_id: String,
        /// `state_groups_state.type`.
        event_type: String,
        /// `state_groups_state.state_key`.
        state_key: String,
        /// `state_groups_state.event_id`.
        event_id: String,
    },
    /// An `event_to_state_groups` row: the state group after an event.
    EventToStateGroup {
        /// `event_to_state_groups.event_id`.
        event_id: String,
        /// `event_to_state_groups.state_group`.
        state_group: i64,
    },
}

impl Record {
    /// The table this record belongs to.
    pub fn table(&self) -> Table {
        match self {
            Record::StateGroup { .. } => Table::StateGroups,
            Record::Edge { .. } => Table::StateGroupEdges,
            Record::StateRow { .. } => Table::StateGroupsState,
            Record::EventToStateGroup { .. } => Table::EventToStateGroups,
        }
    }
}

/// An `event_auth` row: `auth_id` is one of the auth events of `event_id`.
/// Read only when asked for ([`crate::Include::StateAndAuth`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuthEdge {
    /// `event_auth.event_id`.
    pub event_id: String,
    /// `event_auth.auth_id`.
    pub auth_id: String,
    /// `event_auth.room_id`.
    pub room_id: String,
}

/// One row of any table a reader reads: a state table's [`Record`], or an
/// `event_auth` row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceRow {
    /// A row of one of the four state tables.
    State(Record),
    /// An `event_auth` row.
    Auth(AuthEdge),
}

impl SourceRow {
    /// A row that allocates nothing, to be overwritten (e.g. by
    /// [`crate::DumpReader::next_row_into`]).
    pub fn placeholder() -> Self {
        SourceRow::State(Record::Edge {
            state_group: 0,
            prev_state_group: 0,
        })
    }

    /// A row of `table` with empty strings and zero ids.
    pub(crate) fn empty(table: Table) -> Self {
        match table {
            Table::EventAuth => SourceRow::Auth(AuthEdge {
                event_id: String::new(),
                auth_id: String::new(),
                room_id: String::new(),
            }),
            Table::EventToStateGroups => SourceRow::State(Record::EventToStateGroup {
                event_id: String::new(),
                state_group: 0,
            }),
            Table::StateGroupEdges => SourceRow::placeholder(),
            Table::StateGroups => SourceRow::State(Record::StateGroup {
                id: 0,
                room_id: String::new(),
                event_id: String::new(),
            }),
            Table::StateGroupsState => SourceRow::State(Record::StateRow {
                state_group: 0,
                room_id: String::new(),
                event_type: String::new(),
                state_key: String::new(),
                event_id: String::new(),
            }),
        }
    }

    /// The table this row belongs to.
    pub fn table(&self) -> Table {
        match self {
            SourceRow::State(r) => r.table(),
            SourceRow::Auth(_) => Table::EventAuth,
        }
    }
}

/// Which tables a reader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Include {
    /// The four state tables ([`Table::ALL`]); `event_auth` is skipped.
    #[default]
    State,
    /// The four state tables and `event_auth` ([`Table::WITH_AUTH`]).
    StateAndAuth,
}

impl Include {
    /// The tables read, in pg_dump's data order.
    pub fn tables(self) -> &'static [Table] {
        match self {
            Include::State => &Table::ALL,
            Include::StateAndAuth => &Table::WITH_AUTH,
        }
    }

    /// Whether `table` is read.
    pub fn reads(self, table: Table) -> bool {
        table.is_state() || self == Include::StateAndAuth
    }
}
