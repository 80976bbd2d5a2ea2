//! Auth events (Synapse's `event_auth`) and the auth chain questions,
//! answered from each room's graph (`crate::auth`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use roaring::RoaringBitmap;

use mxstate_api::{AuthDifference, AuthEvents, ConflictedSubgraph, Error, EventId, Result, RoomId};

use crate::access::{intern, Caches};
use crate::auth::{AuthGraph, Bits, Conflicted, SharedGraph};
pub use crate::format::auth::AuthMark;
use crate::format::auth::{decode_auth_events, encode_auth_events, parse_auth_key};
use crate::format::keys::{self, meta, EventNid, RoomNid, StrKind};
use crate::kv::{Cf, KvStore};
use crate::write::Txn;

use super::Engine;

/// Reads a room's auth records into a graph, with every event's id.
fn load(kv: &dyn KvStore, caches: &Caches, room: RoomNid) -> Result<AuthGraph> {
    let mut g = AuthGraph::default();
    kv.scan_prefix(Cf::Auth, &keys::room_prefix(room), &mut |k, v| {
        let (_, event) = parse_auth_key(k)?;
        g.add(event, &decode_auth_events(v)?);
        Ok(true)
    })?;
    let unnamed = g.unnamed();
    for (n, name) in unnamed
        .iter()
        .zip(intern::resolve(kv, caches, StrKind::Event, &unnamed)?)
    {
        g.set_name(*n, &name);
    }
    Ok(g)
}

/// What a committed add teaches a room's cached graph: the events with
/// their auth events, and the ids of every event named.
struct Learned {
    room: RoomNid,
    edges: Vec<(EventNid, Vec<EventNid>)>,
    names: Vec<(EventNid, Arc<str>)>,
}

/// Whether two lists name the same events (order and repeats aside).
fn same_events(a: &[EventNid], b: &[EventNid]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_unstable();
    a.dedup();
    b.sort_unstable();
    b.dedup();
    a == b
}

/// Event ids split into the graph's local ids and those it does not name.
struct Located<'a, I> {
    local: Vec<u32>,
    unknown: Vec<&'a I>,
}

/// What the auth questions answer with: event ids, or their text (for a
/// caller that only passes text on, such as the Synapse extension).
trait AuthOut {
    /// An event the graph names.
    fn from_graph(name: &Arc<str>) -> Self;
    /// An event the caller gave (as the caller's type made it).
    fn from_given(text: &str) -> Self;
}

impl AuthOut for EventId {
    fn from_graph(name: &Arc<str>) -> Self {
        // The graph's ids were validated on the way in.
        EventId::from_validated(name.clone())
    }
    fn from_given(text: &str) -> Self {
        // Only reached with the caller's own `EventId`s (validated).
        EventId::from_validated(Arc::from(text))
    }
}

impl AuthOut for Arc<str> {
    fn from_graph(name: &Arc<str>) -> Self {
        name.clone()
    }
    fn from_given(text: &str) -> Self {
        Arc::from(text)
    }
}

/// The auth chain difference and the conflicted subgraph, unordered.
type Difference<O> = (Vec<O>, Option<Vec<O>>);

impl Engine {
    /// The graph of `room`, loaded if needed. Loading holds the writer, so
    /// that no commit falls between the read of the records and the
    /// graph's place in the cache (the writer appends to cached graphs).
    fn auth_graph(&self, room: RoomNid) -> Result<SharedGraph> {
        if let Some(g) = self.auth_graphs.get(room)? {
            return Ok(g);
        }
        let _writer = self.writer()?;
        if let Some(g) = self.auth_graphs.get(room)? {
            return Ok(g);
        }
        self.auth_graphs.insert(room, load(&*self.kv, &self.caches, room)?)
    }

    /// Records each event's auth events, in order (an event's auth events
    /// may be named before they are added). Adding an event again with
    /// the same auth events changes nothing; with others it is refused.
    /// One atomic batch.
    pub fn add_auth_events(&self, room: &RoomId, events: &[(EventId, Vec<EventId>)]) -> Result<()> {
        self.add_auth_events_marked(&[(room.clone(), events.to_vec())], None)
    }

    /// The homeserver's mark (`meta/auth-mark`), if one was recorded.
    pub fn auth_mark(&self) -> Result<Option<AuthMark>> {
        self.kv
            .get(Cf::Meta, meta::AUTH_MARK)?
            .map(|v| AuthMark::decode(&v))
            .transpose()
    }

