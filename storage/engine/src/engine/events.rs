//! Which group holds the state at each event (Synapse's
//! `event_to_state_groups`), indexed both ways. Keyed by the event id in
//! its stored form: mapping an event does not intern it.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use mxstate_api::{Error, EventId, GroupId, Result};

use crate::access::{event_index, Source};
use crate::format::{event_key, keys};
use crate::kv::Cf;

use super::Engine;

impl Engine {
    /// Maps events to the groups holding the state at them (an event given
    /// twice takes its last group).
    pub fn set_event_groups(&self, pairs: &[(EventId, GroupId)]) -> Result<()> {
        self.write(|txn| {
            let ks: Vec<Vec<u8>> = pairs.iter().map(|(e, _)| keys::event_key(e.as_str())).collect();
            // Each event's group after this call, in first-seen order.
            let mut after: FxHashMap<&[u8], GroupId> = FxHashMap::default();
            let mut text_of: FxHashMap<&[u8], &str> = FxHashMap::default();
            let mut order = Vec::with_capacity(pairs.len());
            for ((e, g), k) in pairs.iter().zip(&ks) {
                if txn.record(*g)?.is_none_or(|r| r.ghost) {
                    return Err(Error::UnknownGroup(*g));
                }
                if after.insert(k, *g).is_none() {
                    order.push(k.as_slice());
                    text_of.insert(k, e.as_str());
                }
            }
            let texts: Vec<&str> = order.iter().map(|k| text_of[k]).collect();
            let text_values = txn.load_events(&texts)?;
            let mut before: FxHashMap<&[u8], GroupId> = FxHashMap::default();
            for &k in &order {
                if let Some(g) = txn.event_group_of(text_of[k], &text_values)? {
                    before.insert(k, g);
                }
            }
            // A moved event drops its old group's reverse entry unless an
            // event that stays in that group shares it.
            for &k in &order {
                let g = after[k];
                let Some(&old) = before.get(k).filter(|&&old| old != g) else {
                    continue;
                };
                let part = event_key::reverse_part(k);
                let others = txn.events_of_part(part, old)?;
                let shared = others
                    .iter()
                    .any(|o| o.as_slice() != k && after.get(o.as_slice()).is_none_or(|&f| f == old));
                if !shared {
                    txn.delete_reverse(part, old);
                }
            }
            // Puts after every drop: an entry dropped for one event and
            // needed by another of this call stays.
            for &k in &order {
                let g = after[k];
                if before.get(k) != Some(&g) {
                    txn.map_event(text_of[k], g)?;
                }
            }
            Ok(())
        })
    }

    /// The groups of the given events (unknown events are left out).
    pub fn event_groups(&self, events: &[EventId]) -> Result<BTreeMap<EventId, GroupId>> {
        let _shared = self.read_gate()?;
        let texts: Vec<&str> = events.iter().map(EventId::as_str).collect();
        let mut out = BTreeMap::new();
        for (e, g) in events
            .iter()
            .zip(event_index::groups_of(&*self.kv, &self.caches, &texts)?)
        {
            if let Some(g) = g {
                out.insert(e.clone(), g);
            }
        }
        Ok(out)
    }

    /// The group of one event.
    pub(super) fn event_group(&self, event: &EventId) -> Result<Option<GroupId>> {
        Ok(event_index::groups_of(&*self.kv, &self.caches, &[event.as_str()])?
            .pop()
            .flatten())
    }

    /// Visits every `(event, group)` mapping.
    pub fn for_each_event_group(&self, visit: &mut dyn FnMut(&EventId, GroupId) -> Result<()>) -> Result<()> {
        let (kv, caches) = (&*self.kv, &self.caches);
        kv.scan_prefix(Cf::EventGroups, &[], &mut |k, v| {
            event_index::each_mapping(kv, caches, k, v, &mut |text, g| {
                visit(&EventId::from_validated(text), g)
            })?;
            Ok(true)
        })
    }
}
