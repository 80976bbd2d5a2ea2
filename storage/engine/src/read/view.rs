//! A zero-copy view of a state: whole snapshot sections are shared with the
//! caches instead of copied into a map, so a full read of a big room costs
//! the deltas on its chain, not one allocation per member.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::format::keys::{ikey, EventNid, IKey, TypeNid};
use crate::format::snapshot::Section;
use mxstate_api::EventId;
use mxstate_api::{StateKey, StateMap};

use crate::access::SectionStrings;

pub(crate) struct ViewPart {
    pub t: TypeNid,
    pub ty: Arc<str>,
    pub sec: Arc<Section>,
    pub strings: Arc<SectionStrings>,
}

/// The state of a group, read-only, sharing its big parts with the caches.
pub struct StateView {
    pub(crate) loose: StateMap,
    pub(crate) parts: Vec<ViewPart>,
    pub(crate) shadowed: FxHashMap<IKey, Option<EventNid>>,
    pub(crate) len: usize,
}

impl StateView {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the state is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every `(type, state_key, event_id)`, unordered.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &str)> + '_ {
        let loose = self
            .loose
            .iter()
            .map(|(k, e)| (k.event_type(), k.state_key(), e.as_str()));
        let parts = self.parts.iter().flat_map(move |p| {
            p.sec
                .skeys
                .iter()
                .zip(p.strings.skeys.iter().zip(&p.strings.events))
                .filter(move |(&s, _)| self.shadowed.is_empty() || !self.shadowed.contains_key(&ikey(p.t, s)))
                .map(move |(_, (sk, ev))| (&*p.ty, &**sk, &**ev))
        });
        loose.chain(parts)
    }

    /// The view copied into a map.
    pub fn to_map(&self) -> StateMap {
        let mut out = self.loose.clone();
        out.reserve(self.len.saturating_sub(out.len()));
        for p in &self.parts {
            for ((&s, sk), ev) in p.sec.skeys.iter().zip(&p.strings.skeys).zip(&p.strings.events) {
                if self.shadowed.is_empty() || !self.shadowed.contains_key(&ikey(p.t, s)) {
                    out.insert(
                        StateKey::from_validated(p.ty.clone(), sk.clone()),
                        EventId::from_validated(ev.clone()),
                    );
                }
            }
        }
        out
    }
}