    /// [`Engine::add_auth_events`] for several rooms, and, with `mark`,
    /// the homeserver's mark widened to cover it, in one atomic batch.
    pub fn add_auth_events_marked(&self, rooms: &[(RoomId, AuthEvents)], mark: Option<AuthMark>) -> Result<()> {
        let added = self.write(|txn| {
            let mut added = Vec::with_capacity(rooms.len());
            for (room, events) in rooms {
                added.push(self.add_room_auth(txn, room, events)?);
            }
            if let Some(m) = mark {
                let m = match txn.kv().get(Cf::Meta, meta::AUTH_MARK)? {
                    Some(v) => AuthMark::decode(&v)?.merge(m),
                    None => m,
                };
                txn.put_meta(meta::AUTH_MARK, m.encode());
            }
            Ok(added)
        })?;
        // Committed: the cached graphs (if any) learn the new events. A
        // graph loaded since the commit has them already (adding is
        // idempotent).
        for learned in added {
            if let Some(g) = self.auth_graphs.get(learned.room)? {
                let mut g = g.write().map_err(|_| Error::internal("auth graph lock poisoned"))?;
                for (e, a) in &learned.edges {
                    g.add(*e, a);
                }
                for (e, name) in &learned.names {
                    g.set_name(*e, name);
                }
            }
        }
        Ok(())
    }

    /// One room's part of an add: its records put in `txn`; returns what
    /// the room's cached graph is to learn once committed.
    fn add_room_auth(&self, txn: &mut Txn<'_>, room: &RoomId, events: &[(EventId, Vec<EventId>)]) -> Result<Learned> {
        {
            let rn = txn.intern_room(room.as_str())?;
            let mut names: Vec<(EventNid, Arc<str>)> = Vec::new();
            // The committed graph, read under the writer this transaction
            // holds (no commit can change it meanwhile).
            let committed = match self.auth_graphs.get(rn)? {
                Some(g) => g,
                None => self.auth_graphs.insert(rn, load(txn.kv(), txn.caches(), rn)?)?,
            };
            let committed = committed
                .read()
                .map_err(|_| Error::internal("auth graph lock poisoned"))?;
            let mut added: Vec<(EventNid, Vec<EventNid>)> = Vec::with_capacity(events.len());
            let mut in_call: rustc_hash::FxHashMap<EventNid, usize> = Default::default();
            for (e, auth) in events {
                let en = txn.intern(StrKind::Event, e.as_str())?;
                let auth_names: Vec<&str> = auth.iter().map(EventId::as_str).collect();
                let an: Vec<EventNid> = txn
                    .intern_many(StrKind::Event, &auth_names)?
                    .into_iter()
                    .map(|n| n.0)
                    .collect();
                names.push((en, e.as_arc().clone()));
                names.extend(an.iter().zip(auth).map(|(&n, a)| (n, a.as_arc().clone())));
                let before = match in_call.get(&en) {
                    Some(&i) => added.get(i).map(|a| a.1.clone()),
                    None => committed.auth_of(en),
                };
                match before {
                    // The same auth events in any order: sources list them
                    // in theirs (Synapse's event, an import sorted them).
                    Some(old) if same_events(&old, &an) => continue,
                    Some(_) => return Err(Error::AuthEventsDiffer(e.to_string())),
                    None => {}
                }
                txn.put_auth(rn, en, encode_auth_events(&an));
                in_call.insert(en, added.len());
                added.push((en, an));
            }
            Ok(Learned {
                room: rn,
                edges: added,
                names,
            })
        }
    }

    fn room_graph(&self, room: &RoomId) -> Result<Option<SharedGraph>> {
        match self.room_nid(room)? {
            Some(rn) => Ok(Some(self.auth_graph(rn)?)),
            None => Ok(None),
        }
    }

    /// Synapse's `get_auth_chain_ids`: the events reachable from `events`
    /// by one or more auth edges, and `events` themselves if
    /// `include_given`.
    pub fn auth_chain(&self, room: &RoomId, events: &[EventId], include_given: bool) -> Result<BTreeSet<EventId>> {
        Ok(self
            .auth_chain_unordered(room, events, include_given)?
            .into_iter()
            .collect())
    }

    /// [`Engine::auth_chain`] in no order, each event once: what a caller
    /// that makes its own set (Synapse) needs, without sorting ids.
    pub fn auth_chain_unordered(&self, room: &RoomId, events: &[EventId], include_given: bool) -> Result<Vec<EventId>> {
        self.chain_of(room, events, include_given)
    }

