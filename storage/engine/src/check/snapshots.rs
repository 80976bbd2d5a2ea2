//! Snapshots: headers and sections that agree, reference counts equal to
//! the groups using them, hashes equal to the state they hold, and the
//! `snap_hashes` index.

use mxstate_api::Result;
use xxhash_rust::xxh3::Xxh3Default;

use crate::format::keys::{self, ikey, TypeNid};
use crate::format::record::Record;
use crate::format::snapshot::{Section, SnapHeader};
use crate::kv::Cf;

use super::Checker;

/// The snapshot being walked: its header and what its sections hold so far.
struct Open {
    snap: u64,
    header: Option<SnapHeader>,
    types: Vec<TypeNid>,
    entries: u64,
    hash: Xxh3Default,
}

impl Open {
    fn new(snap: u64, header: Option<SnapHeader>) -> Self {
        Open {
            snap,
            header,
            types: Vec::new(),
            entries: 0,
            hash: Xxh3Default::new(),
        }
    }
}

impl Checker<'_> {
    /// Every snapshot (its header first, then its sections in type order).
    pub(super) fn snapshots(&mut self) -> Result<()> {
        let mut open: Option<Open> = None;
        self.each(Cf::Snapshots, |c, r| {
            match r {
                Record::SnapHeader { snap, header } => {
                    if let Some(o) = open.take() {
                        c.close(o)?;
                    }
                    open = Some(Open::new(snap, Some(header)));
                }
                Record::SnapSection {
                    snap,
                    event_type,
                    section,
                } => {
                    if open.as_ref().map(|o| o.snap) != Some(snap) {
                        if let Some(o) = open.take() {
                            c.close(o)?;
                        }
                        open = Some(Open::new(snap, None));
                    }
                    if let Some(o) = open.as_mut() {
                        c.section(o, event_type, &section);
                    }
                }
                other => c.problem("record decodes", "snapshots", format!("unexpected record {other:?}")),
            }
            Ok(())
        })?;
        if let Some(o) = open.take() {
            self.close(o)?;
        }
        let mut missing: Vec<(u64, u64)> = self.snap_refs.drain().filter(|&(_, n)| n > 0).collect();
        missing.sort_unstable();
        for (snap, n) in missing {
            self.problem(
                "snapshot refs",
                format!("snapshots/{snap}"),
                format!("{n} groups use it, but it has no header"),
            );
        }
        Ok(())
    }

    fn section(&mut self, o: &mut Open, t: TypeNid, section: &Section) {
        let at = || format!("snapshots/{}/{t}", o.snap);
        self.below("event type nid", u64::from(t), self.counters.event_type, at);
        o.types.push(t);
        o.entries += section.skeys.len() as u64;
        for (&s, &e) in section.skeys.iter().zip(&section.events) {
            self.below("state key nid", u64::from(s), self.counters.skey, at);
            self.below("event nid", e, self.counters.event, at);
            o.hash.update(&ikey(t, s).to_be_bytes());
            o.hash.update(&e.to_be_bytes());
        }
    }

    /// Compares what the sections hold with the header, and the header's
    /// reference count with the groups counted.
    fn close(&mut self, o: Open) -> Result<()> {
        let at = format!("snapshots/{}", o.snap);
        self.report.snapshots += 1;
        let refs = self.snap_refs.remove(&o.snap).unwrap_or(0);
        let Some(h) = o.header else {
            self.problem("snapshot contents", at, "sections without a header");
            return Ok(());
        };
        self.below("snapshot id", o.snap, self.counters.snap, || at.clone());
        self.below("room nid", u64::from(h.room), self.counters.room, || at.clone());
        if h.refs != refs {
            self.problem(
                "snapshot refs",
                at.clone(),
                format!("header counts {} groups, {refs} use it", h.refs),
            );
        }
        if h.types != o.types {
            self.problem(
                "snapshot contents",
                at.clone(),
                format!("header lists types {:?}, sections hold {:?}", h.types, o.types),
            );
        }
        if h.entries != o.entries {
            self.problem(
                "snapshot contents",
                at.clone(),
                format!("header counts {} entries, sections hold {}", h.entries, o.entries),
            );
        }
        let hash = o.hash.digest128();
        if h.hash != hash {
            self.problem(
                "snapshot hash",
                at.clone(),
                "the header's hash is not the hash of the state",
            );
        }
        match self.kv.get(Cf::SnapHashes, &keys::snap_hash_key(h.room, h.hash))? {
            None => self.problem("snapshot hash", at, "no snap_hashes entry"),
            Some(v) => match crate::format::values::decode_snap_ref(&v, at.clone()) {
                Ok(s) if s == o.snap => {}
                Ok(s) => self.problem("snapshot hash", at, format!("its snap_hashes entry names snapshot {s}")),
                Err(e) => self.problem("record decodes", at, e.to_string()),
            },
        }
        Ok(())
    }

    /// Each `snap_hashes` entry names a snapshot of that room and hash.
    pub(super) fn snap_hashes(&mut self) -> Result<()> {
        self.each(Cf::SnapHashes, |c, r| {
            if let Record::SnapHash { room, hash, snap } = r {
                let at = format!("snap_hashes/room {room}/snapshot {snap}");
                match c.kv.get(Cf::Snapshots, &keys::snap_header_key(snap))? {
                    None => c.problem("snapshot hash", at, "names a snapshot that does not exist"),
                    Some(v) => match SnapHeader::decode(&v) {
                        Ok(h) if h.room == room && h.hash == hash => {}
                        Ok(_) => c.problem("snapshot hash", at, "the snapshot has another room or hash"),
                        Err(_) => {} // reported by the snapshot walk
                    },
                }
            }
            Ok(())
        })
    }
}
