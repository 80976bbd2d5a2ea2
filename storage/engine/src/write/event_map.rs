//! The two indexes of event mappings: `event_groups` (stored event id ->
//! group) and `group_events` (group + a part of the stored id -> empty).
//! A hash-form id keeps only its first 5 bytes in the reverse index, so
//! two events of one group may share a reverse entry; these helpers find
//! the events behind an entry.

use mxstate_api::{GroupId, Result};

use crate::format::values;
use crate::kv::{Cf, KvStore};

/// The stored ids of the events behind reverse entry `part` of group `g`:
/// the events whose stored id starts with `part` (is `part`, for a text
/// id) and that `event_groups` maps to `g`.
pub fn events_of_part(kv: &dyn KvStore, part: &[u8], g: GroupId) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    if part.first() == Some(&b'$') {
        if let Some(v) = kv.get(Cf::EventGroups, part)? {
            if values::decode_event_group(&v)? == g {
                out.push(part.to_vec());
            }
        }
        return Ok(out);
    }
    kv.scan_prefix(Cf::EventGroups, part, &mut |k, v| {
        if values::decode_event_group(v)? == g {
            out.push(k.to_vec());
        }
        Ok(true)
    })?;
    Ok(out)
}
