//! Group records, their chains, and the `room_groups` index.

use mxstate_api::Result;

use crate::access::Source;
use crate::format::delta::Entry;
use crate::format::group::{GroupRecord, Physical};
use crate::format::keys::{self, ikey_skey, ikey_type, RoomNid, ROOM_GHOST, ROOM_RANGE};
use crate::format::record::Record;
use crate::kv::Cf;

use super::Checker;

impl Checker<'_> {
    /// Every group: ids and nids below the counters, links to existing
    /// groups of the same room, a chain that ends in a snapshot within the
    /// policy's bound, and a place in the room index.
    pub(super) fn groups(&mut self) -> Result<()> {
        self.each(Cf::Groups, |c, r| {
            if let Record::Group { id, record } = r {
                c.group(id, &record)?;
            }
            Ok(())
        })
    }

    fn group(&mut self, g: u64, rec: &GroupRecord) -> Result<()> {
        let at = || format!("groups/{g}");
        self.report.groups += 1;
        if rec.ghost {
            self.report.ghosts += 1;
        }
        self.below("group id", g, self.counters.group, at);
        self.below("room nid", u64::from(rec.room), self.counters.room, at);
        self.below("event nid", rec.event, self.counters.event, at);
        if let Some(p) = rec.prev {
            match self.src.record(p) {
                Ok(Some(prev)) if prev.ghost => {
                    self.problem("group links", at(), format!("prev {p} is a deleted (ghost) group"))
                }
                Ok(Some(prev)) if prev.room != rec.room => {
                    self.problem("group links", at(), format!("prev {p} is in another room"))
                }
                Ok(Some(_)) => {}
                Ok(None) => self.problem("group links", at(), format!("prev {p} does not exist")),
                Err(e) => self.problem("group links", at(), format!("prev {p}: {e}")),
            }
        }
        match &rec.physical {
            Physical::Snapshot(s) => {
                *self.snap_refs.entry(*s).or_default() += 1;
            }
            Physical::Delta { base, delta } => {
                self.entries(g, delta);
                match self.src.record(*base) {
                    Ok(Some(b)) if b.room != rec.room => {
                        self.problem("group links", at(), format!("base {base} is in another room"))
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => self.problem("group links", at(), format!("base {base} does not exist")),
                    Err(e) => self.problem("group links", at(), format!("base {base}: {e}")),
                }
            }
        }
        if let Some(l) = &rec.logical {
            self.entries(g, l);
        }
        match self.src.chain(g) {
            Ok(chain) => {
                let hops = chain.deltas.len() as u64;
                if hops > self.policy.max_hops() {
                    self.problem(
                        "chain within bound",
                        at(),
                        format!(
                            "{hops} deltas before the snapshot, the policy allows {}",
                            self.policy.max_hops()
                        ),
                    );
                }
                if let Err(e) = self.src.header(chain.snap) {
                    self.problem("group resolves", at(), format!("snapshot {}: {e}", chain.snap));
                }
            }
            Err(e) => self.problem("group resolves", at(), e.to_string()),
        }
        self.indexed(g, rec)
    }

    /// Checks a delta's nids against the counters.
    fn entries(&mut self, g: u64, delta: &[Entry]) {
        for &(k, e) in delta {
            let at = || format!("groups/{g}");
            self.below("event type nid", u64::from(ikey_type(k)), self.counters.event_type, at);
            self.below("state key nid", u64::from(ikey_skey(k)), self.counters.skey, at);
            if let Some(e) = e {
                self.below("event nid", e, self.counters.event, at);
            }
        }
    }

    /// The group is in a range of its room, and a ghost has its ghost entry.
    fn indexed(&mut self, g: u64, rec: &GroupRecord) -> Result<()> {
        let lower = keys::room_group_key(rec.room, ROOM_RANGE, 0);
        let mut upper = keys::room_group_key(rec.room, ROOM_RANGE, g).to_vec();
        upper.push(0);
        let mut covering = None;
        let kv = self.kv;
        kv.scan_range_rev(Cf::RoomGroups, &lower, &upper, &mut |k, v| {
            covering = Some((k.to_vec(), v.to_vec()));
            Ok(false)
        })?;
        let covered = match covering {
            Some((k, v)) => match crate::format::record::decode_record(Cf::RoomGroups, &k, &v) {
                Ok(Record::RoomRange { start, end, .. }) => start <= g && g <= end,
                _ => false, // reported by the room index walk
            },
            None => false,
        };
        if !covered {
            self.problem(
                "room index matches groups",
                format!("groups/{g}"),
                format!("not in any range of its room (nid {})", rec.room),
            );
        }
        if rec.ghost
            && self
                .kv
                .get(Cf::RoomGroups, &keys::room_group_key(rec.room, ROOM_GHOST, g))?
                .is_none()
        {
            self.problem(
                "room index matches groups",
                format!("groups/{g}"),
                "a ghost without its room_groups ghost entry",
            );
        }
        Ok(())
    }

    /// The room index: ranges that do not overlap, cover exactly the
    /// stored groups, and ghost entries naming ghost groups of the room.
    pub(super) fn room_index(&mut self) -> Result<()> {
        let mut covered = 0u64;
        let mut last: Option<(RoomNid, u64)> = None;
        self.each(Cf::RoomGroups, |c, r| {
            match r {
                Record::RoomRange { room, start, end } => {
                    let at = || format!("room_groups/room {room}/{start}");
                    if let Some((r0, e0)) = last {
                        if r0 == room && start <= e0 {
                            c.problem(
                                "room index matches groups",
                                at(),
                                format!("overlaps a range ending at {e0}"),
                            );
                        }
                    }
                    last = Some((room, end));
                    covered = covered.saturating_add(end - start + 1);
                    c.below("room nid", u64::from(room), c.counters.room, at);
                }
                Record::RoomGhost { room, group } => {
                    let at = format!("room_groups/room {room}/ghost {group}");
                    match c.src.record(group) {
                        Ok(Some(g)) if g.ghost && g.room == room => {}
                        Ok(Some(_)) => c.problem(
                            "room index matches groups",
                            at,
                            "names a group that is not a ghost of this room",
                        ),
                        Ok(None) => c.problem("room index matches groups", at, "names a group that does not exist"),
                        Err(e) => c.problem("room index matches groups", at, e.to_string()),
                    }
                }
                other => c.problem("record decodes", "room_groups", format!("unexpected record {other:?}")),
            }
            Ok(())
        })?;
        if covered != self.report.groups {
            self.problem(
                "room index matches groups",
                "room_groups",
                format!(
                    "the ranges cover {covered} ids, {} groups are stored",
                    self.report.groups
                ),
            );
        }
        Ok(())
    }
}
