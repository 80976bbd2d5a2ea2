//! Interned strings, event mappings, current state and deletion marks.

use mxstate_api::{ErrorKind, EventId, Result, RoomId};

use crate::access::event_index::Place;
use crate::access::intern;
use crate::format::deletion;
use crate::format::event_bucket::{self, Slot};
use crate::format::keys::{self, ikey_skey, ikey_type, StrKind};
use crate::format::nid_block;
use crate::format::record::Record;
use crate::format::values;
use crate::kv::Cf;

use super::Checker;

impl Checker<'_> {
    /// `strings` and `nids` are each other's inverse, nids are below their
    /// counters, and room and event ids are valid.
    pub(super) fn strings(&mut self) -> Result<()> {
        self.each(Cf::Strings, |c, r| {
            if let Record::String { kind, text, nid } = r {
                c.report.strings += 1;
                let at = || format!("strings/{}{text}", kind as u8 as char);
                c.below("string nid", nid, c.string_counter(kind), at);
                let stored = keys::text_bytes(kind, &text);
                if kind == StrKind::Event && event_bucket::split(&stored).is_some() {
                    c.problem(
                        "strings and nids agree",
                        at(),
                        "a hash-form event id in strings (format 6 keeps it in its event_groups bucket)",
                    );
                }
                if !c.has_key(Cf::Strings, &keys::string_key(kind, &text))? {
                    c.problem("strings and nids agree", at(), "not in its stored form (format 4)");
                }
                match c.stored_text(kind, nid)? {
                    Some(t) if t == *stored => {}
                    Some(_) => c.problem("strings and nids agree", at(), format!("nid {nid} names another text")),
                    None => c.problem("strings and nids agree", at(), format!("nid {nid} has no text")),
                }
                let valid = match kind {
                    StrKind::Room => RoomId::parse(&text).map(drop),
                    StrKind::Event => EventId::parse(&text).map(drop),
                    StrKind::Type | StrKind::Skey => Ok(()),
                };
                if let Err(e) = valid {
                    c.problem("strings and nids agree", at(), e.to_string());
                }
            }
            Ok(())
        })?;
        self.each(Cf::Nids, |c, r| {
            match r {
                Record::Nid { kind, nid, text } => {
                    let at = || format!("nids/{}{nid}", kind as u8 as char);
                    let block = nid_block::block_of(nid);
                    if c.has_key(Cf::Nids, &keys::nid_block_key(kind, block))? {
                        c.problem("nids packed once", at(), format!("also in packed block {block}"));
                    }
                    c.nid_names_its_text(kind, nid, &text)?;
                }
                Record::NidBlock { kind, block, texts } => {
                    let at = || format!("nids/{}/block {block}", (kind as u8).to_ascii_lowercase() as char);
                    if !nid_block::is_complete(block, c.string_counter(kind)) {
                        c.problem(
                            "nids packed once",
                            at(),
                            "packed before the counter passed its last nid",
                        );
                    }
                    for (nid, text) in texts {
                        c.nid_names_its_text(kind, nid, &text)?;
                    }
                }
                _ => {}
            }
            Ok(())
        })
    }

    /// The stored text of `nid`; `None` also when its block does not
    /// decode (the walk of `nids` reports that block).
    fn stored_text(&self, kind: StrKind, nid: u64) -> Result<Option<Vec<u8>>> {
        match intern::stored_text(self.kv, kind, nid) {
            Err(e) if e.kind() == ErrorKind::Corrupt => Ok(None),
            other => other,
        }
    }

    /// The text stored for `nid` is interned as `nid`.
    fn nid_names_its_text(&mut self, kind: StrKind, nid: u64, text: &str) -> Result<()> {
        let at = || format!("nids/{}{nid}", kind as u8 as char);
        if kind == StrKind::Event {
            if let Place::Bucket(key, _) = Place::of(text) {
                let interned = match self.kv.get(Cf::EventGroups, &key)? {
                    Some(v) => match event_bucket::decode(&v, String::new) {
                        Ok(slots) => slots
                            .iter()
                            .any(|s| matches!(s, Slot::Interned { nid: n, .. } if *n == nid)),
                        Err(_) => true, // reported by the event_groups walk
                    },
                    None => false,
                };
                if !interned {
                    self.problem("strings and nids agree", at(), "its text is not interned in its bucket");
                }
                return Ok(());
            }
        }
        match self.kv.get(Cf::Strings, &keys::string_key(kind, text))? {
            Some(v) => match values::decode_string_nid(&v) {
                Ok(n) if n == nid => {}
                Ok(n) => self.problem("strings and nids agree", at(), format!("its text maps to nid {n}")),
                Err(_) => {} // reported by the strings walk
            },
            None => self.problem("strings and nids agree", at(), "its text is not interned"),
        }
        Ok(())
    }

    /// `event_groups` and `group_events` hold the same pairs, of live groups.
    pub(super) fn event_mappings(&mut self) -> Result<()> {
        self.each(Cf::EventGroups, |c, r| {
            if let Record::EventGroup { event, group } = &r {
                let (event, group) = (event.clone(), *group);
                c.report.event_mappings += 1;
                let at = || format!("event_groups/{event}");
                c.live_group(group, at)?;
                if !c.has_key(Cf::EventGroups, &keys::event_key(&event))? {
                    c.problem("event mappings agree", at(), "not in its stored form (format 4)");
                } else if event_bucket::split(&keys::event_key(&event)).is_some() {
                    c.problem(
                        "event mappings agree",
                        at(),
                        "a hash-form id outside its bucket (format 6)",
                    );
                }
                if !c.has_key(Cf::GroupEvents, &keys::group_event_key(group, &keys::event_key(&event)))? {
                    c.problem(
                        "event mappings agree",
                        at(),
                        format!("no group_events entry for group {group}"),
                    );
                }
            }
            if let Record::EventBucket { key, slots } = r {
                let at = || format!("event_groups/{}", crate::format::record::shown(&key));
                let mut rests = rustc_hash::FxHashSet::default();
                let mut nids = rustc_hash::FxHashSet::default();
                for s in &slots {
                    let once = match s {
                        Slot::Mapped { rest, .. } => rests.insert(*rest),
                        Slot::Interned { nid, .. } => {
                            c.below("event nid", *nid, c.counters.event, at);
                            match c.stored_text(StrKind::Event, *nid)? {
                                Some(t) if t.starts_with(&key) => {}
                                Some(_) => c.problem(
                                    "event mappings agree",
                                    at(),
                                    format!("event nid {nid} is not in this bucket"),
                                ),
                                None => c.problem("event mappings agree", at(), format!("event nid {nid} has no text")),
                            }
                            nids.insert(*nid)
                        }
                    };
                    if !once {
                        c.problem("event mappings agree", at(), "an event with two entries");
                    }
                    let Some(group) = s.group() else { continue };
                    c.report.event_mappings += 1;
                    c.live_group(group, at)?;
                    if !c.has_key(Cf::GroupEvents, &keys::group_event_key(group, &key))? {
                        c.problem(
                            "event mappings agree",
                            at(),
                            format!("no group_events entry for group {group}"),
                        );
                    }
                }
            }
            Ok(())
        })?;
        self.each(Cf::GroupEvents, |c, r| {
            if let Record::GroupEvent { group, part } = r {
                let at = || format!("group_events/{group}/{}", crate::format::record::shown(&part));
                if !c.part_maps_to(&part, group)? {
                    c.problem(
                        "event mappings agree",
                        at(),
                        "no event_groups entry maps such an event to the group",
                    );
                }
            }
            Ok(())
        })
    }

    /// Whether an event behind reverse entry `part` is mapped to `g`.
    fn part_maps_to(&self, part: &[u8], g: u64) -> Result<bool> {
        let Some(v) = self.kv.get(Cf::EventGroups, part)? else {
            return Ok(false);
        };
        Ok(if event_bucket::is_bucket_key(part) {
            event_bucket::decode(&v, String::new).is_ok_and(|slots| slots.iter().any(|s| s.group() == Some(g)))
        } else {
            values::decode_event_group(&v).is_ok_and(|old| old == g)
        })
    }

    fn has_key(&self, cf: Cf, key: &[u8]) -> Result<bool> {
        Ok(self.kv.get(cf, key)?.is_some())
    }

    /// A group that must exist and not be deleted.
    fn live_group(&mut self, g: u64, at: impl Fn() -> String) -> Result<()> {
        match self.kv.get(Cf::Groups, &keys::group_key(g))? {
            None => self.problem("event mappings agree", at(), format!("group {g} does not exist")),
            Some(v) => {
                if let Ok(Record::Group { record, .. }) =
                    crate::format::record::decode_record(Cf::Groups, &keys::group_key(g), &v)
                {
                    if record.ghost {
                        self.problem("event mappings agree", at(), format!("group {g} is deleted (a ghost)"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Current state names interned rooms, keys and events.
    pub(super) fn current_state(&mut self) -> Result<()> {
        self.each(Cf::CurrentState, |c, r| {
            if let Record::Current { room, key, event } = r {
                let at = || format!("current_state/room {room}");
                c.below("room nid", u64::from(room), c.counters.room, at);
                c.below("event type nid", u64::from(ikey_type(key)), c.counters.event_type, at);
                c.below("state key nid", u64::from(ikey_skey(key)), c.counters.skey, at);
                c.below("event nid", event, c.counters.event, at);
            }
            Ok(())
        })
    }

    /// Auth records name interned rooms and events (the event itself is
    /// in `nids`; its auth events, which may not be added, below the
    /// counter).
    pub(super) fn auth(&mut self) -> Result<()> {
        self.each(Cf::Auth, |c, r| {
            if let Record::Auth { room, event, auth } = r {
                let at = || format!("auth/room {room}/event {event}");
                c.below("room nid", u64::from(room), c.counters.room, at);
                c.below("event nid", event, c.counters.event, at);
                for a in auth {
                    c.below("event nid", a, c.counters.event, at);
                }
                if c.stored_text(StrKind::Event, event)?.is_none() {
                    c.problem("auth events interned", at(), format!("event nid {event} has no string"));
                }
            }
            Ok(())
        })
    }

    /// Pending deletions and their time index agree, name existing groups,
    /// and carry sequence numbers below the next one.
    pub(super) fn deletion(&mut self) -> Result<()> {
        let mut next_seq = None;
        if let Some(v) = self.kv.get(Cf::Deletion, deletion::SEQUENCE)? {
            next_seq = deletion::decode_varint(&v, "deletion sequence").ok();
        }
        self.each(Cf::Deletion, |c, r| {
            match r {
                Record::PendingDeletion { group, pending } => {
                    let at = || format!("deletion/P{group}");
                    if c.kv.get(Cf::Groups, &keys::group_key(group))?.is_none() {
                        c.problem("deletion marks agree", at(), "names a group that does not exist");
                    }
                    if c.kv
                        .get(Cf::Deletion, &deletion::by_time_key(pending.ts, group))?
                        .is_none()
                    {
                        c.problem("deletion marks agree", at(), "no entry in the time index");
                    }
                    match next_seq {
                        Some(q) if pending.seq < q => {}
                        _ => c.problem(
                            "deletion marks agree",
                            at(),
                            format!("sequence {} is not below the next one ({next_seq:?})", pending.seq),
                        ),
                    }
                }
                Record::DeletionByTime { ts, group } => {
                    let at = || format!("deletion/T{ts}/{group}");
                    match c.kv.get(Cf::Deletion, &deletion::pending_key(group))? {
                        None => c.problem("deletion marks agree", at(), "no pending deletion for the group"),
                        Some(v) => match deletion::Pending::decode(&v) {
                            Ok(p) if p.ts == ts => {}
                            Ok(p) => c.problem("deletion marks agree", at(), format!("the pending mark says {}", p.ts)),
                            Err(_) => {} // reported with the pending mark
                        },
                    }
                }
                Record::Persisting { .. } | Record::DeletionSequence(_) => {}
                other => c.problem("record decodes", "deletion", format!("unexpected record {other:?}")),
            }
            Ok(())
        })
    }
}
