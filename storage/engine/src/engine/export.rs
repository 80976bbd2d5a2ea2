//! A group as Synapse's tables would hold it, for `mxstate export`.

use mxstate_api::{Error, EventId, GroupId, Result, RoomId, StateKey};

use crate::access::Source;
use crate::format::group::GroupRecord;
use crate::format::keys::{self, StrKind};
use crate::kv::Cf;
use crate::read::resolve;

use super::Engine;

/// A group as Synapse's tables hold it (see [`Engine::export_group`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportGroup {
    pub room: RoomId,
    pub event: EventId,
    pub prev: Option<GroupId>,
    /// Sorted rows.
    pub rows: Vec<(StateKey, EventId)>,
}

impl Engine {
    /// A group as Synapse's tables would hold it: its room, event, prev and
    /// rows. A delta with removals (which Synapse cannot express) or a root
    /// comes back as a full state without prev.
    pub fn export_group(&self, group: GroupId) -> Result<ExportGroup> {
        let _shared = self.read_gate()?;
        let src = self.committed();
        let rec = src.existing(group)?;
        if rec.ghost {
            return Err(Error::UnknownGroup(group));
        }
        let room = RoomId::parse(&*self.text(StrKind::Room, u64::from(rec.room))?)?;
        let event = EventId::from_validated(self.text(StrKind::Event, rec.event)?);
        let (prev, entries) = match (rec.prev, rec.logical_delta()) {
            (Some(p), Some(d)) if d.iter().all(|e| e.1.is_some()) => {
                (Some(p), d.iter().filter_map(|&(k, e)| e.map(|e| (k, e))).collect())
            }
            _ => (None, resolve::full_sorted(&src, group)?),
        };
        let state = self.materialize(&entries)?;
        let mut rows: Vec<(StateKey, EventId)> = state.into_iter().collect();
        rows.sort_unstable();
        Ok(ExportGroup {
            room,
            event,
            prev,
            rows,
        })
    }

    /// Visits every group id in ascending order.
    pub fn for_each_group(&self, visit: &mut dyn FnMut(GroupId) -> Result<()>) -> Result<()> {
        self.kv.scan_prefix(Cf::Groups, &[], &mut |k, v| {
            let g = keys::parse_u64(k, "groups key")?;
            if !GroupRecord::decode(g, v)?.ghost {
                visit(g)?;
            }
            Ok(true)
        })
    }
}
