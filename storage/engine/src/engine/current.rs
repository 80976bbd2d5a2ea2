//! A room's current state.

use mxstate_api::{Result, RoomId, StateFilter, StateMap};

use crate::format::keys::{self, RoomNid, StrKind};
use crate::format::values;
use crate::kv::Cf;

use super::Engine;

impl Engine {
    /// Replaces a room's current state.
    pub fn set_current_state(&self, room: &RoomId, state: &StateMap) -> Result<()> {
        self.write(|txn| {
            let rn = txn.intern_room(room.as_str())?;
            txn.clear_current(rn)?;
            for (k, e) in state {
                let ik = txn.intern_key(k.event_type(), k.state_key())?;
                let en = txn.intern(StrKind::Event, e.as_str())?;
                txn.put_current(rn, ik, en);
            }
            Ok(())
        })
    }

    /// A room's current state, restricted to `filter`.
    pub fn current_state(&self, room: &RoomId, filter: &StateFilter) -> Result<StateMap> {
        let _shared = self.read_gate()?;
        let Some(rn) = self.room_nid(room)? else {
            return Ok(StateMap::default());
        };
        let f = self.ifilter(filter)?;
        let mut entries = Vec::new();
        self.kv
            .scan_prefix(Cf::CurrentState, &keys::room_prefix(rn), &mut |k, v| {
                let ik = keys::suffix_u64(k, 4, "current_state key")?;
                if f.matches(ik) {
                    entries.push((ik, values::decode_current_event(v)?));
                }
                Ok(true)
            })?;
        self.materialize(&entries)
    }

    pub(super) fn room_nid(&self, room: &RoomId) -> Result<Option<RoomNid>> {
        match self.lookup(StrKind::Room, room.as_str())? {
            Some(n) => Ok(Some(keys::room_nid(n)?)),
            None => Ok(None),
        }
    }
}