    /// [`Engine::auth_chain_unordered`] of ids given as text, answered as
    /// the text of ids: ids the graph names are looked up as they are,
    /// never parsed (for a caller holding text, such as the Synapse
    /// extension, parsing 70,000 ids was most of a question). An id the
    /// graph does not name has no auth events.
    pub fn auth_chain_of_text<I: AsRef<str>>(
        &self,
        room: &RoomId,
        events: &[I],
        include_given: bool,
    ) -> Result<Vec<Arc<str>>> {
        self.chain_of(room, events, include_given)
    }

    fn chain_of<I: AsRef<str>, O: AuthOut>(&self, room: &RoomId, events: &[I], include_given: bool) -> Result<Vec<O>> {
        let given = |out: &mut Vec<O>, skip: &dyn Fn(&str) -> bool| {
            let mut seen: rustc_hash::FxHashSet<&str> = Default::default();
            for e in events {
                let e = e.as_ref();
                if !skip(e) && seen.insert(e) {
                    out.push(O::from_given(e));
                }
            }
        };
        // The graph first: loading it may wait for the writer, which must
        // never happen while holding the readers' gate.
        let Some(graph) = self.room_graph(room)? else {
            let mut out = Vec::new();
            if include_given {
                given(&mut out, &|_| false);
            }
            return Ok(out);
        };
        let _shared = self.read_gate()?;
        let graph = graph.read().map_err(|_| Error::internal("auth graph lock poisoned"))?;
        let at = locate(&graph, events);
        let chain = graph.chain(&at.local);
        let mut out = names(&graph, &chain)?;
        if include_given {
            given(&mut out, &|e| graph.by_name(e).is_some_and(|l| chain.contains(l)));
        }
        Ok(out)
    }

    /// Synapse's `get_auth_chain_difference_extended`: the events in the
    /// full auth chain (the set included) of some state sets and not of
    /// all; with `conflicted`, also state res v2.1's conflicted subgraph.
    pub fn auth_chain_difference(
        &self,
        room: &RoomId,
        state_sets: &[BTreeSet<EventId>],
        conflicted: Option<&ConflictedSubgraph>,
    ) -> Result<AuthDifference> {
        self.auth_chain_difference_of(
            room,
            state_sets,
            conflicted.map(|c| (&c.conflicted, &c.additional_backwards_reachable)),
        )
    }

    /// [`Engine::auth_chain_difference`] over any collections of event ids
    /// (`conflicted`: the conflicted events and the additional ones): a
    /// caller holding lists (the Synapse extension) needs not sort them
    /// into sets first.
    pub fn auth_chain_difference_of<S, C>(
        &self,
        room: &RoomId,
        state_sets: &[S],
        conflicted: Option<(&C, &C)>,
    ) -> Result<AuthDifference>
    where
        for<'a> &'a S: IntoIterator<Item = &'a EventId>,
        for<'a> &'a C: IntoIterator<Item = &'a EventId>,
    {
        let (difference, subgraph) = self.difference_of::<EventId, EventId, S, C>(room, state_sets, conflicted)?;
        Ok(AuthDifference {
            auth_difference: difference.into_iter().collect(),
            conflicted_subgraph: subgraph.map(|s| s.into_iter().collect()),
        })
    }

    /// [`Engine::auth_chain_difference_of`] of ids given as text, answered
    /// as the text of ids, unordered (as [`Engine::auth_chain_of_text`]):
    /// `(difference, conflicted subgraph)`.
    pub fn auth_chain_difference_of_text<I, S, C>(
        &self,
        room: &RoomId,
        state_sets: &[S],
        conflicted: Option<(&C, &C)>,
    ) -> Result<Difference<Arc<str>>>
    where
        I: AsRef<str>,
        for<'a> &'a S: IntoIterator<Item = &'a I>,
        for<'a> &'a C: IntoIterator<Item = &'a I>,
    {
        self.difference_of::<I, Arc<str>, S, C>(room, state_sets, conflicted)
    }

