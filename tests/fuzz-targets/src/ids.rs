//! Target `ids`: the identifier parsers of mxstate-api.
//!
//! The input, as (lossy) UTF-8, goes to [`RoomId::parse`] and
//! [`EventId::parse`]; split at its first NUL or newline it is an event type
//! and a state key for [`StateKey::new`]. Accepted ids must keep their text
//! and satisfy the grammar; refused ones must fail with kind `InvalidInput`.

use mxstate_api::{ErrorKind, EventId, RoomId, StateKey};

/// Longest identifier Matrix allows, in bytes.
const MAX_ID_BYTES: usize = 255;

/// Whether `s` is `SIGIL opaque[:server]` with both parts non-empty, at
/// most 255 bytes and without NUL: the grammar the parsers implement.
fn expected_valid(s: &str, sigil: char) -> bool {
    let Some(rest) = s.strip_prefix(sigil) else {
        return false;
    };
    if s.len() > MAX_ID_BYTES || rest.is_empty() || rest.contains('\0') {
        return false;
    }
    rest.split_once(':')
        .is_none_or(|(local, server)| !local.is_empty() && !server.is_empty())
}

/// Checks one parse result against the grammar.
fn check_id(text: &str, sigil: char, parsed: mxstate_api::Result<String>) {
    let valid = expected_valid(text, sigil);
    match parsed {
        Ok(kept) => {
            assert!(valid, "{text:?} accepted but breaks the {sigil} grammar");
            assert_eq!(kept, text, "a parsed id changed its text");
        }
        Err(err) => {
            assert!(!valid, "{text:?} refused but fits the {sigil} grammar: {err}");
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert!(!err.to_string().is_empty());
        }
    }
}

/// Fuzz target: see the module documentation.
pub fn ids(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_id(&text, '!', RoomId::parse(&*text).map(|id| id.to_string()));
    check_id(&text, '$', EventId::parse(&*text).map(|id| id.as_str().to_owned()));
    // Parsing what a parsed id prints gives the same id.
    if let Ok(room) = RoomId::parse(&*text) {
        assert_eq!(RoomId::parse(room.as_str()).ok(), Some(room));
    }
    let (event_type, state_key) = text.split_once(['\0', '\n']).unwrap_or((&text, ""));
    match StateKey::new(event_type, state_key) {
        Ok(key) => {
            assert!(!event_type.is_empty(), "empty event type accepted");
            assert_eq!((key.event_type(), key.state_key()), (event_type, state_key));
        }
        Err(err) => {
            assert!(event_type.is_empty(), "{event_type:?} refused: {err}");
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_inputs() {
        for input in [
            &b""[..],
            b"!",
            b"!a:b",
            b"!a:",
            b"$event",
            b"$e:server:port",
            b"!\0",
            b"\xff\xfe",
            b"m.room.member\n@a:b",
            b"\n",
        ] {
            ids(input);
        }
        ids(format!("!{}", "a".repeat(300)).as_bytes());
    }
}
