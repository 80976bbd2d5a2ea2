//! Which group holds the state at each event (Synapse's
//! `event_to_state_groups`), indexed both ways.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use mxstate_api::{Error, EventId, GroupId, Result};

use crate::access::{intern, Source};
use crate::format::keys::{self, StrKind};
use crate::format::values;
use crate::kv::Cf;

use super::Engine;

impl Engine {
    /// Maps events to the groups holding the state at them.
    pub fn set_event_groups(&self, pairs: &[(EventId, GroupId)]) -> Result<()> {
        self.write(|txn| {
            let names: Vec<&str> = pairs.iter().map(|(e, _)| e.as_str()).collect();
            let nids = txn.intern_many(StrKind::Event, &names)?;
            // Only events interned before this call can have a mapping already.
            let known: Vec<u64> = nids.iter().filter(|n| !n.1).map(|n| n.0).collect();
            let ks: Vec<Vec<u8>> = known.iter().map(|&n| keys::event_key(n).to_vec()).collect();
            let mut current: FxHashMap<u64, GroupId> = FxHashMap::default();
            for (&n, v) in known.iter().zip(txn.kv().multi_get(Cf::EventGroups, &ks)?) {
                if let Some(v) = v {
                    current.insert(n, values::decode_event_group(&v)?);
                }
            }
            for ((_, g), &(en, _)) in pairs.iter().zip(&nids) {
                if txn.record(*g)?.is_none_or(|r| r.ghost) {
                    return Err(Error::UnknownGroup(*g));
                }
                let old = current.insert(en, *g);
                txn.put_event_group(en, *g, old);
            }
            Ok(())
        })
    }

    /// The groups of the given events (unknown events are left out).
    pub fn event_groups(&self, events: &[EventId]) -> Result<BTreeMap<EventId, GroupId>> {
        let _shared = self.read_gate()?;
        let mut found = Vec::new();
        let mut ks = Vec::new();
        for e in events {
            if let Some(n) = self.lookup(StrKind::Event, e.as_str())? {
                found.push(e);
                ks.push(keys::event_key(n).to_vec());
            }
        }
        let mut out = BTreeMap::new();
        for (e, v) in found.into_iter().zip(self.kv.multi_get(Cf::EventGroups, &ks)?) {
            if let Some(v) = v {
                out.insert(e.clone(), values::decode_event_group(&v)?);
            }
        }
        Ok(out)
    }

    /// Visits every `(event, group)` mapping.
    pub fn for_each_event_group(&self, visit: &mut dyn FnMut(&EventId, GroupId) -> Result<()>) -> Result<()> {
        self.kv.scan_prefix(Cf::EventGroups, &[], &mut |k, v| {
            let en = keys::parse_u64(k, "event_groups key")?;
            let g = values::decode_event_group(v)?;
            let e = EventId::from_validated(intern::resolve_one(&*self.kv, &self.caches, StrKind::Event, en)?);
            visit(&e, g)?;
            Ok(true)
        })
    }
}