    fn difference_of<I, O, S, C>(
        &self,
        room: &RoomId,
        state_sets: &[S],
        conflicted: Option<(&C, &C)>,
    ) -> Result<Difference<O>>
    where
        I: AsRef<str>,
        O: AuthOut,
        for<'a> &'a S: IntoIterator<Item = &'a I>,
        for<'a> &'a C: IntoIterator<Item = &'a I>,
    {
        let graph = match self.room_graph(room)? {
            Some(g) => g,
            None => std::sync::Arc::new(std::sync::RwLock::new(AuthGraph::default())),
        };
        let _shared = self.read_gate()?;
        let graph = graph.read().map_err(|_| Error::internal("auth graph lock poisoned"))?;
        let mut sets = Vec::with_capacity(state_sets.len());
        let mut unknown: Vec<BTreeSet<&str>> = Vec::with_capacity(state_sets.len());
        for s in state_sets {
            let at = locate(&graph, s);
            // One ordered build (inserting 70,000 ids one by one into a
            // bitmap cost as much as the walk).
            let mut bits = Bits::new(graph.event_count());
            for l in at.local {
                bits.insert(l);
            }
            sets.push(bits.to_bitmap());
            unknown.push(at.unknown.into_iter().map(|e| e.as_ref()).collect());
        }
        let mut difference: Vec<O> = names(&graph, &graph.difference(&sets))?;
        // Events the graph does not name have no edges: each is in the
        // chains of exactly the sets holding it.
        if let Some((first, rest)) = unknown.split_first() {
            let all: BTreeSet<&str> = rest.iter().fold(first.clone(), |acc, s| &acc & s);
            let some: BTreeSet<&str> = unknown.iter().flatten().copied().collect();
            difference.extend(some.difference(&all).map(|e| O::from_given(e)));
        }
        let subgraph = match conflicted {
            None => None,
            Some((c, additional)) => {
                let cs = locate(&graph, c);
                let add = locate(&graph, additional);
                let sub = graph.conflicted_subgraph(&Conflicted {
                    conflicted: cs.local,
                    additional: add.local,
                });
                let mut out: Vec<O> = names(&graph, &sub)?;
                let unknown: BTreeSet<&str> = cs.unknown.iter().map(|e| e.as_ref()).collect();
                out.extend(unknown.into_iter().map(O::from_given));
                Some(out)
            }
        };
        Ok((difference, subgraph))
    }

    /// The rooms in whose auth index each of `events` was added (a scan of
    /// the whole `auth` family: for admin tools, which are given event ids
    /// without their room). Events never added are left out.
    pub fn auth_rooms_of(&self, events: &[EventId]) -> Result<BTreeMap<EventId, BTreeSet<RoomId>>> {
        let mut wanted: rustc_hash::FxHashMap<EventNid, &EventId> = Default::default();
        for e in events {
            if let Some(n) = self.lookup(StrKind::Event, e.as_str())? {
                wanted.insert(n, e);
            }
        }
        let mut found: Vec<(RoomNid, EventNid)> = Vec::new();
        if !wanted.is_empty() {
            self.kv.scan_prefix(Cf::Auth, &[], &mut |k, _| {
                let (room, event) = parse_auth_key(k)?;
                if wanted.contains_key(&event) {
                    found.push((room, event));
                }
                Ok(true)
            })?;
        }
        let mut out: BTreeMap<EventId, BTreeSet<RoomId>> = BTreeMap::new();
        for (room, event) in found {
            let name = intern::resolve_one(&*self.kv, &self.caches, StrKind::Room, u64::from(room))?;
            if let Some(e) = wanted.get(&event) {
                out.entry((*e).clone()).or_default().insert(RoomId::parse(&*name)?);
            }
        }
        Ok(out)
    }

    /// Forgets the cached graph of a room whose auth records were deleted.
    pub(super) fn forget_auth_graph(&self, room: RoomNid) -> Result<()> {
        self.auth_graphs.remove(room)
    }
}

/// The local ids of `events` the graph names, and the others.
fn locate<'a, I: AsRef<str> + 'a>(graph: &AuthGraph, events: impl IntoIterator<Item = &'a I>) -> Located<'a, I> {
    let mut out = Located {
        local: Vec::new(),
        unknown: Vec::new(),
    };
    for e in events {
        match graph.by_name(e.as_ref()) {
            Some(l) => out.local.push(l),
            None => out.unknown.push(e),
        }
    }
    out
}

/// The ids of `locals`, in local id order.
fn names<O: AuthOut>(graph: &AuthGraph, locals: &RoaringBitmap) -> Result<Vec<O>> {
    let mut ids = Vec::with_capacity(locals.len() as usize);
    for l in locals {
        let name = graph
            .name(l)
            .ok_or_else(|| Error::internal(format!("auth graph: event nid {} has no id", graph.nid(l))))?;
        ids.push(O::from_graph(name));
    }
    Ok(ids)
}
