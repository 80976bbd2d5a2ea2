//! Target `filter`: the `--type TYPE[,STATE_KEY]` parser
//! ([`StateFilter::from_type_args`]) and the other filter constructors.
//!
//! Input: the first byte's low bit is `include_others`; the rest, as lossy
//! UTF-8, is split at newlines into the arguments. The built filter must
//! do what the arguments say, for the listed keys, a key not listed, and a
//! type not listed; [`StateFilter::from_types`] and
//! [`StateFilter::all_except_types`] are checked on the same arguments.

use std::collections::{BTreeMap, BTreeSet};

use mxstate_api::{ErrorKind, StateFilter};

/// What the arguments ask for: per type, `None` for every key, else the keys.
type Expected<'a> = BTreeMap<&'a str, Option<BTreeSet<&'a str>>>;

/// The arguments' meaning, computed independently of the parser; `None`
/// when one of them has an empty type.
fn expected<'a>(args: &[&'a str]) -> Option<Expected<'a>> {
    let mut want: Expected<'a> = BTreeMap::new();
    for arg in args {
        let (event_type, key) = match arg.find(',') {
            Some(i) => (arg.get(..i)?, Some(arg.get(i + 1..)?)),
            None => (*arg, None),
        };
        if event_type.is_empty() {
            return None;
        }
        match key {
            None => {
                want.insert(event_type, None);
            }
            Some(key) => {
                if let Some(keys) = want.entry(event_type).or_insert_with(|| Some(BTreeSet::new())) {
                    keys.insert(key);
                }
            }
        }
    }
    Some(want)
}

/// A string that is none of `taken`.
fn absent<'a>(taken: impl Iterator<Item = &'a str>) -> String {
    let longest = taken.map(str::len).max().unwrap_or(0);
    "\u{1}".repeat(longest + 1)
}

/// Checks `filter` against the arguments' meaning.
fn check(filter: &StateFilter, want: &Expected<'_>, include_others: bool) {
    let other_type = absent(want.keys().copied());
    assert_eq!(filter.matches(&other_type, ""), include_others, "unlisted type");
    for (event_type, keys) in want {
        match keys {
            None => {
                assert!(filter.matches(event_type, ""), "{event_type:?}: all keys");
                assert!(filter.matches(event_type, &other_type), "{event_type:?}: all keys");
            }
            Some(keys) => {
                for key in keys {
                    assert!(filter.matches(event_type, key), "{event_type:?},{key:?} listed");
                }
                let other_key = absent(keys.iter().copied());
                assert!(
                    !filter.matches(event_type, &other_key),
                    "{event_type:?}: key not listed"
                );
            }
        }
    }
    assert_eq!(filter.include_others(), include_others);
    assert_eq!(filter.types().len(), want.len());
}

/// Fuzz target: see the module documentation.
pub fn filter(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let include_others = flags & 1 != 0;
    let text = String::from_utf8_lossy(rest);
    let args: Vec<&str> = if text.is_empty() {
        Vec::new()
    } else {
        text.split('\n').collect()
    };
    let parsed = StateFilter::from_type_args(&args, include_others);
    let Some(want) = expected(&args) else {
        let err = parsed.expect_err("an argument with an empty type must be refused");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(args.iter().any(|a| StateFilter::parse_type_arg(a).is_err()));
        return;
    };
    let filter = match parsed {
        Ok(filter) => filter,
        Err(err) => panic!("{args:?} refused: {err}"),
    };
    if args.is_empty() {
        assert_eq!(filter, StateFilter::all(), "no --type means everything");
        return;
    }
    check(&filter, &want, include_others);
    let full = include_others && want.values().all(Option::is_none);
    assert_eq!(filter.is_full(), full, "is_full");
    let empty = !include_others && want.values().all(|k| k.as_ref().is_some_and(BTreeSet::is_empty));
    assert_eq!(filter.is_empty(), empty, "is_empty");
    // The same pairs through from_types.
    let pairs = args.iter().filter_map(|a| StateFilter::parse_type_arg(a).ok());
    let from_types = StateFilter::from_types(pairs).with_include_others(include_others);
    assert_eq!(from_types, filter, "from_types differs from from_type_args");
    // Everything but the listed types.
    let except = StateFilter::all_except_types(want.keys().copied());
    for event_type in want.keys() {
        assert!(!except.matches(event_type, ""), "{event_type:?} excepted");
    }
    assert!(except.matches(&absent(want.keys().copied()), ""), "unlisted type kept");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_inputs() {
        for input in [
            &b""[..],
            b"\0",
            b"\x01",
            b"\0m.room.member",
            b"\x01m.room.member,@a:b\nm.room.name",
            b"\0x,\nx,a,b\nx",
            b"\0,key",
            b"\x01\n",
            b"\0t\n\nu",
            b"\0\xff,\xfe",
        ] {
            filter(input);
        }
    }
}
