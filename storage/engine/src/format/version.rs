//! The database format version, recorded in `meta` and checked at open.

use mxstate_api::{Error, Result};

/// Format versions this build knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatVersion {
    /// The first format.
    V1 = 1,
    /// Adds the `deletion` column family (Synapse's deletion protocol).
    V2 = 2,
    /// Adds the `auth` column family (each event's auth events).
    V3 = 3,
    /// Event ids as stored hashes (`format::event_key`); event mappings
    /// keyed by event id, mapped events not interned.
    V4 = 4,
    /// The texts of `nids` packed 64 to a value (`format::nid_block`).
    V5 = 5,
    /// Hash-form event ids in `event_groups` buckets
    /// (`format::event_bucket`): an interned one stored once, in `nids`.
    V6 = 6,
}

impl FormatVersion {
    /// The version this build writes.
    pub const CURRENT: FormatVersion = FormatVersion::V6;

    /// The 4-byte little-endian value stored under `meta/format`.
    pub fn to_bytes(self) -> [u8; 4] {
        (self as u32).to_le_bytes()
    }

    /// Parses the stored value.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 4] = bytes.try_into().map_err(|_| {
            Error::corrupt(
                "format version",
                "meta/format",
                format!("{} bytes, want 4", bytes.len()),
            )
        })?;
        FormatVersion::try_from(u32::from_le_bytes(arr))
    }
}

impl TryFrom<u32> for FormatVersion {
    type Error = Error;
    fn try_from(v: u32) -> Result<Self> {
        match v {
            1 => Ok(FormatVersion::V1),
            2 => Ok(FormatVersion::V2),
            3 => Ok(FormatVersion::V3),
            4 => Ok(FormatVersion::V4),
            5 => Ok(FormatVersion::V5),
            6 => Ok(FormatVersion::V6),
            found => Err(Error::UnsupportedFormat {
                found,
                supported: FormatVersion::CURRENT as u32,
            }),
        }
    }
}

/// Version byte leading every record value; bumped with the format.
pub const RECORD_VERSION: u8 = 1;

/// Reads and checks a record's leading version byte.
pub fn check_record(r: &mut crate::format::varint::Reader<'_>) -> Result<()> {
    let v = r.u8()?;
    if v == RECORD_VERSION {
        Ok(())
    } else {
        Err(r.error(format!("record version {v}, this build reads {RECORD_VERSION}")))
    }
}
