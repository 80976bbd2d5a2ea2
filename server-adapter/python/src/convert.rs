//! Python values to and from mxstate's types.

use std::borrow::Cow;
use std::collections::BTreeSet;

use mxstate_api::{EventId, GroupId, RoomId, StateDelta, StateFilter, StateKey, StateMap};
use mxstate_engine::StateView;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::errors::{invalid, to_py};
use crate::sections::SectionCache;

/// A room id from Python.
pub fn room(s: &str) -> PyResult<RoomId> {
    RoomId::parse(s).map_err(to_py)
}

/// An event id from Python.
pub fn event(s: &str) -> PyResult<EventId> {
    EventId::parse(s).map_err(to_py)
}

/// Marks an id kept under the reserved form (U+0001 never is in a Matrix id).
const RAW: char = '\u{1}';
/// Stands for `:` in the reserved form.
const COLON: char = '\u{2}';

fn reserved(sigil: char, s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(sigil);
    out.push(RAW);
    out.extend(s.chars().map(|c| if c == ':' { COLON } else { c }));
    out
}

/// An event id as the auth index keeps it: a Matrix event id as it is,
/// any other string (Synapse's tests name events `a`, `b`, ...) under a
/// reserved form that [`text_name`] turns back.
pub fn auth_event(s: &str) -> PyResult<EventId> {
    if !s.contains([RAW, COLON]) {
        if let Ok(e) = EventId::parse(s) {
            return Ok(e);
        }
    }
    EventId::parse(reserved('$', s)).map_err(to_py)
}

/// A room id as the auth index keeps it (as [`auth_event`]).
pub fn auth_room(s: &str) -> PyResult<RoomId> {
    if !s.contains([RAW, COLON]) {
        if let Ok(r) = RoomId::parse(s) {
            return Ok(r);
        }
    }
    RoomId::parse(reserved('!', s)).map_err(to_py)
}

/// The text the auth index keeps for `s`: [`auth_event`]'s, without
/// making an `EventId` of a Matrix event id (borrowed as it is).
pub fn auth_text(s: &str) -> Cow<'_, str> {
    if !s.contains([RAW, COLON]) && EventId::is_valid(s) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(reserved('$', s))
    }
}

/// The string the auth index's text `s` was made from ([`auth_text`]
/// undone).
pub fn text_name(s: &str) -> Cow<'_, str> {
    match s.strip_prefix('$').and_then(|r| r.strip_prefix(RAW)) {
        Some(raw) => Cow::Owned(raw.chars().map(|c| if c == COLON { ':' } else { c }).collect()),
        None => Cow::Borrowed(s),
    }
}

fn key(k: &Bound<'_, PyAny>) -> PyResult<StateKey> {
    let (t, s): (String, String) = k
        .extract()
        .map_err(|_| invalid(format!("state key {k} is not a (type, state_key) pair of strings")))?;
    StateKey::new(t, s).map_err(to_py)
}

fn event_of(k: &Bound<'_, PyAny>, v: &Bound<'_, PyAny>) -> PyResult<EventId> {
    let e: String = v
        .extract()
        .map_err(|_| invalid(format!("event id {v} of state key {k} is not a string")))?;
    event(&e)
}

/// A Synapse state map `{(type, state_key): event_id}`.
pub fn state_map(d: &Bound<'_, PyDict>) -> PyResult<StateMap> {
    let mut out = StateMap::with_capacity_and_hasher(d.len(), Default::default());
    for (k, v) in d.iter() {
        out.insert(key(&k)?, event_of(&k, &v)?);
    }
    Ok(out)
}

/// A Synapse delta `{(type, state_key): event_id}` (Synapse's deltas never remove keys).
pub fn delta(d: &Bound<'_, PyDict>) -> PyResult<StateDelta> {
    let mut out = StateDelta::new();
    for (k, v) in d.iter() {
        out.insert(key(&k)?, Some(event_of(&k, &v)?));
    }
    Ok(out)
}

/// A Synapse `StateFilter` given as its parts: `types` maps a type to
/// `None` (every state key) or a collection of state keys; types not
/// listed are included when `include_others` is set.
pub fn filter(types: &Bound<'_, PyDict>, include_others: bool) -> PyResult<StateFilter> {
    let mut f = StateFilter::none().with_include_others(include_others);
    for (t, keys) in types.iter() {
        let t: String = t
            .extract()
            .map_err(|_| invalid(format!("filter type {t} is not a string")))?;
        if keys.is_none() {
            f.add(&t, None);
            continue;
        }
        let keys: BTreeSet<String> = keys
            .extract()
            .map_err(|_| invalid(format!("filter state keys of {t} are not a collection of strings")))?;
        if keys.is_empty() {
            // An empty set: none of this type (even with include_others).
            f.add_none_of(&t);
        }
        for k in &keys {
            f.add(&t, Some(k));
        }
    }
    Ok(f)
}

/// A set of group ids from Python (any iterable of ints).
pub fn groups(g: &Bound<'_, PyAny>) -> PyResult<BTreeSet<GroupId>> {
    let mut out = BTreeSet::new();
    for item in g.try_iter()? {
        let item = item?;
        let id: i64 = item
            .extract()
            .map_err(|_| invalid(format!("state group {item} is not an integer")))?;
        out.insert(group_id(id)?);
    }
    Ok(out)
}

/// One group id from Python.
pub fn group_id(id: i64) -> PyResult<GroupId> {
    u64::try_from(id).map_err(|_| invalid(format!("state group {id} is negative")))
}

/// A state view as a Python dict `{(type, state_key): event_id}`; whole
/// snapshot sections insert the objects `sections` keeps for them, other
/// entries the objects kept by their interned ids.
pub fn view_to_dict<'py>(
    py: Python<'py>,
    view: &StateView,
    sections: &mut SectionCache,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for part in view.parts() {
        let table = part.table();
        if let Some(id) = table.id() {
            let objects = sections.get(py, id, table)?;
            for i in part.visible() {
                let (Some(k), Some(e)) = (objects.keys.get(i), objects.events.get(i)) else {
                    return Err(crate::errors::InternalError::new_err(format!(
                        "section {id:?} has no entry {i}"
                    )));
                };
                d.set_item(k.bind(py), e.bind(py))?;
            }
            continue;
        }
        for i in part.visible() {
            let Some((t, k, e)) = table.entry(i) else {
                return Err(crate::errors::InternalError::new_err(format!(
                    "a view's table has no entry {i}"
                )));
            };
            match table.ids(i) {
                Some((key_id, event_id)) => {
                    let key = sections.key(py, key_id, t, k)?;
                    let event = sections.event(py, event_id, e);
                    d.set_item(key.bind(py), event.bind(py))?;
                }
                None => d.set_item(PyTuple::new(py, [t, k])?, e)?,
            }
        }
    }
    Ok(d)
}

/// A state received from a service as a Python dict `{(type, state_key): event_id}`.
pub fn triples_to_dict<'py>(py: Python<'py>, state: &[(String, String, String)]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (t, k, e) in state {
        d.set_item(PyTuple::new(py, [t.as_str(), k.as_str()])?, e.as_str())?;
    }
    Ok(d)
}
