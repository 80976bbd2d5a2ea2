//! Validated Matrix identifiers, checked once at the boundary.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// Longest identifier Matrix allows, in bytes.
const MAX_ID_BYTES: usize = 255;

/// A state group id. Ids are positive; 0 is reserved.
pub type GroupId = u64;

/// A room id: `!opaque:server`, or `!opaque` (room version 12 and later).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(Arc<str>);

/// An event id: `$opaque` (room versions 1-2 add `:server`, later ones do not).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(Arc<str>);

fn valid_sigil_id(s: &str, sigil: char) -> bool {
    let Some(rest) = s.strip_prefix(sigil) else {
        return false;
    };
    if s.len() > MAX_ID_BYTES || rest.is_empty() || rest.contains('\0') {
        return false;
    }
    match rest.split_once(':') {
        Some((local, server)) => !local.is_empty() && !server.is_empty(),
        None => true,
    }
}

impl RoomId {
    /// Validates `s` as a room id.
    pub fn parse(s: impl AsRef<str>) -> Result<Self> {
        let s = s.as_ref();
        if valid_sigil_id(s, '!') {
            Ok(RoomId(Arc::from(s)))
        } else {
            Err(Error::InvalidRoomId(s.to_owned()))
        }
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl EventId {
    /// Validates `s` as an event id.
    pub fn parse(s: impl AsRef<str>) -> Result<Self> {
        let s = s.as_ref();
        if valid_sigil_id(s, '$') {
            Ok(EventId(Arc::from(s)))
        } else {
            Err(Error::InvalidEventId(s.to_owned()))
        }
    }
    /// Whether `s` is a valid event id ([`EventId::parse`] without the
    /// copy).
    pub fn is_valid(s: &str) -> bool {
        valid_sigil_id(s, '$')
    }
    /// Wraps text that was validated before, such as an id a store read back
    /// from its own database (it validated the id on the way in). Skips the
    /// check, so that a full state costs no per-entry validation.
    pub fn from_validated(s: Arc<str>) -> Self {
        EventId(s)
    }
    /// The id as a shared string.
    pub fn as_arc(&self) -> &Arc<str> {
        &self.0
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! id_traits {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }
        impl std::borrow::Borrow<str> for $t {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}
id_traits!(RoomId);
id_traits!(EventId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids() {
        assert!(RoomId::parse("!abc:example.org").is_ok());
        assert!(RoomId::parse("!obqqEUoNLqCgVwGzJ40hI89LtCZI0Ge8YTrG-KVhSno").is_ok());
        for bad in ["", "!", "abc:example.org", "$abc:x", "!abc:", "!:x", "!a\0b"] {
            assert!(RoomId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(RoomId::parse(format!("!{}", "a".repeat(255))).is_err());
    }

    #[test]
    fn event_ids() {
        assert!(EventId::parse("$t1SgRipvyNAsbTmzyVPJTUbxqLO9tTPgIzhk-CGHblY").is_ok());
        assert!(EventId::parse("$1234:matrix.org").is_ok());
        for bad in ["", "$", "!abc", "abc", "$:x", "$a:"] {
            assert!(EventId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
