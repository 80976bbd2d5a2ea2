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
    pub snap: u64,
    pub t: TypeNid,
    pub ty: Arc<str>,
    pub sec: Arc<Section>,
    pub strings: Arc<SectionStrings>,
}

/// An entry of a view that is not in a shared section, resolved.
pub(crate) struct LooseEntry {
    pub key: IKey,
    pub event: EventNid,
    pub ty: Arc<str>,
    pub skey: Arc<str>,
    pub ev: Arc<str>,
}

/// The state of a group, read-only, sharing its big parts with the caches.
pub struct StateView {
    pub(crate) loose: Vec<LooseEntry>,
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
        let loose = self.loose();
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

    /// The whole snapshot sections the view shares (see [`SectionView`]).
    pub fn sections(&self) -> impl Iterator<Item = SectionView<'_>> + '_ {
        self.parts.iter().map(move |part| SectionView { part, view: self })
    }

    /// The entries that are not in a shared section (from deltas and
    /// single-key reads): `(type, state_key, event_id)`.
    pub fn loose(&self) -> impl Iterator<Item = (&str, &str, &str)> + '_ {
        self.loose.iter().map(|l| (&*l.ty, &*l.skey, &*l.ev))
    }

    /// [`StateView::loose`] with the interned ids of each entry:
    /// `(key id, event id, type, state_key, event_id)`. An id names the same
    /// string for the life of the database (strings are never re-interned),
    /// so a caller may keep objects made from the strings by id.
    pub fn loose_with_ids(&self) -> impl Iterator<Item = (u64, u64, &str, &str, &str)> + '_ {
        self.loose.iter().map(|l| (l.key, l.event, &*l.ty, &*l.skey, &*l.ev))
    }

    /// The view copied into a map.
    pub fn to_map(&self) -> StateMap {
        let mut out = StateMap::with_capacity_and_hasher(self.len, Default::default());
        for l in &self.loose {
            out.insert(
                StateKey::from_validated(l.ty.clone(), l.skey.clone()),
                EventId::from_validated(l.ev.clone()),
            );
        }
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

/// One whole snapshot section of a view: every state key of one event type
/// in one snapshot. A section never changes once written, so its [`id`]
/// names the same entries for the life of the database: a caller may keep
/// derived objects (such as Python strings) per section and index.
///
/// [`id`]: SectionView::id
pub struct SectionView<'a> {
    part: &'a ViewPart,
    view: &'a StateView,
}

impl<'a> SectionView<'a> {
    /// The section's identity: `(snapshot id, type nid)`.
    pub fn id(&self) -> (u64, u32) {
        (self.part.snap, self.part.t)
    }

    /// The event type of every entry.
    pub fn event_type(&self) -> &'a str {
        &self.part.ty
    }

    /// Every entry of the section, in index order: `(state_key, event_id)`,
    /// including those the view shadows.
    pub fn all(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let strings = &self.part.strings;
        strings.skeys.iter().zip(&strings.events).map(|(s, e)| (&**s, &**e))
    }

    /// Number of entries in the section (shadowed ones included).
    pub fn len(&self) -> usize {
        self.part.sec.skeys.len()
    }

    /// Whether the section is empty.
    pub fn is_empty(&self) -> bool {
        self.part.sec.skeys.is_empty()
    }

    /// The indexes (into [`SectionView::all`]) of the entries that are in
    /// the view: every entry but those a nearer delta decided.
    pub fn visible(&self) -> impl Iterator<Item = usize> + 'a {
        let (part, shadowed) = (self.part, &self.view.shadowed);
        part.sec
            .skeys
            .iter()
            .enumerate()
            .filter(move |(_, &s)| shadowed.is_empty() || !shadowed.contains_key(&ikey(part.t, s)))
            .map(|(i, _)| i)
    }
}
