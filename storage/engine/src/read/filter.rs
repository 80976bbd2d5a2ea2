//! A `StateFilter` translated to interned ids.

use rustc_hash::FxHashMap;

use crate::format::keys::{self, ikey_skey, ikey_type, IKey, SkeyNid, StrKind, TypeNid};
use mxstate_api::Result;
use mxstate_api::{StateFilter, TypeScope};

/// How an interned filter treats one type.
#[derive(Debug, Clone)]
pub enum IScope {
    All,
    /// Sorted state-key nids.
    Keys(Vec<SkeyNid>),
    Nothing,
}

/// An interned filter. Strings never interned cannot be in any state, so
/// they are dropped.
#[derive(Debug, Clone)]
pub struct IFilter {
    types: FxHashMap<TypeNid, IScope>,
    include_others: bool,
}

impl IFilter {
    /// Interns `f` with `lookup(kind, text) -> nid`.
    pub fn new(f: &StateFilter, mut lookup: impl FnMut(StrKind, &str) -> Result<Option<u64>>) -> Result<Self> {
        let mut types = FxHashMap::default();
        for t in f.types().keys() {
            let Some(tn) = lookup(StrKind::Type, t)? else { continue };
            let scope = match f.scope(t) {
                TypeScope::All => IScope::All,
                TypeScope::Nothing => IScope::Nothing,
                TypeScope::Keys(keys) => {
                    let mut nids = Vec::with_capacity(keys.len());
                    for k in keys {
                        if let Some(n) = lookup(StrKind::Skey, k)? {
                            nids.push(keys::skey_nid(n)?);
                        }
                    }
                    nids.sort_unstable();
                    nids.dedup();
                    if nids.is_empty() {
                        IScope::Nothing
                    } else {
                        IScope::Keys(nids)
                    }
                }
            };
            types.insert(keys::type_nid(tn)?, scope);
        }
        Ok(IFilter {
            types,
            include_others: f.include_others(),
        })
    }

    /// Everything.
    /// Whether the filter takes every entry.
    pub fn is_all(&self) -> bool {
        self.include_others && self.types.values().all(|s| matches!(s, IScope::All))
    }

    pub fn all() -> Self {
        IFilter {
            types: FxHashMap::default(),
            include_others: true,
        }
    }

    /// When the filter names only single keys (no whole type, no others):
    /// those keys, sorted.
    pub fn point_keys(&self) -> Option<Vec<IKey>> {
        if self.include_others {
            return None;
        }
        let mut out = Vec::new();
        for (&t, s) in &self.types {
            match s {
                IScope::All => return None,
                IScope::Nothing => {}
                IScope::Keys(ks) => out.extend(ks.iter().map(|&k| crate::format::keys::ikey(t, k))),
            }
        }
        out.sort_unstable();
        Some(out)
    }

    /// The scope of type `t`.
    pub fn scope(&self, t: TypeNid) -> &IScope {
        match self.types.get(&t) {
            Some(s) => s,
            None if self.include_others => &IScope::All,
            None => &IScope::Nothing,
        }
    }

    /// Whether `k` passes.
    pub fn matches(&self, k: IKey) -> bool {
        match self.scope(ikey_type(k)) {
            IScope::All => true,
            IScope::Nothing => false,
            IScope::Keys(ks) => ks.binary_search(&ikey_skey(k)).is_ok(),
        }
    }
}
