//! mxstate-synapse-import: Synapse's state tables into an mxstate
//! database, and back-checking a database against them.
//!
//! [`Importer`] takes `synapse_dump::Record`s in any order, in bounded
//! memory: rows are spilled to a scratch store sorted by group, then stored
//! group by group in id order, in atomic batches, keeping Synapse's ids.
//! While an import runs the database carries an *import incomplete* marker;
//! opening it for reading fails until an import finishes. Rerunning the
//! same import resumes: groups already stored are skipped. Rerunning an
//! import that completed changes nothing: the source's [`Fingerprint`]
//! is remembered with the completion, and [`Finished::AlreadyComplete`]
//! says so.
//!
//! Synapse's `event_auth` rows (given as `synapse_dump::AuthEdge`s, e.g.
//! through [`Importer::add_row`]) are spilled the same way, sorted by room
//! and event, and added to the engine's auth index room by room in bounded
//! batches after the groups; rows naming an invalid id are counted and
//! left out.
//!
//! [`Verifier`] recomputes each group's state from the source with
//! Synapse's meaning and compares it with the database's answer; given
//! `event_auth` rows, it also compares a sample of auth chains and auth
//! chain differences with plain walks of the source's edges.

mod error;
mod fingerprint;
mod groups;
mod importer;
mod staged;
mod verify;
mod verify_auth;

pub use error::{Cause, ImportError, Result};
pub use fingerprint::Fingerprint;
pub use importer::{Finished, Importer};
pub use verify::{AuthMismatch, GroupStates, Mismatch, PlainState, Verifier, VerifyReport};

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    pub rows: u64,
    pub groups_read: u64,
    pub edges: u64,
    pub groups_stored: u64,
    pub groups_skipped: u64,
    pub rooms: u64,
    pub mappings_stored: u64,
    /// Event mappings naming a group that does not exist (left out).
    pub mappings_unknown_group: u64,
    /// Edges naming a prev group absent from every table (group kept as a root).
    pub dangling_prevs: u64,
    /// `event_auth` rows read with valid ids (a repeated row counts each time).
    pub auth_rows: u64,
    /// `event_auth` rows left out because an id is not a valid room or event id.
    pub auth_rows_invalid: u64,
    /// Events whose auth events were added to the auth index (on a resumed
    /// import, those added before count again: adding them is a no-op).
    pub auth_events: u64,
    /// Rooms with `event_auth` rows.
    pub auth_rooms: u64,
}

/// Phases reported to the progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Groups,
    Mappings,
    /// Events added to the auth index.
    Auth,
}
