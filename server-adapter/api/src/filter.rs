//! `StateFilter`, with Synapse's semantics.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};

/// Which part of a state to return.
///
/// For each listed type: `None` means every state key of that type,
/// `Some(set)` only those keys (an empty set: none of that type). Types not
/// listed are returned in full when `include_others` is set, else not at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateFilter {
    types: BTreeMap<String, Option<BTreeSet<String>>>,
    include_others: bool,
}

/// How a filter treats one event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeScope<'a> {
    /// Every key of the type.
    All,
    /// Only these keys.
    Keys(&'a BTreeSet<String>),
    /// None of the type.
    Nothing,
}

impl StateFilter {
    /// Everything.
    pub fn all() -> Self {
        StateFilter {
            types: BTreeMap::new(),
            include_others: true,
        }
    }
    /// Nothing.
    pub fn none() -> Self {
        StateFilter::default()
    }
    /// Only the given `(type, Some(state_key) | None = all keys)` pairs.
    pub fn from_types<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Self {
        let mut f = StateFilter::none();
        for (t, k) in pairs {
            f.add(t, k);
        }
        f
    }
    /// The filter of the command-line form `--type TYPE[,STATE_KEY]`, one
    /// argument per element of `types`: `TYPE` alone lists every state key
    /// of the type, `TYPE,KEY` one key (everything after the first comma,
    /// which may be empty or hold more commas). No argument at all means
    /// everything (`include_others` is then ignored); otherwise unlisted
    /// types are returned as `include_others` says.
    ///
    /// Errors: [`Error::EmptyEventType`] (kind `InvalidInput`, carrying the
    /// argument's state key) for an argument whose type is empty, such as
    /// `""` or `",key"`; [`StateFilter::parse_type_arg`] tells which.
    pub fn from_type_args(types: &[impl AsRef<str>], include_others: bool) -> Result<Self> {
        if types.is_empty() {
            return Ok(StateFilter::all());
        }
        let mut f = StateFilter::none().with_include_others(include_others);
        for arg in types {
            let (event_type, state_key) = Self::parse_type_arg(arg.as_ref())?;
            f.add(event_type, state_key);
        }
        Ok(f)
    }
    /// Splits one `TYPE[,STATE_KEY]` argument at its first comma: the type
    /// and, when there is a comma, the state key. Fails with
    /// [`Error::EmptyEventType`] when the type is empty.
    pub fn parse_type_arg(arg: &str) -> Result<(&str, Option<&str>)> {
        let (event_type, state_key) = match arg.split_once(',') {
            Some((event_type, state_key)) => (event_type, Some(state_key)),
            None => (arg, None),
        };
        if event_type.is_empty() {
            return Err(Error::EmptyEventType(state_key.unwrap_or_default().to_owned()));
        }
        Ok((event_type, state_key))
    }
    /// Everything but the given types.
    pub fn all_except_types<'a>(types: impl IntoIterator<Item = &'a str>) -> Self {
        let mut f = StateFilter::all();
        for t in types {
            f.types.insert(t.to_owned(), Some(BTreeSet::new()));
        }
        f
    }
    /// Adds a type (all keys with `None`) or one key of a type.
    pub fn add(&mut self, event_type: &str, state_key: Option<&str>) -> &mut Self {
        match state_key {
            None => {
                self.types.insert(event_type.to_owned(), None);
            }
            Some(k) => {
                let entry = self
                    .types
                    .entry(event_type.to_owned())
                    .or_insert_with(|| Some(BTreeSet::new()));
                if let Some(set) = entry {
                    set.insert(k.to_owned());
                }
            }
        }
        self
    }
    /// Lists a type with no state key: none of that type, whatever
    /// `include_others` says.
    pub fn add_none_of(&mut self, event_type: &str) -> &mut Self {
        self.types.insert(event_type.to_owned(), Some(BTreeSet::new()));
        self
    }
    /// Sets whether unlisted types are included.
    pub fn with_include_others(mut self, include_others: bool) -> Self {
        self.include_others = include_others;
        self
    }
    /// Whether unlisted types are included.
    pub fn include_others(&self) -> bool {
        self.include_others
    }
    /// The listed types.
    pub fn types(&self) -> &BTreeMap<String, Option<BTreeSet<String>>> {
        &self.types
    }
    /// True when the filter lets everything through.
    pub fn is_full(&self) -> bool {
        self.include_others && self.types.values().all(Option::is_none)
    }
    /// True when the filter lets nothing through.
    pub fn is_empty(&self) -> bool {
        !self.include_others && self.types.values().all(|v| matches!(v, Some(s) if s.is_empty()))
    }
    /// How the filter treats `event_type`.
    pub fn scope(&self, event_type: &str) -> TypeScope<'_> {
        match self.types.get(event_type) {
            Some(None) => TypeScope::All,
            Some(Some(keys)) if keys.is_empty() => TypeScope::Nothing,
            Some(Some(keys)) => TypeScope::Keys(keys),
            None if self.include_others => TypeScope::All,
            None => TypeScope::Nothing,
        }
    }
    /// Whether `(event_type, state_key)` passes.
    pub fn matches(&self, event_type: &str, state_key: &str) -> bool {
        match self.scope(event_type) {
            TypeScope::All => true,
            TypeScope::Keys(keys) => keys.contains(state_key),
            TypeScope::Nothing => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synapse_semantics() {
        let all = StateFilter::all();
        assert!(all.matches("m.room.member", "@a:b") && all.is_full() && !all.is_empty());
        let none = StateFilter::none();
        assert!(!none.matches("m.room.name", "") && none.is_empty());
        let no_members = StateFilter::all_except_types(["m.room.member"]);
        assert!(!no_members.matches("m.room.member", "@a:b"));
        assert!(no_members.matches("m.room.name", ""));
        let one = StateFilter::from_types([("m.room.power_levels", Some(""))]);
        assert!(one.matches("m.room.power_levels", ""));
        assert!(!one.matches("m.room.power_levels", "x"));
        assert!(!one.matches("m.room.name", ""));
        let mut some = StateFilter::from_types([("m.room.member", Some("@a:b"))]).with_include_others(true);
        assert!(some.matches("m.room.name", "") && some.matches("m.room.member", "@a:b"));
        assert!(!some.matches("m.room.member", "@c:d"));
        some.add("m.room.member", None);
        assert!(some.matches("m.room.member", "@c:d"));
    }

    #[test]
    fn type_args() {
        let none: [&str; 0] = [];
        assert_eq!(
            StateFilter::from_type_args(&none, false).expect("empty"),
            StateFilter::all()
        );
        let f =
            StateFilter::from_type_args(&["m.room.member,@a:b", "m.room.name", "x,a,b", "y,"], false).expect("parses");
        assert!(f.matches("m.room.member", "@a:b") && !f.matches("m.room.member", "@c:d"));
        assert!(f.matches("m.room.name", "anything"));
        assert!(f.matches("x", "a,b") && !f.matches("x", "a"));
        assert!(f.matches("y", "") && !f.matches("y", "z"));
        assert!(!f.matches("m.room.topic", ""));
        let others = StateFilter::from_type_args(&["m.room.member,@a:b"], true).expect("parses");
        assert!(others.matches("m.room.topic", "") && !others.matches("m.room.member", "@c:d"));
        for bad in ["", ",", ",key"] {
            let err = StateFilter::from_type_args(&["ok", bad], false).expect_err(bad);
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{bad:?}");
            assert!(StateFilter::parse_type_arg(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            StateFilter::parse_type_arg("t,k,l").expect("parses"),
            ("t", Some("k,l"))
        );
    }
}
