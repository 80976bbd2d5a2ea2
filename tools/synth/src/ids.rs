//! Matrix-shaped identifiers: room ids, event ids, user ids.
//!
//! * room ids: `!` + 18 ASCII letters + `:synth.test` (as Synapse's
//!   `random_string(18)`);
//! * event ids: `$` + 43 URL-safe base64 characters, the shape of room
//!   version 4+ ids (an unpadded base64 of a 32-byte hash); here the 32 bytes
//!   are four SplitMix64 finalisations of `(seed, counter)`, so ids are
//!   unique within a seed and cheap to make;
//! * user ids: `@user<n>:synth.test`.

use crate::rng::{mix64, Rng};

/// The server name used by every synthetic identifier.
pub const SERVER_NAME: &str = "synth.test";

/// Length of an event id in bytes (`$` + 43 base64 characters).
pub const EVENT_ID_LEN: usize = 44;

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const LETTERS: &[u8; 52] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Appends the event id number `counter` of seed `seed` to `out`.
///
/// The first 64 bits are a bijection of `counter` for a fixed seed, so two
/// counters never collide.
pub fn push_event_id(seed: u64, counter: u64, out: &mut String) {
    let key = mix64(seed ^ 0x005E_ED0F_E7E2_7155);
    let mut bytes = [0u8; 32];
    let first = mix64(counter ^ key);
    for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
        let word = if i == 0 {
            first
        } else {
            mix64(first.wrapping_add((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) ^ key)
        };
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    out.push('$');
    push_base64url(&bytes, out);
}

/// Unpadded URL-safe base64 of `bytes`, appended to `out`.
fn push_base64url(bytes: &[u8], out: &mut String) {
    let mut chunks = bytes.chunks_exact(3);
    for c in &mut chunks {
        let n = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
        for shift in [18, 12, 6, 0] {
            out.push(char::from(B64URL[((n >> shift) & 63) as usize]));
        }
    }
    let rest = chunks.remainder();
    match rest.len() {
        1 => {
            let n = u32::from(rest[0]) << 16;
            for shift in [18, 12] {
                out.push(char::from(B64URL[((n >> shift) & 63) as usize]));
            }
        }
        2 => {
            let n = (u32::from(rest[0]) << 16) | (u32::from(rest[1]) << 8);
            for shift in [18, 12, 6] {
                out.push(char::from(B64URL[((n >> shift) & 63) as usize]));
            }
        }
        _ => {}
    }
}

/// A random room id: `!` + 18 letters + `:synth.test`.
pub(crate) fn room_id(rng: &mut Rng) -> String {
    let mut s = String::with_capacity(19 + 1 + SERVER_NAME.len());
    s.push('!');
    for _ in 0..18 {
        s.push(char::from(LETTERS[rng.index(LETTERS.len())]));
    }
    s.push(':');
    s.push_str(SERVER_NAME);
    s
}

/// The user id `@user<n>:synth.test`.
pub fn user_id(n: u64) -> String {
    format!("@user{n}:{SERVER_NAME}")
}

/// True if `s` is a well-formed synthetic event id.
pub fn is_event_id(s: &str) -> bool {
    s.len() == EVENT_ID_LEN && s.starts_with('$') && s.bytes().skip(1).all(|b| B64URL.contains(&b))
}

/// True if `s` is a well-formed synthetic room id.
pub fn is_room_id(s: &str) -> bool {
    match s.strip_prefix('!').and_then(|r| r.split_once(':')) {
        Some((local, server)) => {
            local.len() == 18 && local.bytes().all(|b| b.is_ascii_alphabetic()) && server == SERVER_NAME
        }
        None => false,
    }
}

/// True if `s` is a well-formed synthetic user id.
pub fn is_user_id(s: &str) -> bool {
    match s.strip_prefix("@user").and_then(|r| r.split_once(':')) {
        Some((n, server)) => !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && server == SERVER_NAME,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_well_formed_and_distinct() {
        let mut a = String::new();
        let mut b = String::new();
        push_event_id(1, 0, &mut a);
        push_event_id(1, 1, &mut b);
        assert!(is_event_id(&a), "{a}");
        assert!(is_event_id(&b), "{b}");
        assert_ne!(a, b);
        let mut c = String::new();
        push_event_id(2, 0, &mut c);
        assert_ne!(a, c);
    }

    #[test]
    fn base64_matches_reference() {
        let mut s = String::new();
        push_base64url(b"\xfb\xff\xbf", &mut s);
        assert_eq!(s, "-_-_");
        s.clear();
        push_base64url(b"ab", &mut s);
        assert_eq!(s, "YWI");
    }

    #[test]
    fn room_and_user_ids() {
        let mut r = Rng::new(3, 3);
        let id = room_id(&mut r);
        assert!(is_room_id(&id), "{id}");
        assert!(is_user_id(&user_id(42)));
        assert!(!is_user_id("@bob:synth.test"));
    }
}
