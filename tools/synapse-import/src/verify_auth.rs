//! The auth part of a verification: a sample of auth chains and auth chain
//! differences computed by plain walks of the source's `event_auth` edges,
//! compared with the database's answers.
//!
//! The staged rows are read room by room (sorted by room, then event), and
//! one room's edges are held in memory at a time. Every k-th event of the
//! source (at most about [`CHAINS`]) has its auth chain compared. In every
//! k-th room (at most about [`DIFFERENCE_ROOMS`]) the auth chain difference
//! of state sets is compared: the full states of the room's first, second
//! to last and last groups (pairs and the triple), or, for a room whose
//! groups are not known, two pseudo-random sets of its events.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use mxstate_api::{EventId, GroupId, RoomId};
use mxstate_rocks::Scratch;
use xxhash_rust::xxh3::xxh3_64;

use crate::error::Result;
use crate::staged::{AuthWalk, StagedAuth};
use crate::verify::{AuthMismatch, GroupStates, PlainState, VerifyReport};

/// Auth chains compared: at most about this many, spread over the events.
const CHAINS: u64 = 2000;
/// Rooms whose auth chain differences are compared: at most about this many.
const DIFFERENCE_ROOMS: u64 = 200;
/// Rooms whose groups are remembered for state sets (the first ones met).
const TRACKED_ROOMS: usize = 10_000;
/// Events in each pseudo-random state set.
const RANDOM_SET: usize = 64;
/// Ids shown per side of a difference.
const SHOWN_IDS: usize = 3;

/// A few groups of each room, met in ascending id order.
#[derive(Default)]
pub struct RoomGroups {
    rooms: HashMap<String, Seen>,
}

#[derive(Clone, Copy)]
struct Seen {
    first: GroupId,
    before_last: Option<GroupId>,
    last: GroupId,
}

impl RoomGroups {
    /// Group `g` is in `room`.
    pub fn saw(&mut self, room: &str, g: GroupId) {
        if let Some(s) = self.rooms.get_mut(room) {
            s.before_last = Some(s.last);
            s.last = g;
        } else if self.rooms.len() < TRACKED_ROOMS {
            self.rooms.insert(
                room.to_owned(),
                Seen {
                    first: g,
                    before_last: None,
                    last: g,
                },
            );
        }
    }

    /// The groups whose states are compared as state sets: pairs (first
    /// and last: usually far apart; second to last and last: close) and
    /// the triple.
    fn sets(&self, room: &str) -> Vec<Vec<GroupId>> {
        let Some(s) = self.rooms.get(room) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if s.first != s.last {
            out.push(vec![s.first, s.last]);
        }
        if let Some(b) = s.before_last.filter(|&b| b != s.first) {
            out.push(vec![b, s.last]);
            out.push(vec![s.first, b, s.last]);
        }
        out
    }
}

/// One room's source edges, with dense local ids.
#[derive(Default)]
struct RoomGraph {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
    /// Each event's auth events (empty for an event without rows).
    auth: Vec<Vec<u32>>,
}

impl RoomGraph {
    fn local(&mut self, name: &str) -> u32 {
        if let Some(&l) = self.ids.get(name) {
            return l;
        }
        let l = self.names.len() as u32;
        let name: Arc<str> = name.into();
        self.ids.insert(name.clone(), l);
        self.names.push(name);
        self.auth.push(Vec::new());
        l
    }

    /// Adds one staged event; returns its local id.
    fn add(&mut self, ev: &StagedAuth) -> u32 {
        let e = self.local(&ev.event);
        let auth: Vec<u32> = ev.auth.iter().map(|a| self.local(a)).collect();
        if let Some(slot) = self.auth.get_mut(e as usize) {
            *slot = auth;
        }
        e
    }

    fn name(&self, l: u32) -> &str {
        self.names.get(l as usize).map_or("", |n| n)
    }

    /// The events reachable from `from` by zero or more edges.
    fn closure(&self, from: impl IntoIterator<Item = u32>) -> HashSet<u32> {
        let mut seen = HashSet::new();
        let mut stack: Vec<u32> = from.into_iter().collect();
        while let Some(l) = stack.pop() {
            if seen.insert(l) {
                stack.extend(self.auth.get(l as usize).into_iter().flatten().copied());
            }
        }
        seen
    }

    /// The events reachable from `e` by one or more edges: Synapse's
    /// `get_auth_chain_ids` for one event.
    fn chain(&self, e: u32) -> BTreeSet<String> {
        let from = self.auth.get(e as usize).into_iter().flatten().copied();
        self.closure(from)
            .into_iter()
            .map(|l| self.name(l).to_owned())
            .collect()
    }

