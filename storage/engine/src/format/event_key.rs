//! Event ids as stored (format 4): the bytes of an event id in keys and
//! values.
//!
//! Event ids of room versions 3 and later are `$` and the unpadded base64
//! of a 32-byte hash (standard alphabet in version 3, URL-safe from version
//! 4). Such an id is stored as a tag byte and the 32 hash bytes; any other
//! id as its UTF-8 text, which starts with `$`, so the forms never collide:
//!
//! | first byte | form |
//! |---|---|
//! | `01` | `$` + standard base64 (no padding) of the 32 bytes that follow |
//! | `02` | `$` + URL-safe base64 (no padding) of the 32 bytes that follow |
//! | `$` | the id's UTF-8 text, whole |
//!
//! An id takes a hash form only when re-encoding the bytes gives the id
//! back exactly (canonical base64), so decoding always restores the text.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;

use mxstate_api::{Error, Result};

/// Tag of a hash in the standard alphabet (room version 3).
pub const STANDARD: u8 = 1;
/// Tag of a hash in the URL-safe alphabet (room versions 4 and later).
pub const URL_SAFE: u8 = 2;
/// Length of a stored hash form: the tag and 32 bytes.
pub const HASH_LEN: usize = 33;
/// Characters of unpadded base64 of 32 bytes.
const B64_LEN: usize = 43;

/// The stored bytes of event id `id` (validated by the caller).
pub fn encode(id: &str) -> Vec<u8> {
    if let Some(k) = hash_form(id) {
        return k.to_vec();
    }
    id.as_bytes().to_vec()
}

/// The hash form of `id`, when it has one.
pub fn hash_form(id: &str) -> Option<[u8; HASH_LEN]> {
    let b64 = id.strip_prefix('$')?;
    if b64.len() != B64_LEN {
        return None;
    }
    // Without `+` `/` `-` `_` both alphabets read the same bytes: URL-safe
    // (the alphabet of every room version since 4) is tried first.
    for (tag, engine) in [(URL_SAFE, &URL_SAFE_NO_PAD), (STANDARD, &STANDARD_NO_PAD)] {
        let mut out = [0u8; HASH_LEN];
        out[0] = tag;
        let Some(hash) = out.get_mut(1..) else { continue };
        if matches!(engine.decode_slice(b64, hash), Ok(32)) && engine.encode(hash) == b64 {
            return Some(out);
        }
    }
    None
}

/// The event id stored as `bytes`; `at` names where they were read.
pub fn decode(bytes: &[u8], at: impl FnOnce() -> String) -> Result<String> {
    let bad = |detail: &str| Error::corrupt("event id", at(), detail.to_owned());
    match bytes.first() {
        Some(&tag @ (STANDARD | URL_SAFE)) => {
            let Some(hash) = bytes.get(1..).filter(|h| h.len() == 32) else {
                return Err(bad(&format!("hash form of {} bytes, want {HASH_LEN}", bytes.len())));
            };
            let engine = if tag == STANDARD {
                &STANDARD_NO_PAD
            } else {
                &URL_SAFE_NO_PAD
            };
            let mut s = String::with_capacity(1 + B64_LEN);
            s.push('$');
            engine.encode_string(hash, &mut s);
            Ok(s)
        }
        Some(b'$') => String::from_utf8(bytes.to_vec()).map_err(|_| bad("text form is not UTF-8")),
        Some(b) => Err(bad(&format!("unknown form byte {b:#04x}"))),
        None => Err(bad("empty")),
    }
}

/// The base64 alphabet and the 32 hash bytes of a stored hash form.
fn hash_parts(bytes: &[u8]) -> Option<(&'static base64::engine::GeneralPurpose, &[u8])> {
    let (&tag, hash) = bytes.split_first()?;
    if hash.len() + 1 != HASH_LEN {
        return None;
    }
    match tag {
        STANDARD => Some((&STANDARD_NO_PAD, hash)),
        URL_SAFE => Some((&URL_SAFE_NO_PAD, hash)),
        _ => None,
    }
}

/// [`decode`] into a shared string, with no intermediate `String` (the
/// hash form is encoded on the stack).
pub fn decode_arc(bytes: &[u8], at: impl FnOnce() -> String) -> Result<std::sync::Arc<str>> {
    if let Some((engine, hash)) = hash_parts(bytes) {
        let mut buf = [b'$'; 1 + B64_LEN];
        let written = match buf.get_mut(1..) {
            Some(out) => engine.encode_slice(hash, out).ok(),
            None => None,
        };
        if written == Some(B64_LEN) {
            if let Ok(s) = std::str::from_utf8(&buf) {
                return Ok(std::sync::Arc::from(s));
            }
        }
    }
    decode(bytes, at).map(std::sync::Arc::from)
}

