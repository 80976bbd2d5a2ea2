//! Target `records`: every record decoder of the engine's on-disk format,
//! through [`mxstate_engine::decode_record`].
//!
//! Input layout ([`record_input`] builds it): one byte picking the column
//! family (an index into [`Cf::ALL`], modulo its length), the key's length
//! as two big-endian bytes, the key, then the value. A length past the end
//! makes the rest the key and the value empty. Decoding must give `Ok` or
//! an error of kind `Corrupt`: bytes from disk never panic, and a record
//! claiming a huge length is refused before anything that big is allocated.
//! Records whose encoder is reachable are also re-encoded and decoded again.

use mxstate_api::ErrorKind;
use mxstate_engine::kv::Cf;
use mxstate_engine::{decode_record, Record};

/// The fuzz input that stands for the record `key -> value` of `cf`.
pub fn record_input(cf: Cf, key: &[u8], value: &[u8]) -> Vec<u8> {
    let index = Cf::ALL.iter().position(|&c| c == cf).unwrap_or(0);
    let len = u16::try_from(key.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(3 + key.len() + value.len());
    out.push(u8::try_from(index).unwrap_or(0));
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(key.get(..usize::from(len)).unwrap_or(key));
    out.extend_from_slice(value);
    out
}

/// Splits a fuzz input into column family, key and value.
fn split(data: &[u8]) -> Option<(Cf, &[u8], &[u8])> {
    let (&pick, rest) = data.split_first()?;
    let cf = *Cf::ALL.get(usize::from(pick) % Cf::ALL.len())?;
    let (len, rest) = match rest {
        [high, low, rest @ ..] => (usize::from(u16::from_be_bytes([*high, *low])), rest),
        _ => (rest.len(), rest),
    };
    Some(match (rest.get(..len), rest.get(len..)) {
        (Some(key), Some(value)) => (cf, key, value),
        _ => (cf, rest, &[][..]),
    })
}

/// The value re-encoded from a decoded record, for the record kinds whose
/// encoder is reachable from outside the engine (methods of the decoded
/// values): groups, snapshot headers and sections, counters, pending
/// deletions, the format version.
fn reencode(record: &Record) -> Option<Vec<u8>> {
    Some(match record {
        Record::Group { id, record } => {
            let mut out = Vec::new();
            record.encode(*id, &mut out);
            out
        }
        Record::SnapHeader { header, .. } => header.encode(),
        Record::SnapSection { section, .. } => section.encode(),
        Record::Counters(counters) => counters.encode(),
        Record::PendingDeletion { pending, .. } => pending.encode(),
        Record::Format(version) => version.to_bytes().to_vec(),
        _ => return None,
    })
}

/// Fuzz target: see the module documentation.
pub fn records(data: &[u8]) {
    let Some((cf, key, value)) = split(data) else {
        return;
    };
    let record = match decode_record(cf, key, value) {
        Ok(record) => record,
        Err(err) => {
            assert_eq!(
                err.kind(),
                ErrorKind::Corrupt,
                "{}: a bad record must be Corrupt: {err}",
                cf.name()
            );
            assert!(!err.to_string().is_empty());
            return;
        }
    };
    // decode -> encode -> decode gives the same record.
    if let Some(encoded) = reencode(&record) {
        match decode_record(cf, key, &encoded) {
            Ok(again) => assert_eq!(again, record, "{}: re-encoded record differs", cf.name()),
            Err(err) => panic!("{}: re-encoded record does not decode: {err}", cf.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_inputs() {
        let input = record_input(Cf::Groups, b"key", b"value");
        assert_eq!(split(&input), Some((Cf::Groups, &b"key"[..], &b"value"[..])));
        assert_eq!(split(&[3, 0]), Some((Cf::ALL[3], &[0u8][..], &[][..])));
        assert_eq!(
            split(&[200, 0, 9, 1]),
            Some((Cf::ALL[200 % Cf::ALL.len()], &[1u8][..], &[][..]))
        );
        assert_eq!(split(&[]), None);
    }

    #[test]
    fn fixed_inputs() {
        for cf in Cf::ALL {
            for (key, value) in [
                (&b""[..], &b""[..]),
                (&[0u8; 8][..], &[1u8][..]),
                (&[0u8, 0, 0, 0, 0, 0, 0, 1], &[1u8, 0, 0xff, 0xff, 0xff, 0xff, 0x0f][..]),
                (b"R!room:x", &[0u8, 0, 0, 0, 0, 0, 0, 1][..]),
                (b"counters", &[0xff; 20][..]),
            ] {
                records(&record_input(cf, key, value));
            }
        }
    }
}