    /// The events in the full auth chain (the set included) of some of
    /// `sets` but not all. Events the source does not name are their own
    /// full chain.
    fn difference(&self, sets: &[BTreeSet<EventId>]) -> BTreeSet<String> {
        let mut in_chains: HashMap<u32, usize> = HashMap::new();
        let mut unknown: HashMap<&str, usize> = HashMap::new();
        for set in sets {
            let mut known = Vec::new();
            for e in set {
                match self.ids.get(e.as_str()) {
                    Some(&l) => known.push(l),
                    None => *unknown.entry(e.as_str()).or_default() += 1,
                }
            }
            for l in self.closure(known) {
                *in_chains.entry(l).or_default() += 1;
            }
        }
        let n = sets.len();
        let mut out: BTreeSet<String> = in_chains
            .into_iter()
            .filter(|&(_, c)| c < n)
            .map(|(l, _)| self.name(l).to_owned())
            .collect();
        out.extend(unknown.into_iter().filter(|&(_, c)| c < n).map(|(e, _)| e.to_owned()));
        out
    }

    /// Two pseudo-random sets of the room's events that share a few.
    fn random_sets(&self) -> Vec<BTreeSet<EventId>> {
        let mut a = BTreeSet::new();
        let mut b = BTreeSet::new();
        for name in &self.names {
            let both = match xxh3_64(name.as_bytes()) % 8 {
                0 => (a.len() < RANDOM_SET, false),
                1 => (false, b.len() < RANDOM_SET),
                2 => (a.len() < RANDOM_SET, b.len() < RANDOM_SET),
                _ => (false, false),
            };
            if let Ok(e) = EventId::parse(&**name) {
                if both.0 {
                    a.insert(e.clone());
                }
                if both.1 {
                    b.insert(e);
                }
            }
        }
        if a.is_empty() || b.is_empty() {
            // A small room: its first event against its last.
            a = self
                .names
                .first()
                .and_then(|n| EventId::parse(&**n).ok())
                .into_iter()
                .collect();
            b = self
                .names
                .last()
                .and_then(|n| EventId::parse(&**n).ok())
                .into_iter()
                .collect();
        }
        vec![a, b]
    }
}

/// The auth part of a verification.
pub struct AuthCheck<'a> {
    pub engine: &'a dyn GroupStates,
    pub staging: &'a Scratch,
    /// Mismatches kept.
    pub keep: usize,
}

/// A group's source state, for state sets.
pub type StateOf<'s> = dyn FnMut(GroupId) -> Result<Arc<PlainState>> + 's;

impl AuthCheck<'_> {
    /// Compares the sample, adding to `report`.
    pub fn run(&self, groups: &RoomGroups, state_of: &mut StateOf<'_>, report: &mut VerifyReport) -> Result<()> {
        let (events, rooms) = self.count()?;
        report.auth_events_in_source = events;
        if events == 0 {
            return Ok(());
        }
        let chain_step = events.div_ceil(CHAINS).max(1);
        let room_step = rooms.div_ceil(DIFFERENCE_ROOMS).max(1);
        let mut walk = AuthWalk::new(self.staging);
        let mut room: Option<String> = None;
        let mut graph = RoomGraph::default();
        let mut sampled: Vec<u32> = Vec::new();
        let (mut event_index, mut room_index) = (0u64, 0u64);
        loop {
            let next = walk.next_event()?;
            if room.is_some() && next.as_ref().map(|e| &e.room) != room.as_ref() {
                let done = std::mem::take(&mut graph);
                let r = room.take().unwrap_or_default();
                let differences = room_index.is_multiple_of(room_step);
                self.room(&r, &done, &sampled, differences.then_some(groups), state_of, report)?;
                sampled.clear();
                room_index += 1;
            }
            let Some(ev) = next else { break };
            if room.is_none() {
                room = Some(ev.room.clone());
            }
            let e = graph.add(&ev);
            if event_index.is_multiple_of(chain_step) {
                sampled.push(e);
            }
            event_index += 1;
        }
        Ok(())
    }

    /// Events and rooms with staged rows.
    fn count(&self) -> Result<(u64, u64)> {
        let mut walk = AuthWalk::new(self.staging);
        let (mut events, mut rooms) = (0u64, 0u64);
        let mut last: Option<String> = None;
        while let Some(ev) = walk.next_event()? {
            events += 1;
            if last.as_deref() != Some(ev.room.as_str()) {
                rooms += 1;
                last = Some(ev.room);
            }
        }
        Ok((events, rooms))
    }

    /// Checks one room: the sampled events' chains, and with `groups` the
    /// differences of state sets.
    fn room(
        &self,
        room: &str,
        graph: &RoomGraph,
        sampled: &[u32],
        groups: Option<&RoomGroups>,
        state_of: &mut StateOf<'_>,
        report: &mut VerifyReport,
    ) -> Result<()> {
        let room_id = RoomId::parse(room)?;
        for &e in sampled {
            let name = graph.name(e);
            let event = EventId::parse(name)?;
            let expected = graph.chain(e);
            let got = names(self.engine.auth_chain(&room_id, std::slice::from_ref(&event))?);
            report.auth_chains_checked += 1;
            if let Some(d) = describe(&expected, &got) {
                self.mismatch(report, room, format!("auth chain of {name}: {d}"));
            }
        }
        let Some(groups) = groups else {
            return Ok(());
        };
        let mut cases: Vec<(String, Vec<BTreeSet<EventId>>)> = Vec::new();
        for gs in groups.sets(room) {
            let mut sets = Vec::with_capacity(gs.len());
            for &g in &gs {
                let state = state_of(g)?;
                sets.push(state.values().filter_map(|e| EventId::parse(e).ok()).collect());
            }
            let shown: Vec<String> = gs.iter().map(u64::to_string).collect();
            cases.push((format!("the states of groups {}", shown.join(", ")), sets));
        }
        if cases.is_empty() && graph.names.len() > 1 {
            cases.push(("two sets of the room's events".to_owned(), graph.random_sets()));
        }
        for (what, sets) in cases {
            let expected = graph.difference(&sets);
            let got = names(self.engine.auth_chain_difference(&room_id, &sets)?);
            report.auth_differences_checked += 1;
            if let Some(d) = describe(&expected, &got) {
                self.mismatch(report, room, format!("auth chain difference of {what}: {d}"));
            }
        }
        Ok(())
    }

    fn mismatch(&self, report: &mut VerifyReport, room: &str, detail: String) {
        report.auth_mismatches += 1;
        if report.first_auth.len() < self.keep {
            report.first_auth.push(AuthMismatch {
                room: room.to_owned(),
                detail,
            });
        }
    }
}

