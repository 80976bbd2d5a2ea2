//! Synapse's DDL for its four state tables, as `pg_dump` of a Synapse 1.163
//! database (schema version 94) writes it, without schema qualification so
//! that it follows the connection's `search_path`.
//!
//! [`STATE_TABLES_SQL`] creates the tables and the `state_group_id_seq`
//! sequence Synapse allocates state group ids from; [`STATE_INDEXES_SQL`]
//! adds the constraints and indexes (faster to build after loading data, as
//! `pg_dump` does); [`STATE_SCHEMA_SQL`] is both.

/// The tables (and the id sequence), without indexes.
macro_rules! tables_sql {
    () => {
        "CREATE TABLE event_to_state_groups (
    event_id text NOT NULL,
    state_group bigint NOT NULL
);

CREATE TABLE state_group_edges (
    state_group bigint NOT NULL,
    prev_state_group bigint NOT NULL
);

CREATE SEQUENCE state_group_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

CREATE TABLE state_groups (
    id bigint NOT NULL,
    room_id text NOT NULL,
    event_id text NOT NULL
);

CREATE TABLE state_groups_state (
    state_group bigint NOT NULL,
    room_id text NOT NULL,
    type text NOT NULL,
    state_key text NOT NULL,
    event_id text NOT NULL
);
ALTER TABLE ONLY state_groups_state ALTER COLUMN state_group SET (n_distinct=-0.02);
"
    };
}

/// Constraints and indexes of the four tables.
macro_rules! indexes_sql {
    () => {
        "
ALTER TABLE ONLY event_to_state_groups
    ADD CONSTRAINT event_to_state_groups_event_id_key UNIQUE (event_id);

ALTER TABLE ONLY state_groups
    ADD CONSTRAINT state_groups_pkey PRIMARY KEY (id);

CREATE INDEX event_to_state_groups_sg_index ON event_to_state_groups USING btree (state_group);

CREATE INDEX state_group_edges_prev_idx ON state_group_edges USING btree (prev_state_group);

CREATE UNIQUE INDEX state_group_edges_unique_idx ON state_group_edges USING btree (state_group, prev_state_group);

CREATE INDEX state_groups_room_id_idx ON state_groups USING btree (room_id);

CREATE INDEX state_groups_state_type_idx ON state_groups_state USING btree (state_group, type, state_key);
"
    };
}

/// Creates the four tables and `state_group_id_seq`, without indexes.
pub const STATE_TABLES_SQL: &str = tables_sql!();

/// Adds Synapse's constraints and indexes to the four tables.
pub const STATE_INDEXES_SQL: &str = indexes_sql!();

/// Creates exactly Synapse's four state tables (plus `state_group_id_seq`)
/// with Synapse's constraints and indexes.
pub const STATE_SCHEMA_SQL: &str = concat!(tables_sql!(), indexes_sql!());

/// Synapse's main-database tables of auth events and of the chain cover
/// index over them (`event_auth`, `event_auth_chains`,
/// `event_auth_chain_links`, and the `event_auth_chain_id` sequence), as a
/// Synapse 1.163 database has them, without indexes.
pub const AUTH_TABLES_SQL: &str = "CREATE TABLE event_auth (
    event_id text NOT NULL,
    auth_id text NOT NULL,
    room_id text NOT NULL
);

CREATE SEQUENCE event_auth_chain_id
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

CREATE TABLE event_auth_chain_links (
    origin_chain_id bigint NOT NULL,
    origin_sequence_number bigint NOT NULL,
    target_chain_id bigint NOT NULL,
    target_sequence_number bigint NOT NULL
);
ALTER TABLE event_auth_chain_links ALTER origin_chain_id SET (n_distinct = -0.5);
ALTER TABLE event_auth_chain_links ALTER target_chain_id SET (n_distinct = -0.5);

CREATE TABLE event_auth_chains (
    event_id text NOT NULL,
    chain_id bigint NOT NULL,
    sequence_number bigint NOT NULL
);
";

/// The constraints and indexes of [`AUTH_TABLES_SQL`]'s tables (schema
/// version 94: `event_auth_chain_links_origin_index` comes from the
/// background update of delta 84).
pub const AUTH_INDEXES_SQL: &str = "
ALTER TABLE ONLY event_auth_chains
    ADD CONSTRAINT event_auth_chains_pkey PRIMARY KEY (event_id);

CREATE INDEX evauth_edges_id ON event_auth USING btree (event_id);

CREATE INDEX event_auth_chain_links_idx ON event_auth_chain_links USING btree (origin_chain_id, target_chain_id);

CREATE INDEX event_auth_chain_links_origin_index ON event_auth_chain_links USING btree (origin_chain_id, origin_sequence_number);

CREATE UNIQUE INDEX event_auth_chains_c_seq_index ON event_auth_chains USING btree (chain_id, sequence_number);
";

/// The SQL that sets `event_auth_chain_id` so that Synapse's next chain id
/// is `last_id + 1`.
pub fn set_auth_chain_sequence_sql(last_id: i64) -> String {
    if last_id < 1 {
        "SELECT pg_catalog.setval('event_auth_chain_id', 1, false);\n".to_owned()
    } else {
        format!("SELECT pg_catalog.setval('event_auth_chain_id', {last_id}, true);\n")
    }
}

/// The SQL that sets `state_group_id_seq` so that Synapse's next state group
/// id is `last_id + 1`.
pub fn set_state_group_sequence_sql(last_id: i64) -> String {
    if last_id < 1 {
        "SELECT pg_catalog.setval('state_group_id_seq', 1, false);\n".to_owned()
    } else {
        format!("SELECT pg_catalog.setval('state_group_id_seq', {last_id}, true);\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every index and constraint named in Synapse's schema is created.
    #[test]
    fn names_every_synapse_index() {
        for name in [
            "state_groups_pkey PRIMARY KEY (id)",
            "state_groups_room_id_idx ON state_groups USING btree (room_id)",
            "UNIQUE INDEX state_group_edges_unique_idx ON state_group_edges USING btree (state_group, prev_state_group)",
            "state_group_edges_prev_idx ON state_group_edges USING btree (prev_state_group)",
            "state_groups_state_type_idx ON state_groups_state USING btree (state_group, type, state_key)",
            "event_to_state_groups_event_id_key UNIQUE (event_id)",
            "event_to_state_groups_sg_index ON event_to_state_groups USING btree (state_group)",
        ] {
            assert!(STATE_SCHEMA_SQL.contains(name), "{name}");
        }
        assert_eq!(STATE_SCHEMA_SQL.matches("CREATE TABLE").count(), 4);
    }
}