/// [`decode`], appended to `out` (no allocation when `out` has room).
pub fn decode_into(bytes: &[u8], out: &mut String, at: impl FnOnce() -> String) -> Result<()> {
    if let Some((engine, hash)) = hash_parts(bytes) {
        out.push('$');
        engine.encode_string(hash, out);
        return Ok(());
    }
    out.push_str(&decode(bytes, at)?);
    Ok(())
}

/// The prefix of a stored id that `group_events` keeps: the tag and the
/// first 4 hash bytes of a hash form (enough to find the id in
/// `event_groups` with a prefix scan), the whole text of a text form.
pub fn reverse_part(key: &[u8]) -> &[u8] {
    match key.first() {
        Some(&(STANDARD | URL_SAFE)) => key.get(..5).unwrap_or(key),
        _ => key,
    }
}

/// Whether `b` is the first byte of a hash form.
pub fn is_hash_tag(b: u8) -> bool {
    matches!(b, STANDARD | URL_SAFE)
}

/// Whether `key` is a stored id (any form; its text form is not
/// validated here).
pub fn is_event_key(key: &[u8]) -> bool {
    match key.first() {
        Some(&(STANDARD | URL_SAFE)) => key.len() == HASH_LEN,
        Some(b'$') => key.len() > 1,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> String {
        "test".into()
    }

    #[test]
    fn hash_ids_take_33_bytes_and_come_back() {
        for id in [
            "$nhoOxp-crew8Ub2zMn7_4eaYebDbtjQoQayD71VfU34",
            "$JLFoDwfMIMtFR6sC2CsZNRiwMMhdS0mNp9LgSGvdUXA",
            "$C+Bs7GoaO2nXD5ShBLi+/LZIqlyiZUpTRSuuBppTXh4",
        ] {
            let k = encode(id);
            assert_eq!(k.len(), HASH_LEN, "{id}");
            assert_eq!(decode(&k, at).unwrap(), id);
            assert_eq!(&*decode_arc(&k, at).unwrap(), id);
        }
        assert_eq!(encode("$C+Bs7GoaO2nXD5ShBLi+/LZIqlyiZUpTRSuuBppTXh4")[0], STANDARD);
        assert_eq!(encode("$nhoOxp-crew8Ub2zMn7_4eaYebDbtjQoQayD71VfU34")[0], URL_SAFE);
    }

    #[test]
    fn other_ids_stay_text() {
        for id in [
            "$e",
            "$1234567890abcdef:example.org",
            // Non-canonical: the last character's unused bits are set.
            "$JLFoDwfMIMtFR6sC2CsZNRiwMMhdS0mNp9LgSGvdUXB",
            // Both alphabets at once.
            "$C+Bs7GoaO2nXD5ShBLi+_LZIqlyiZUpTRSuuBppTXh4",
            // 44 characters.
            "$JLFoDwfMIMtFR6sC2CsZNRiwMMhdS0mNp9LgSGvdUXAA",
        ] {
            let k = encode(id);
            assert_eq!(k, id.as_bytes(), "{id}");
            assert_eq!(decode(&k, at).unwrap(), id);
            assert_eq!(&*decode_arc(&k, at).unwrap(), id);
        }
    }

    #[test]
    fn refuses_damaged_bytes() {
        assert!(decode(b"", at).is_err());
        assert!(decode(&[URL_SAFE; 5], at).is_err());
        assert!(decode_arc(&[URL_SAFE; 5], at).is_err());
        assert!(decode_arc(&[STANDARD; 34], at).is_err());
        assert!(decode(&[7, 1, 2], at).is_err());
        assert!(decode(b"$\xff\xfe", at).is_err());
        let mut k = encode("$JLFoDwfMIMtFR6sC2CsZNRiwMMhdS0mNp9LgSGvdUXA");
        k.push(0);
        assert!(decode(&k, at).is_err());
    }

    #[test]
    fn reverse_part_is_a_prefix() {
        let k = encode("$JLFoDwfMIMtFR6sC2CsZNRiwMMhdS0mNp9LgSGvdUXA");
        assert_eq!(reverse_part(&k), &k[..5]);
        assert_eq!(reverse_part(b"$x:y"), b"$x:y");
    }
}
