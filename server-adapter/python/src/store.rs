//! `Store`: one open mxstate database, in this process or through a
//! running `mxstate serve`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mxstate_api::{Error, GroupId};
use mxstate_engine::{EngineOptions, GroupState, NewGroup};
use mxstate_remote::{Addr, RemoteOptions, RemoteStore};
use mxstate_rocks::RocksConfig;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PySet, PyString, PyTuple};

use crate::backend::{Backend, Found, Remote};
use crate::convert;
use crate::errors::{guard, invalid};
use crate::sections::SectionCache;

/// An open mxstate database: a RocksDB directory opened by this process
/// (`Store(path)`), or a service (`Store.connect("unix:/run/mxstate.sock")`).
#[pyclass(frozen, module = "mxstate_synapse._native")]
pub struct Store {
    backend: Mutex<Option<Arc<Backend>>>,
    /// Python objects of snapshot sections (used with the GIL held only).
    sections: Mutex<SectionCache>,
    /// The directory or the service's address, for messages.
    location: String,
    /// The directory, for a store opened in this process.
    path: Option<PathBuf>,
}

impl Store {
    fn backend(&self) -> PyResult<Arc<Backend>> {
        let g = self
            .backend
            .lock()
            .map_err(|_| crate::errors::InternalError::new_err("store lock poisoned"))?;
        g.clone()
            .ok_or_else(|| crate::errors::ConflictError::new_err(format!("{}: the store is closed", self.location)))
    }

    fn with(backend: Backend, location: String, path: Option<PathBuf>, cache_mb: u64) -> Store {
        // Half of the cache budget for Python objects, about 220 bytes an entry.
        let section_entries = usize::try_from((cache_mb << 20) / 2 / 220).unwrap_or(usize::MAX);
        Store {
            backend: Mutex::new(Some(Arc::new(backend))),
            sections: Mutex::new(SectionCache::new(section_entries)),
            location,
            path,
        }
    }
}

/// Runs backend work with the GIL released, errors and panics converted.
fn run<T: Send>(
    py: Python<'_>,
    what: &str,
    backend: &Arc<Backend>,
    f: impl FnOnce(&Backend) -> Result<T, Error> + Send,
) -> PyResult<T> {
    py.detach(|| guard(what, || f(backend)))
}

/// The auth index's text of Python strings, borrowed from them.
fn auth_texts<'a>(ids: &'a [Bound<'_, PyString>]) -> PyResult<Vec<std::borrow::Cow<'a, str>>> {
    ids.iter().map(|s| Ok(convert::auth_text(s.to_str()?))).collect()
}

fn id_list<'py>(py: Python<'py>, ids: impl IntoIterator<Item = GroupId>) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, ids)
}

fn id_set<'py>(py: Python<'py>, ids: impl IntoIterator<Item = GroupId>) -> PyResult<Bound<'py, PySet>> {
    let v: Vec<GroupId> = ids.into_iter().collect();
    PySet::new(py, &v)
}

fn seq_map(m: &Bound<'_, PyDict>) -> PyResult<BTreeMap<GroupId, u64>> {
    let mut out = BTreeMap::new();
    for (g, s) in m.iter() {
        let g: i64 = g
            .extract()
            .map_err(|_| invalid(format!("state group {g} is not an integer")))?;
        let s: i64 = s
            .extract()
            .map_err(|_| invalid(format!("sequence number {s} is not an integer")))?;
        out.insert(
            convert::group_id(g)?,
            u64::try_from(s).map_err(|_| invalid("negative sequence number"))?,
        );
    }
    Ok(out)
}

fn millis(ms: i64) -> PyResult<u64> {
    u64::try_from(ms).map_err(|_| invalid(format!("timestamp {ms} is negative")))
}