fn names(ids: BTreeSet<EventId>) -> BTreeSet<String> {
    ids.into_iter().map(|e| e.as_str().to_owned()).collect()
}

/// How the database's answer `got` differs from the source's, if it does.
fn describe(expected: &BTreeSet<String>, got: &BTreeSet<String>) -> Option<String> {
    if expected == got {
        return None;
    }
    let list = |what: &str, ids: Vec<&String>| {
        let n = ids.len();
        let mut shown: Vec<&str> = ids.into_iter().take(SHOWN_IDS).map(String::as_str).collect();
        if n > SHOWN_IDS {
            shown.push("...");
        }
        (n > 0).then(|| format!("{what} {n} ({})", shown.join(", ")))
    };
    let parts: Vec<String> = [
        list("mxstate lacks", expected.difference(got).collect()),
        list("mxstate has extra", got.difference(expected).collect()),
    ]
    .into_iter()
    .flatten()
    .collect();
    Some(format!("{} (source: {} events)", parts.join(", "), expected.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> RoomGraph {
        let mut g = RoomGraph::default();
        for (e, auth) in edges {
            g.add(&StagedAuth {
                room: "!r".into(),
                event: (*e).into(),
                auth: auth.iter().map(|a| (*a).to_owned()).collect(),
                line: 0,
            });
        }
        g
    }

    fn set(ids: &[&str]) -> BTreeSet<EventId> {
        ids.iter().map(|e| EventId::parse(e).expect("valid")).collect()
    }

    fn strings(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|e| (*e).to_owned()).collect()
    }

    #[test]
    fn plain_chains_and_differences() {
        // create <- power <- member; message -> (create, power, member).
        let g = graph(&[
            ("$power", &["$create"]),
            ("$member", &["$create", "$power"]),
            ("$msg", &["$create", "$power", "$member"]),
            ("$other", &["$create"]),
        ]);
        let l = |n: &str| g.ids.get(n).copied().expect("named");
        assert_eq!(g.chain(l("$msg")), strings(&["$create", "$power", "$member"]));
        assert_eq!(g.chain(l("$create")), strings(&[]));
        // Full chains: {msg, member, power, create} and {other, create}.
        assert_eq!(
            g.difference(&[set(&["$msg"]), set(&["$other"])]),
            strings(&["$msg", "$member", "$power", "$other"])
        );
        // An event the source does not name is its own chain.
        assert_eq!(
            g.difference(&[set(&["$power", "$x"]), set(&["$member"])]),
            strings(&["$member", "$x"])
        );
        assert_eq!(g.difference(&[set(&["$msg"]), set(&["$msg"])]), strings(&[]));
        assert_eq!(g.random_sets().len(), 2);
    }

    #[test]
    fn differences_are_described() {
        assert_eq!(describe(&strings(&["$a"]), &strings(&["$a"])), None);
        let d = describe(&strings(&["$a", "$b"]), &strings(&["$a", "$c"])).expect("differs");
        assert!(d.contains("lacks 1 ($b)") && d.contains("extra 1 ($c)"), "{d}");
        let d = describe(&strings(&["$a", "$b"]), &strings(&["$a"])).expect("differs");
        assert_eq!(d, "mxstate lacks 1 ($b) (source: 2 events)");
    }
}
