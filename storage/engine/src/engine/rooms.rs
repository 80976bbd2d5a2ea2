//! Rooms: their groups, and purges.

use mxstate_api::{Error, GroupId, Result, RoomId};

use crate::format::keys::StrKind;
use crate::kv::Cf;
use crate::write::{purge, room_index};

use super::Engine;

impl Engine {
    /// The groups of a room, ascending.
    pub fn room_groups(&self, room: &RoomId) -> Result<Vec<GroupId>> {
        let _shared = self.read_gate()?;
        let Some(rn) = self.room_nid(room)? else {
            return Ok(Vec::new());
        };
        Ok(room_index::members(&*self.kv, rn)?
            .into_iter()
            .filter(|m| !m.1)
            .map(|m| m.0)
            .collect())
    }

    /// The ids of all rooms with groups or current state.
    pub fn rooms(&self) -> Result<Vec<RoomId>> {
        let _shared = self.read_gate()?;
        let mut out = Vec::new();
        self.kv.scan_prefix(Cf::Strings, &[StrKind::Room as u8], &mut |k, _| {
            let s = std::str::from_utf8(k.get(1..).unwrap_or_default())
                .map_err(|_| Error::corrupt("room id", "strings/R", "not UTF-8"))?;
            out.push(RoomId::parse(s)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Deletes a room: its groups, snapshots, event mappings and current state.
    pub fn purge_room(&self, room: &RoomId) -> Result<()> {
        let Some(rn) = self.room_nid(room)? else {
            return Err(Error::UnknownRoom(room.to_string()));
        };
        self.write(|txn| purge::purge_room(txn, rn))?;
        self.forget_auth_graph(rn)
    }

    /// Deletes groups no event refers to, leaving every other group's state as it was.
    pub fn purge_groups(&self, room: &RoomId, groups: &[GroupId]) -> Result<()> {
        let Some(rn) = self.room_nid(room)? else {
            return Err(Error::UnknownRoom(room.to_string()));
        };
        self.write(|txn| purge::purge_groups(txn, rn, room.as_str(), groups))
    }
}
