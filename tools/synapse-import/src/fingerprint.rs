//! [`Fingerprint`]: what identifies a source's content, so that rerunning
//! an import that already completed is recognised without storing anything.

use mxstate_synapse_dump::{AuthEdge, Record, SourceRow};
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

/// An order-independent digest of a source's records: the wrapping sum of
/// each record's 128-bit hash, and their number. The same tables give the
/// same fingerprint whether they come from a plain dump, a custom-format
/// dump or a live database, in any row order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fingerprint {
    sum: u128,
    count: u64,
}

impl Fingerprint {
    /// Adds one row of any table.
    pub fn add_row(&mut self, row: &SourceRow) {
        match row {
            SourceRow::State(r) => self.add(r),
            SourceRow::Auth(a) => self.add_auth(a),
        }
    }

    /// Adds one `event_auth` row (valid or not: it is part of the source).
    pub fn add_auth(&mut self, edge: &AuthEdge) {
        let mut h = Xxh3::new();
        let mut field = |bytes: &[u8]| {
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(b"event_auth");
        field(edge.event_id.as_bytes());
        field(edge.auth_id.as_bytes());
        field(edge.room_id.as_bytes());
        self.push(h.digest128());
    }

    fn push(&mut self, hash: u128) {
        self.sum = self.sum.wrapping_add(hash);
        self.count += 1;
    }

    /// Adds one record.
    pub fn add(&mut self, record: &Record) {
        let mut h = Xxh3::new();
        let mut field = |bytes: &[u8]| {
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        match record {
            Record::StateGroup { id, room_id, event_id } => {
                field(b"state_groups");
                field(&id.to_le_bytes());
                field(room_id.as_bytes());
                field(event_id.as_bytes());
            }
            Record::Edge {
                state_group,
                prev_state_group,
            } => {
                field(b"state_group_edges");
                field(&state_group.to_le_bytes());
                field(&prev_state_group.to_le_bytes());
            }
            Record::StateRow {
                state_group,
                room_id,
                event_type,
                state_key,
                event_id,
            } => {
                field(b"state_groups_state");
                field(&state_group.to_le_bytes());
                field(room_id.as_bytes());
                field(event_type.as_bytes());
                field(state_key.as_bytes());
                field(event_id.as_bytes());
            }
            Record::EventToStateGroup { event_id, state_group } => {
                field(b"event_to_state_groups");
                field(event_id.as_bytes());
                field(&state_group.to_le_bytes());
            }
        }
        self.push(h.digest128());
    }

    /// The digest.
    pub fn value(&self) -> u128 {
        let mut bytes = [0u8; 24];
        bytes[..16].copy_from_slice(&self.sum.to_le_bytes());
        bytes[16..].copy_from_slice(&self.count.to_le_bytes());
        xxh3_128(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(g: i64, key: &str) -> Record {
        Record::StateRow {
            state_group: g,
            room_id: "!r:x".into(),
            event_type: "m.room.member".into(),
            state_key: key.into(),
            event_id: "$e".into(),
        }
    }

    fn of(records: &[Record]) -> u128 {
        let mut f = Fingerprint::default();
        records.iter().for_each(|r| f.add(r));
        f.value()
    }

    #[test]
    fn order_does_not_matter_content_does() {
        let a = [row(1, "@a:x"), row(2, "@b:x")];
        let b = [row(2, "@b:x"), row(1, "@a:x")];
        assert_eq!(of(&a), of(&b));
        assert_ne!(of(&a), of(&[row(1, "@a:x"), row(2, "@c:x")]));
        assert_ne!(of(&a), of(&[row(1, "@a:x")]));
        // Fields are delimited: moving a byte between fields changes it.
        let c = [Record::EventToStateGroup {
            event_id: "$e1".into(),
            state_group: 1,
        }];
        let d = [Record::EventToStateGroup {
            event_id: "$e".into(),
            state_group: 1,
        }];
        assert_ne!(of(&c), of(&d));
    }

    #[test]
    fn auth_rows_count() {
        let edge = |e: &str, a: &str| AuthEdge {
            event_id: e.into(),
            auth_id: a.into(),
            room_id: "!r:x".into(),
        };
        let base = of(&[row(1, "@a:x")]);
        let with = |edges: &[AuthEdge]| {
            let mut f = Fingerprint::default();
            f.add(&row(1, "@a:x"));
            edges.iter().for_each(|e| f.add_auth(e));
            f.value()
        };
        assert_eq!(with(&[]), base, "no event_auth rows: the state-only fingerprint");
        assert_ne!(with(&[edge("$e", "$a")]), base);
        assert_ne!(with(&[edge("$e", "$a")]), with(&[edge("$e", "$b")]));
        assert_ne!(with(&[edge("$e", "$a")]), with(&[edge("$a", "$e")]));
        assert_eq!(
            with(&[edge("$e", "$a"), edge("$e", "$b")]),
            with(&[edge("$e", "$b"), edge("$e", "$a")])
        );
    }
}
