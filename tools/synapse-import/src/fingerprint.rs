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
        self.push(digest(&[
            b"event_auth",
            edge.event_id.as_bytes(),
            edge.auth_id.as_bytes(),
            edge.room_id.as_bytes(),
        ]));
    }

    fn push(&mut self, hash: u128) {
        self.sum = self.sum.wrapping_add(hash);
        self.count += 1;
    }

    /// Adds one record.
    pub fn add(&mut self, record: &Record) {
        let hash = match record {
            Record::StateGroup { id, room_id, event_id } => digest(&[
                b"state_groups",
                &id.to_le_bytes(),
                room_id.as_bytes(),
                event_id.as_bytes(),
            ]),
            Record::Edge {
                state_group,
                prev_state_group,
            } => digest(&[
                b"state_group_edges",
                &state_group.to_le_bytes(),
                &prev_state_group.to_le_bytes(),
            ]),
            Record::StateRow {
                state_group,
                room_id,
                event_type,
                state_key,
                event_id,
            } => digest(&[
                b"state_groups_state",
                &state_group.to_le_bytes(),
                room_id.as_bytes(),
                event_type.as_bytes(),
                state_key.as_bytes(),
                event_id.as_bytes(),
            ]),
            Record::EventToStateGroup { event_id, state_group } => digest(&[
                b"event_to_state_groups",
                event_id.as_bytes(),
                &state_group.to_le_bytes(),
            ]),
        };
        self.push(hash);
    }

    /// The digest.
    pub fn value(&self) -> u128 {
        let mut bytes = [0u8; 24];
        bytes[..16].copy_from_slice(&self.sum.to_le_bytes());
        bytes[16..].copy_from_slice(&self.count.to_le_bytes());
        xxh3_128(&bytes)
    }
}

/// Bytes hashed in one call when a row fits (most do).
const ONE_SHOT: usize = 512;

/// XXH3-128 of the fields, each preceded by its length (u64 LE): hashed in
/// one call from a stack buffer when they fit, streamed otherwise (the
/// same digest either way).
fn digest(fields: &[&[u8]]) -> u128 {
    let total: usize = fields.iter().map(|f| 8 + f.len()).sum();
    if total <= ONE_SHOT {
        let mut buf = [0u8; ONE_SHOT];
        let mut at = 0;
        for f in fields {
            buf[at..at + 8].copy_from_slice(&(f.len() as u64).to_le_bytes());
            buf[at + 8..at + 8 + f.len()].copy_from_slice(f);
            at += 8 + f.len();
        }
        return xxh3_128(&buf[..at]);
    }
    streamed(fields)
}

fn streamed(fields: &[&[u8]]) -> u128 {
    let mut h = Xxh3::new();
    for f in fields {
        h.update(&(f.len() as u64).to_le_bytes());
        h.update(f);
    }
    h.digest128()
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_shot_and_streamed_digests_agree() {
        let long = "x".repeat(2 * ONE_SHOT);
        for fields in [
            vec![&b"state_groups"[..], &7i64.to_le_bytes(), b"!r:x", b"$e"],
            vec![&b""[..]],
            vec![&b"a"[..], long.as_bytes()],
            vec![&long.as_bytes()[..ONE_SHOT - 16]],
        ] {
            assert_eq!(digest(&fields), streamed(&fields));
        }
        // The value completed imports were recorded with (format kept).
        let mut f = Fingerprint::default();
        f.add(&row(1, "@a:x"));
        assert_eq!(f.value(), 0xe699_83ea_ea06_7b3d_1675_159d_2a99_86a7);
    }

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