#[pymethods]
impl Store {
    /// Opens (or with `create`, makes) the database in directory `path`.
    /// `sync_writes`: every write reaches stable storage before it returns.
    #[new]
    #[pyo3(signature = (path, create = true, cache_mb = 256, sync_writes = true))]
    fn new(py: Python<'_>, path: PathBuf, create: bool, cache_mb: u64, sync_writes: bool) -> PyResult<Self> {
        let p = path.clone();
        let engine = py.detach(|| {
            guard("open", || {
                let opts = EngineOptions {
                    create,
                    cache_bytes: cache_mb << 20,
                    ..EngineOptions::default()
                };
                let rocks = RocksConfig {
                    sync_writes,
                    ..RocksConfig::default()
                };
                mxstate_rocks::open_with(&p, opts, &rocks)
            })
        })?;
        Ok(Store::with(
            Backend::Local(Arc::new(engine)),
            path.display().to_string(),
            Some(path),
            cache_mb,
        ))
    }

    /// Connects to a running `mxstate serve` at `address` (`unix:PATH` or
    /// `tcp:HOST:PORT`); `secret_file` holds the service's shared secret.
    /// Fails at once if the service cannot be reached or refuses us; later,
    /// while it is down, calls fail with `BackendError` and the store
    /// reconnects by itself when it is back.
    #[staticmethod]
    #[pyo3(signature = (address, secret_file = None, connections = 4, timeout_s = 60.0, cache_mb = 256))]
    fn connect(
        py: Python<'_>,
        address: &str,
        secret_file: Option<PathBuf>,
        connections: usize,
        timeout_s: f64,
        cache_mb: u64,
    ) -> PyResult<Self> {
        let addr = guard("connect", || Addr::parse(address))?;
        let secret = match secret_file {
            None => None,
            Some(f) => {
                let bytes = std::fs::read(&f)
                    .map_err(|e| invalid(format!("{}: cannot read the secret file: {e}", f.display())))?;
                Some(
                    mxstate_remote::auth::Secret::new(&bytes)
                        .ok_or_else(|| invalid(format!("{}: a secret must be at least 16 bytes", f.display())))?,
                )
            }
        };
        if !(timeout_s.is_finite() && timeout_s > 0.0) {
            return Err(invalid(format!(
                "timeout_s must be a positive number of seconds, not {timeout_s}"
            )));
        }
        let opts = RemoteOptions {
            secret,
            connections: connections.max(1),
            request_timeout: Duration::from_secs_f64(timeout_s),
            ..RemoteOptions::default()
        };
        let remote = py.detach(|| {
            guard("connect", || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("mxstate-client")
                    .enable_all()
                    .build()
                    .map_err(|e| Error::internal(format!("cannot start the client runtime: {e}")))?;
                let store = rt.block_on(RemoteStore::connect(addr.clone(), opts))?;
                Ok(Remote::new(rt, store))
            })
        })?;
        Ok(Store::with(Backend::Remote(remote), address.to_owned(), None, cache_mb))
    }

    /// Closes the database (calls in flight finish first).
    fn close(&self) -> PyResult<()> {
        let mut g = self
            .backend
            .lock()
            .map_err(|_| crate::errors::InternalError::new_err("store lock poisoned"))?;
        *g = None;
        Ok(())
    }

    /// The database directory (None for a store reached through a service).
    #[getter]
    fn path(&self) -> Option<PathBuf> {
        self.path.clone()
    }

    /// The database directory or the service's address.
    #[getter]
    fn location(&self) -> String {
        self.location.clone()
    }

    /// Whether calls go to a service.
    #[getter]
    fn remote(&self) -> PyResult<bool> {
        Ok(matches!(*self.backend()?, Backend::Remote(_)))
    }

    /// Stores one group; returns its id. With `prev_group`, the state is
    /// prev's with `delta` applied; else `current_state` is the whole
    /// state. With `now_ms`, a pending deletion of `prev_group` is bumped
    /// in the same transaction (Synapse's deletion protocol).
    #[pyo3(signature = (room_id, event_id, prev_group, delta, current_state, now_ms = None))]
    #[allow(clippy::too_many_arguments)] // Synapse's store_state_group, plus the clock
    fn store_group(
        &self,
        py: Python<'_>,
        room_id: &str,
        event_id: &str,
        prev_group: Option<i64>,
        delta: Option<&Bound<'_, PyDict>>,
        current_state: Option<&Bound<'_, PyDict>>,
        now_ms: Option<i64>,
    ) -> PyResult<GroupId> {
        let room = convert::room(room_id)?;
        let event = convert::event(event_id)?;
        let now = now_ms.map(millis).transpose()?;
        let (prev, delta, full) = match (prev_group, delta, current_state) {
            (Some(p), Some(d), _) => (Some(convert::group_id(p)?), convert::delta(d)?, None),
            (Some(_), None, _) => return Err(invalid("delta is None while prev_group is given")),
            (None, _, Some(s)) => (None, Default::default(), Some(convert::state_map(s)?)),
            (None, _, None) => return Err(invalid("current_state and prev_group can't both be None")),
        };
        let engine = self.backend()?;
        run(py, "store_group", &engine, |e| {
            let state = match (prev, &full) {
                (Some(prev), _) => GroupState::Delta { prev, delta: &delta },
                (None, Some(s)) => GroupState::Full(s),
                (None, None) => return Err(Error::internal("neither prev nor state")),
            };
            let ids = e.store_groups_at(
                &[NewGroup {
                    id: None,
                    room_id: &room,
                    event_id: &event,
                    state,
                }],
                now,
            )?;
            ids.first()
                .copied()
                .ok_or_else(|| Error::internal("store_groups_at returned no id"))
        })
    }

    /// Stores a linear chain of one-event deltas on `prev_group` in one
    /// transaction: `entries` is a list of `(event_id, delta)`; each group's
    /// prev is the one before. Returns the new ids in order.
    #[pyo3(signature = (room_id, prev_group, entries, now_ms = None))]
    fn store_chain(
        &self,
        py: Python<'_>,
        room_id: &str,
        prev_group: i64,
        entries: &Bound<'_, PyList>,
        now_ms: Option<i64>,
    ) -> PyResult<Vec<GroupId>> {
        let room = convert::room(room_id)?;
        let prev = convert::group_id(prev_group)?;
        let now = now_ms.map(millis).transpose()?;
        let mut parsed = Vec::with_capacity(entries.len());
        for item in entries.iter() {
            let (e, d): (String, Bound<'_, PyDict>) = item
                .extract()
                .map_err(|_| invalid("store_chain entries are (event_id, delta) pairs"))?;
            parsed.push((convert::event(&e)?, convert::delta(&d)?));
        }
        let engine = self.backend()?;
        run(py, "store_chain", &engine, |e| {
            let groups: Vec<NewGroup<'_>> = parsed
                .iter()
                .enumerate()
                .map(|(i, (ev, d))| NewGroup {
                    id: None,
                    room_id: &room,
                    event_id: ev,
                    state: if i == 0 {
                        GroupState::Delta { prev, delta: d }
                    } else {
                        GroupState::DeltaOnPrevious { delta: d }
                    },
                })
                .collect();
            e.store_groups_at(&groups, now)
        })
    }

    /// The state of each group under a Synapse `StateFilter` given as
    /// `types` and `include_others`: `{group: {(type, state_key): event_id}}`.
    /// A group that does not exist maps to an empty dict, as in Synapse.
    #[pyo3(signature = (groups, types = None, include_others = true))]
    fn state_for_groups<'py>(
        &self,
        py: Python<'py>,
        groups: &Bound<'py, PyAny>,
        types: Option<&Bound<'py, PyDict>>,
        include_others: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let ids = convert::groups(groups)?;
        let filter = match types {
            Some(t) => convert::filter(t, include_others)?,
            None if include_others => mxstate_api::StateFilter::all(),
            None => mxstate_api::StateFilter::none(),
        };
        let engine = self.backend()?;
        let views = run(py, "state_for_groups", &engine, |e| e.states(&ids, &filter))?;
        let mut sections = self
            .sections
            .lock()
            .map_err(|_| crate::errors::InternalError::new_err("section cache lock poisoned"))?;
        let result = PyDict::new(py);
        for (g, v) in views {
            let d = match v {
                Some(Found::View(v)) => convert::view_to_dict(py, &v, &mut sections)?,
                Some(Found::Triples(t)) => convert::triples_to_dict(py, &t)?,
                None => PyDict::new(py),
            };
            result.set_item(g, d)?;
        }
        Ok(result)
    }

    /// `(prev_group, delta)` as stored, or None for a group stored whole
    /// (or unknown).
    fn group_delta<'py>(&self, py: Python<'py>, group: i64) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let g = convert::group_id(group)?;
        let engine = self.backend()?;
        let d = run(py, "group_delta", &engine, |e| match e.state_group_delta(g) {
            Err(Error::UnknownGroup(_)) => Ok(None),
            other => other,
        })?;
        let Some(d) = d else { return Ok(None) };
        let map = PyDict::new(py);
        for (k, v) in &d.delta {
            match v {
                Some(ev) => map.set_item(PyTuple::new(py, [k.event_type(), k.state_key()])?, ev.as_str())?,
                // Synapse's deltas cannot remove a key: such a group reads as stored whole.
                None => return Ok(None),
            }
        }
        Ok(Some(PyTuple::new(
            py,
            [d.prev_group.into_pyobject(py)?.into_any(), map.into_any()],
        )?))
    }

    /// `{group: prev_group}` for the given groups that have a prev.
    fn previous_groups(&self, py: Python<'_>, groups: &Bound<'_, PyAny>) -> PyResult<BTreeMap<GroupId, GroupId>> {
        let ids = convert::groups(groups)?;
        let engine = self.backend()?;
        run(py, "previous_groups", &engine, |e| e.previous_groups(&ids))
    }

    /// `{child: prev_group}` for the groups whose prev is one of `groups`.
    fn next_groups(&self, py: Python<'_>, groups: &Bound<'_, PyAny>) -> PyResult<BTreeMap<GroupId, GroupId>> {
        let ids = convert::groups(groups)?;
        let engine = self.backend()?;
        run(py, "next_groups", &engine, |e| e.next_groups(&ids))
    }

    /// The groups of a room, ascending.
    fn room_groups(&self, py: Python<'_>, room_id: &str) -> PyResult<Vec<GroupId>> {
        let room = convert::room(room_id)?;
        let engine = self.backend()?;
        run(py, "room_groups", &engine, |e| e.room_groups(&room))
    }

    /// The room of a group, or None if it does not exist.
    fn group_room(&self, py: Python<'_>, group: i64) -> PyResult<Option<String>> {
        let g = convert::group_id(group)?;
        let engine = self.backend()?;
        run(py, "group_room", &engine, |e| match e.group_room(g) {
            Ok(r) => Ok(Some(r.as_str().to_owned())),
            Err(Error::UnknownGroup(_)) => Ok(None),
            Err(err) => Err(err),
        })
    }

    /// The event a group was stored for, or None if it does not exist.
    fn group_event(&self, py: Python<'_>, group: i64) -> PyResult<Option<String>> {
        let g = convert::group_id(group)?;
        let engine = self.backend()?;
        run(py, "group_event", &engine, |e| match e.group_event(g) {
            Ok(ev) => Ok(Some(ev.as_str().to_owned())),
            Err(Error::UnknownGroup(_)) => Ok(None),
            Err(err) => Err(err),
        })
    }

    /// The subset of `groups` that exist.
    fn existing_groups<'py>(&self, py: Python<'py>, groups: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PySet>> {
        let ids = convert::groups(groups)?;
        let engine = self.backend()?;
        let found = run(py, "existing_groups", &engine, |e| e.existing_groups(&ids))?;
        id_set(py, found)
    }

    /// Up to `limit` group ids below `before`, descending.
    fn groups_below(&self, py: Python<'_>, before: i64, limit: usize) -> PyResult<Vec<GroupId>> {
        let b = convert::group_id(before)?;
        let engine = self.backend()?;
        run(py, "groups_below", &engine, |e| e.groups_below(b, limit))
    }

    /// The highest group id, or None when there is no group.
    fn max_group(&self, py: Python<'_>) -> PyResult<Option<GroupId>> {
        let engine = self.backend()?;
        run(py, "max_group", &engine, |e| e.max_group())
    }

    /// Records auth events: `rooms` is a list of `(room_id, [(event_id,
    /// [auth_event_id, ...]), ...])`; with `mark = (min, max)`, the
    /// stored mark is widened to cover it, in the same transaction. The
    /// auth methods take any string as an id: Matrix ids are kept as they
    /// are, others (Synapse's tests use `a`, `@ROOM:local`) under a
    /// reserved form, and answers give them back as they came.
    #[pyo3(signature = (rooms, mark = None))]
    fn add_auth_events(
        &self,
        py: Python<'_>,
        rooms: Vec<(String, mxstate_remote::wire::WAuthEvents)>,
        mark: Option<(i64, i64)>,
    ) -> PyResult<()> {
        let rooms = rooms
            .into_iter()
            .map(|(room, events)| {
                let events = events
                    .iter()
                    .map(|(e, auth)| {
                        Ok((
                            convert::auth_event(e)?,
                            auth.iter()
                                .map(|a| convert::auth_event(a))
                                .collect::<PyResult<Vec<_>>>()?,
                        ))
                    })
                    .collect::<PyResult<Vec<_>>>()?;
                Ok((convert::auth_room(&room)?, events))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let mark = mark.map(|(min, max)| mxstate_engine::AuthMark { min, max });
        let engine = self.backend()?;
        run(py, "add_auth_events", &engine, |e| {
            e.add_auth_events_marked(&rooms, mark)
        })
    }

    /// The stored auth mark `(min, max)`, or None before any was stored.
    fn auth_mark(&self, py: Python<'_>) -> PyResult<Option<(i64, i64)>> {
        let engine = self.backend()?;
        Ok(run(py, "auth_mark", &engine, |e| e.auth_mark())?.map(|m| (m.min, m.max)))
    }

    /// Synapse's `get_auth_chain_ids`, as a new set. The ids are looked
    /// up as the text Python holds (no copy, no parse, for Matrix ids).
    #[pyo3(signature = (room_id, event_ids, include_given = false))]
    fn auth_chain<'py>(
        &self,
        py: Python<'py>,
        room_id: &str,
        event_ids: Vec<Bound<'py, PyString>>,
        include_given: bool,
    ) -> PyResult<Bound<'py, PySet>> {
        let room = convert::auth_room(room_id)?;
        let events = auth_texts(&event_ids)?;
        let engine = self.backend()?;
        let chain = run(py, "auth_chain", &engine, |e| {
            e.auth_chain_text(&room, &events, include_given)
        })?;
        PySet::new(py, chain.iter().map(|n| convert::text_name(n)))
    }

    /// Synapse's `get_auth_chain_difference_extended`: `(difference,
    /// subgraph)` as new sets, the subgraph None unless `conflicted` is
    /// given. Lists, not sets, come in: the engine needs no order (sorting
    /// 10,000 ids into a set took most of a call).
    #[pyo3(signature = (room_id, state_sets, conflicted = None, additional = None))]
    #[allow(clippy::type_complexity)]
    fn auth_chain_difference<'py>(
        &self,
        py: Python<'py>,
        room_id: &str,
        state_sets: Vec<Vec<Bound<'py, PyString>>>,
        conflicted: Option<Vec<Bound<'py, PyString>>>,
        additional: Option<Vec<Bound<'py, PyString>>>,
    ) -> PyResult<(Bound<'py, PySet>, Option<Bound<'py, PySet>>)> {
        let room = convert::auth_room(room_id)?;
        let sets = state_sets.iter().map(|s| auth_texts(s)).collect::<PyResult<Vec<_>>>()?;
        let conflicted = match &conflicted {
            None => None,
            Some(c) => Some((auth_texts(c)?, auth_texts(additional.as_deref().unwrap_or_default())?)),
        };
        let engine = self.backend()?;
        let (difference, subgraph) = run(py, "auth_chain_difference", &engine, |e| {
            e.auth_chain_difference_text(&room, &sets, conflicted.as_ref().map(|(c, a)| (c, a)))
        })?;
        let set = |v: &[Arc<str>]| PySet::new(py, v.iter().map(|n| convert::text_name(n)));
        Ok((set(&difference)?, subgraph.as_deref().map(set).transpose()?))
    }

    /// Deletes everything stored for a room (a room never seen is fine).
    fn purge_room(&self, py: Python<'_>, room_id: &str) -> PyResult<()> {
        let room = convert::room(room_id)?;
        let engine = self.backend()?;
        run(py, "purge_room", &engine, |e| match e.purge_room(&room) {
            Err(Error::UnknownRoom(_)) => Ok(()),
            other => other,
        })
    }

    /// Which of `groups` do not exist; existing ones pending deletion are bumped.
    fn check_and_bump_deletion<'py>(
        &self,
        py: Python<'py>,
        groups: &Bound<'py, PyAny>,
        now_ms: i64,
    ) -> PyResult<Bound<'py, PySet>> {
        let ids = convert::groups(groups)?;
        let now = millis(now_ms)?;
        let engine = self.backend()?;
        let missing = run(py, "check_and_bump_deletion", &engine, |e| {
            e.check_and_bump_deletion(&ids, now)
        })?;
        id_set(py, missing)
    }

    /// Marks groups as used by a persist of `instance`; returns the missing
    /// groups (and marks nothing) if some are gone.
    fn mark_persisting<'py>(
        &self,
        py: Python<'py>,
        groups: &Bound<'py, PyAny>,
        instance: &str,
        now_ms: i64,
    ) -> PyResult<Bound<'py, PySet>> {
        let ids = convert::groups(groups)?;
        let now = millis(now_ms)?;
        let engine = self.backend()?;
        let missing = run(py, "mark_persisting", &engine, |e| {
            e.mark_persisting(&ids, instance, now)
        })?;
        id_set(py, missing)
    }

    /// Ends a persist of `instance`.
    fn finish_persisting(
        &self,
        py: Python<'_>,
        groups: &Bound<'_, PyAny>,
        instance: &str,
        error: bool,
        now_ms: i64,
    ) -> PyResult<()> {
        let ids = convert::groups(groups)?;
        let now = millis(now_ms)?;
        let engine = self.backend()?;
        run(py, "finish_persisting", &engine, |e| {
            e.finish_persisting(&ids, instance, error, now)
        })
    }

    /// Forgets `instance`'s persist marks and all older than `older_than_ms`.
    fn clear_persisting<'py>(
        &self,
        py: Python<'py>,
        instance: &str,
        older_than_ms: i64,
    ) -> PyResult<Bound<'py, PySet>> {
        let cutoff = millis(older_than_ms)?;
        let engine = self.backend()?;
        let gone = run(py, "clear_persisting", &engine, |e| {
            e.clear_persisting(instance, cutoff)
        })?;
        id_set(py, gone)
    }

    /// Every persist mark as `(group, instance, inserted_ts)`.
    fn persisting_marks(&self, py: Python<'_>) -> PyResult<Vec<(GroupId, String, u64)>> {
        let engine = self.backend()?;
        run(py, "persisting_marks", &engine, |e| e.persisting_marks())
    }

    /// Marks groups as pending deletion (marked ones keep their mark).
    fn mark_pending_deletion(&self, py: Python<'_>, groups: &Bound<'_, PyAny>, now_ms: i64) -> PyResult<()> {
        let ids = convert::groups(groups)?;
        let now = millis(now_ms)?;
        let engine = self.backend()?;
        run(py, "mark_pending_deletion", &engine, |e| {
            e.mark_pending_deletion(&ids, now)
        })
    }

    /// Clears the pending-deletion marks of groups.
    fn mark_used(&self, py: Python<'_>, groups: &Bound<'_, PyAny>) -> PyResult<()> {
        let ids = convert::groups(groups)?;
        let engine = self.backend()?;
        run(py, "mark_used", &engine, |e| e.mark_used(&ids))
    }

    /// `{group: sequence_number}` of the given groups pending deletion.
    fn pending_deletions(&self, py: Python<'_>, groups: &Bound<'_, PyAny>) -> PyResult<BTreeMap<GroupId, u64>> {
        let ids = convert::groups(groups)?;
        let engine = self.backend()?;
        run(py, "pending_deletions", &engine, |e| e.pending_deletions(&ids))
    }

    /// `(room_id, {group: sequence_number})` of the next groups to try to
    /// delete, or None.
    fn next_deletion_candidates(
        &self,
        py: Python<'_>,
        now_ms: i64,
        delay_ms: i64,
    ) -> PyResult<Option<(String, BTreeMap<GroupId, u64>)>> {
        let now = millis(now_ms)?;
        let delay = millis(delay_ms)?;
        let engine = self.backend()?;
        run(py, "next_deletion_candidates", &engine, |e| {
            Ok(e.next_deletion_candidates(now, delay)?
                .map(|(r, m)| (r.as_str().to_owned(), m)))
        })
    }

    /// Which candidates `{group: sequence_number}` may be deleted now.
    fn ready_for_deletion<'py>(
        &self,
        py: Python<'py>,
        candidates: &Bound<'py, PyDict>,
        now_ms: i64,
        delay_ms: i64,
    ) -> PyResult<Bound<'py, PySet>> {
        let c = seq_map(candidates)?;
        let now = millis(now_ms)?;
        let delay = millis(delay_ms)?;
        let engine = self.backend()?;
        let ready = run(py, "ready_for_deletion", &engine, |e| {
            e.ready_for_deletion(&c, now, delay)
        })?;
        id_set(py, ready)
    }

    /// Deletes the ready candidates of a room in one transaction, re-basing
    /// the groups stored on them; returns the deleted groups.
    fn purge_if_ready<'py>(
        &self,
        py: Python<'py>,
        room_id: &str,
        candidates: &Bound<'py, PyDict>,
        now_ms: i64,
        delay_ms: i64,
    ) -> PyResult<Bound<'py, PyList>> {
        let room = convert::room(room_id)?;
        let c = seq_map(candidates)?;
        let now = millis(now_ms)?;
        let delay = millis(delay_ms)?;
        let engine = self.backend()?;
        let gone = run(py, "purge_if_ready", &engine, |e| {
            match e.purge_if_ready(&room, &c, now, delay) {
                Err(Error::UnknownRoom(_)) => Ok(Vec::new()),
                other => other,
            }
        })?;
        id_list(py, gone)
    }

    /// Figures about the database, as a dict (`rooms`, `groups`,
    /// `snapshots`, `bytes_on_disk`, and in process `longest_chain` and
    /// `column_families`, name to bytes).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let engine = self.backend()?;
        if let Backend::Remote(r) = &*engine {
            let json = py.detach(|| guard("stats", || r.stats_json()))?;
            let all = py.import("json")?.call_method1("loads", (json,))?;
            return Ok(all.get_item("database")?.cast_into::<PyDict>()?);
        }
        let Backend::Local(local) = &*engine else {
            return Err(crate::errors::InternalError::new_err("unreachable backend"));
        };
        let s = py.detach(|| guard("stats", || local.stats()))?;
        let d = PyDict::new(py);
        d.set_item("rooms", s.rooms)?;
        d.set_item("groups", s.groups)?;
        d.set_item("snapshots", s.snapshots)?;
        d.set_item("longest_chain", s.longest_chain)?;
        d.set_item("bytes_on_disk", s.bytes_on_disk)?;
        let families = PyDict::new(py);
        for c in &s.column_families {
            families.set_item(c.name, c.bytes)?;
        }
        d.set_item("column_families", families)?;
        Ok(d)
    }

    /// Flushes and compacts the database (for size measurements; only in
    /// the process that owns it).
    fn compact(&self, py: Python<'_>) -> PyResult<()> {
        let engine = self.backend()?;
        match &*engine {
            Backend::Local(local) => py.detach(|| guard("compact", || local.compact())),
            Backend::Remote(_) => Err(crate::errors::ConflictError::new_err(format!(
                "{}: compact runs in the process that owns the database, not through a service",
                self.location
            ))),
        }
    }

    fn __repr__(&self) -> String {
        format!("<mxstate Store {}>", self.location)
    }
}
