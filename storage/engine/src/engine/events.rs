//! Which group holds the state at each event (Synapse's
//! `event_to_state_groups`), indexed both ways. Keyed by the event id in
//! its stored form: mapping an event does not intern it.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use mxstate_api::{Error, EventId, GroupId, Result};

use crate::access::Source;
use crate::format::{event_key, keys, values};
use crate::kv::Cf;
use crate::write::event_map;

use super::Engine;

impl Engine {
    /// Maps events to the groups holding the state at them (an event given
    /// twice takes its last group).
    pub fn set_event_groups(&self, pairs: &[(EventId, GroupId)]) -> Result<()> {
        self.write(|txn| {
            let ks: Vec<Vec<u8>> = pairs.iter().map(|(e, _)| keys::event_key(e.as_str())).collect();
            // Each event's group after this call, in first-seen order.
            let mut after: FxHashMap<&[u8], GroupId> = FxHashMap::default();
            let mut order = Vec::with_capacity(pairs.len());
            for ((_, g), k) in pairs.iter().zip(&ks) {
                if txn.record(*g)?.is_none_or(|r| r.ghost) {
                    return Err(Error::UnknownGroup(*g));
                }
                if after.insert(k, *g).is_none() {
                    order.push(k.as_slice());
                }
            }
            let mut before: FxHashMap<&[u8], GroupId> = FxHashMap::default();
            for (k, v) in ks.iter().zip(txn.kv().multi_get(Cf::EventGroups, &ks)?) {
                if let Some(v) = v {
                    before.insert(k, values::decode_event_group(&v)?);
                }
            }
            // A moved event drops its old group's reverse entry unless an
            // event that stays in that group shares it.
            for &k in &order {
                let g = after[k];
                let Some(&old) = before.get(k).filter(|&&old| old != g) else {
                    continue;
                };
                let others = event_map::events_of_part(txn.kv(), event_key::reverse_part(k), old)?;
                let shared = others
                    .iter()
                    .any(|o| o.as_slice() != k && after.get(o.as_slice()).is_none_or(|&f| f == old));
                if !shared {
                    txn.delete_reverse(k, old);
                }
            }
            // Puts after every drop: an entry dropped for one event and
            // needed by another of this call stays.
            for &k in &order {
                let g = after[k];
                if before.get(k) != Some(&g) {
                    txn.put_event_group(k, g);
                }
            }
            Ok(())
        })
    }

    /// The groups of the given events (unknown events are left out).
    pub fn event_groups(&self, events: &[EventId]) -> Result<BTreeMap<EventId, GroupId>> {
        let _shared = self.read_gate()?;
        let ks: Vec<Vec<u8>> = events.iter().map(|e| keys::event_key(e.as_str())).collect();
        let mut out = BTreeMap::new();
        for (e, v) in events.iter().zip(self.kv.multi_get(Cf::EventGroups, &ks)?) {
            if let Some(v) = v {
                out.insert(e.clone(), values::decode_event_group(&v)?);
            }
        }
        Ok(out)
    }

    /// The group of one event.
    pub(super) fn event_group(&self, event: &EventId) -> Result<Option<GroupId>> {
        match self.kv.get(Cf::EventGroups, &keys::event_key(event.as_str()))? {
            Some(v) => Ok(Some(values::decode_event_group(&v)?)),
            None => Ok(None),
        }
    }

    /// Visits every `(event, group)` mapping.
    pub fn for_each_event_group(&self, visit: &mut dyn FnMut(&EventId, GroupId) -> Result<()>) -> Result<()> {
        self.kv.scan_prefix(Cf::EventGroups, &[], &mut |k, v| {
            let g = values::decode_event_group(v)?;
            let text = event_key::decode(k, || format!("event_groups/{}", crate::format::record::shown(k)))?;
            visit(&EventId::from_validated(std::sync::Arc::from(text)), g)?;
            Ok(true)
        })
    }
}
