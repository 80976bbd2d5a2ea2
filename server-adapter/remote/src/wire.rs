//! Requests and replies, as plain strings and integers on the wire, and
//! their conversion to the API's types. Everything a peer sends is
//! validated on the way in (room and event ids, event types), exactly as
//! the API's constructors validate it in-process.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::adapter::{AdapterOp, AdapterReply};
use mxstate_api::{
    AuthEvents, Error, ErrorKind, EventId, GroupContent, GroupDelta, GroupId, GroupWrite, Result, RoomId, StateDelta,
    StateFilter, StateKey, StateMap,
};

/// A state on the wire: `(type, state_key, event_id)` triples.
pub type WState = Vec<(String, String, String)>;
/// A delta on the wire: `None` removes the key.
pub type WDelta = Vec<(String, String, Option<String>)>;

/// Events with their auth events on the wire.
pub type WAuthEvents = Vec<(String, Vec<String>)>;

/// A filter on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WFilter {
    pub types: Vec<(String, Option<Vec<String>>)>,
    pub include_others: bool,
}

/// A group to store, on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WGroup {
    pub id: Option<GroupId>,
    pub room: String,
    pub event: String,
    pub prev: Option<GroupId>,
    /// The delta on `prev`, or with no prev the whole state (all `Some`).
    pub entries: WDelta,
}

/// One request. Every `StateStore` call, plus the service's own.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Op {
    StoreGroups(Vec<WGroup>),
    StateForGroups {
        groups: Vec<GroupId>,
        filter: WFilter,
    },
    GroupDelta(GroupId),
    SetEventGroups(Vec<(String, GroupId)>),
    EventGroups(Vec<String>),
    SetCurrentState {
        room: String,
        state: WState,
    },
    CurrentState {
        room: String,
        filter: WFilter,
    },
    RoomGroups(String),
    PurgeRoom(String),
    PurgeUnreferenced {
        room: String,
        groups: Vec<GroupId>,
    },
    /// Health and figures of the service and its database.
    Stats,
    /// A request of the Synapse integration (see [`crate::adapter`]).
    Adapter(AdapterOp),
    /// `add_auth_events`: each event with its auth events.
    AddAuthEvents {
        room: String,
        events: WAuthEvents,
    },
    /// `auth_chain`.
    AuthChain {
        room: String,
        events: Vec<String>,
        include_given: bool,
    },
    /// `auth_chain_difference`; `conflicted`: the conflicted events and
    /// the additional backwards-reachable ones.
    AuthDifference {
        room: String,
        sets: Vec<Vec<String>>,
        conflicted: Option<(Vec<String>, Vec<String>)>,
    },
}

/// One reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Reply {
    Ids(Vec<GroupId>),
    States(Vec<(GroupId, WState)>),
    Delta(Option<(GroupId, WDelta)>),
    EventGroups(Vec<(String, GroupId)>),
    State(WState),
    Done,
    /// JSON: the service's counters and the database's figures.
    Stats(String),
    Adapter(AdapterReply),
    /// Event ids, sorted.
    Events(Vec<String>),
    /// The auth difference, and the conflicted subgraph when asked.
    AuthDifference {
        difference: Vec<String>,
        subgraph: Option<Vec<String>>,
    },
}

/// Event ids on the wire (sorted, as the sets are).
pub fn events_out<'a>(events: impl IntoIterator<Item = &'a EventId>) -> Vec<String> {
    events.into_iter().map(|e| e.as_str().to_owned()).collect()
}

/// Events with their auth events from the wire, validated.
pub fn auth_events_in(events: WAuthEvents) -> Result<AuthEvents> {
    events
        .into_iter()
        .map(|(e, auth)| {
            Ok((
                EventId::parse(e)?,
                auth.into_iter().map(EventId::parse).collect::<Result<Vec<_>>>()?,
            ))
        })
        .collect()
}

/// Events with their auth events, for the wire.
pub fn auth_events_out(events: &AuthEvents) -> WAuthEvents {
    events
        .iter()
        .map(|(e, auth)| (e.as_str().to_owned(), events_out(auth)))
        .collect()
}

/// Event ids from the wire, validated.
pub fn events_in(events: Vec<String>) -> Result<BTreeSet<EventId>> {
    events.into_iter().map(EventId::parse).collect()
}

/// An error on the wire. The errors a caller acts on keep their variant
/// (an unknown group, a taken id, ...); the others travel as their kind
/// and message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum WError {
    UnknownGroup(u64),
    UnknownRoom(String),
    InvalidRoomId(String),
    InvalidEventId(String),
    EmptyEventType(String),
    ReservedGroupId,
    PrevGroupInOtherRoom {
        group: u64,
        prev: u64,
        room: String,
        prev_room: String,
    },
    GroupNotInRoom {
        group: u64,
        room: String,
    },
    GroupIdTaken(u64),
    Other {
        kind: u8,
        message: String,
    },
}

/// A request frame.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    pub op: Op,
}

/// A response frame: the answer to request `id`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Response {
    pub id: u64,
    pub result: std::result::Result<Reply, WError>,
}

const KINDS: [ErrorKind; 7] = [
    ErrorKind::NotFound,
    ErrorKind::InvalidInput,
    ErrorKind::Conflict,
    ErrorKind::Corrupt,
    ErrorKind::Capacity,
    ErrorKind::Backend,
    ErrorKind::Internal,
];

impl WError {
    /// An error of `kind` with a message, as sent.
    pub fn other(kind: ErrorKind, message: String) -> WError {
        let kind = KINDS.iter().position(|&k| k == kind).unwrap_or(KINDS.len() - 1);
        WError::Other {
            kind: u8::try_from(kind).unwrap_or(u8::MAX),
            message,
        }
    }

    /// An error as sent.
    pub fn from_error(e: &Error) -> WError {
        match e {
            Error::UnknownGroup(g) => WError::UnknownGroup(*g),
            Error::UnknownRoom(r) => WError::UnknownRoom(r.clone()),
            Error::InvalidRoomId(r) => WError::InvalidRoomId(r.clone()),
            Error::InvalidEventId(r) => WError::InvalidEventId(r.clone()),
            Error::EmptyEventType(k) => WError::EmptyEventType(k.clone()),
            Error::ReservedGroupId => WError::ReservedGroupId,
            Error::PrevGroupInOtherRoom {
                group,
                prev,
                room,
                prev_room,
            } => WError::PrevGroupInOtherRoom {
                group: *group,
                prev: *prev,
                room: room.clone(),
                prev_room: prev_room.clone(),
            },
            Error::GroupNotInRoom { group, room } => WError::GroupNotInRoom {
                group: *group,
                room: room.clone(),
            },
            Error::GroupIdTaken(g) => WError::GroupIdTaken(*g),
            other => WError::other(other.kind(), other.to_string()),
        }
    }

    /// The error as the client reports it.
    pub fn into_error(self) -> Error {
        match self {
            WError::UnknownGroup(g) => Error::UnknownGroup(g),
            WError::UnknownRoom(r) => Error::UnknownRoom(r),
            WError::InvalidRoomId(r) => Error::InvalidRoomId(r),
            WError::InvalidEventId(r) => Error::InvalidEventId(r),
            WError::EmptyEventType(k) => Error::EmptyEventType(k),
            WError::ReservedGroupId => Error::ReservedGroupId,
            WError::PrevGroupInOtherRoom {
                group,
                prev,
                room,
                prev_room,
            } => Error::PrevGroupInOtherRoom {
                group,
                prev,
                room,
                prev_room,
            },
            WError::GroupNotInRoom { group, room } => Error::GroupNotInRoom { group, room },
            WError::GroupIdTaken(g) => Error::GroupIdTaken(g),
            WError::Other { kind, message } => Error::Remote {
                kind: KINDS.get(usize::from(kind)).copied().unwrap_or(ErrorKind::Internal),
                message,
            },
        }
    }
}

/// A filter for the wire.
pub fn filter_out(f: &StateFilter) -> WFilter {
    WFilter {
        types: f
            .types()
            .iter()
            .map(|(t, keys)| (t.clone(), keys.as_ref().map(|k| k.iter().cloned().collect())))
            .collect(),
        include_others: f.include_others(),
    }
}

/// A filter from the wire.
pub fn filter_in(w: WFilter) -> Result<StateFilter> {
    let mut f = StateFilter::none().with_include_others(w.include_others);
    for (t, keys) in &w.types {
        if t.is_empty() {
            return Err(Error::EmptyEventType(String::new()));
        }
        match keys {
            None => {
                f.add(t, None);
            }
            Some(keys) if keys.is_empty() => {
                f.add_none_of(t);
            }
            Some(keys) => {
                let unique: BTreeSet<&String> = keys.iter().collect();
                for k in unique {
                    f.add(t, Some(k));
                }
            }
        }
    }
    Ok(f)
}

/// A state for the wire.
pub fn state_out(s: &StateMap) -> WState {
    s.iter()
        .map(|(k, e)| {
            (
                k.event_type().to_owned(),
                k.state_key().to_owned(),
                e.as_str().to_owned(),
            )
        })
        .collect()
}

/// A state from the wire.
pub fn state_in(w: WState) -> Result<StateMap> {
    w.into_iter()
        .map(|(t, k, e)| Ok((StateKey::new(t, k)?, EventId::parse(e)?)))
        .collect()
}

/// A delta for the wire.
pub fn delta_out(d: &StateDelta) -> WDelta {
    d.iter()
        .map(|(k, e)| {
            (
                k.event_type().to_owned(),
                k.state_key().to_owned(),
                e.as_ref().map(|e| e.as_str().to_owned()),
            )
        })
        .collect()
}

/// A delta from the wire.
pub fn delta_in(w: WDelta) -> Result<StateDelta> {
    w.into_iter()
        .map(|(t, k, e)| Ok((StateKey::new(t, k)?, e.map(EventId::parse).transpose()?)))
        .collect()
}

/// A group to store, for the wire.
pub fn group_out(g: &GroupWrite) -> WGroup {
    let (prev, entries) = match &g.content {
        GroupContent::Delta { prev, delta } => (Some(*prev), delta_out(delta)),
        GroupContent::Full(state) => (
            None,
            state_out(state).into_iter().map(|(t, k, e)| (t, k, Some(e))).collect(),
        ),
    };
    WGroup {
        id: g.id,
        room: g.room_id.as_str().to_owned(),
        event: g.event_id.as_str().to_owned(),
        prev,
        entries,
    }
}

/// A group to store, from the wire.
pub fn group_in(w: WGroup) -> Result<GroupWrite> {
    let content = match w.prev {
        Some(prev) => GroupContent::Delta {
            prev,
            delta: delta_in(w.entries)?,
        },
        None => {
            let mut state = StateMap::default();
            for (t, k, e) in w.entries {
                let e = e.ok_or_else(|| Error::InvalidRequest("a full state with a removed key".into()))?;
                state.insert(StateKey::new(t, k)?, EventId::parse(e)?);
            }
            GroupContent::Full(state)
        }
    };
    Ok(GroupWrite {
        id: w.id,
        room_id: RoomId::parse(w.room)?,
        event_id: EventId::parse(w.event)?,
        content,
    })
}

/// Group states for the wire.
pub fn states_out(m: &BTreeMap<GroupId, StateMap>) -> Vec<(GroupId, WState)> {
    m.iter().map(|(g, s)| (*g, state_out(s))).collect()
}

/// Group states from the wire.
pub fn states_in(w: Vec<(GroupId, WState)>) -> Result<BTreeMap<GroupId, StateMap>> {
    w.into_iter().map(|(g, s)| Ok((g, state_in(s)?))).collect()
}

/// A group delta from the wire.
pub fn group_delta_in(w: Option<(GroupId, WDelta)>) -> Result<Option<GroupDelta>> {
    w.map(|(prev_group, d)| {
        Ok(GroupDelta {
            prev_group,
            delta: delta_in(d)?,
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_round_trip() {
        let mut f = StateFilter::none().with_include_others(true);
        f.add("m.room.member", Some("@a:x"));
        f.add("m.room.name", None);
        f.add_none_of("m.room.topic");
        assert_eq!(filter_in(filter_out(&f)).unwrap(), f);
        assert_eq!(filter_in(filter_out(&StateFilter::all())).unwrap(), StateFilter::all());
    }

    #[test]
    fn input_is_validated() {
        let bad_room = WGroup {
            id: None,
            room: "no-bang".into(),
            event: "$e".into(),
            prev: None,
            entries: vec![],
        };
        assert_eq!(group_in(bad_room).unwrap_err().kind(), ErrorKind::InvalidInput);
        let empty_type = vec![(String::new(), "k".into(), "$e".into())];
        assert_eq!(state_in(empty_type).unwrap_err().kind(), ErrorKind::InvalidInput);
        let bad_event = vec![("t".into(), "k".into(), Some("e".into()))];
        assert_eq!(delta_in(bad_event).unwrap_err().kind(), ErrorKind::InvalidInput);
        let w = WFilter {
            types: vec![(String::new(), None)],
            include_others: false,
        };
        assert!(filter_in(w).is_err());
    }

    #[test]
    fn error_kinds_survive_the_wire() {
        for e in [Error::UnknownGroup(4), Error::GroupIdTaken(3), Error::internal("x")] {
            let back = WError::from_error(&e).into_error();
            assert_eq!(back.kind(), e.kind());
            assert_eq!(back.to_string(), e.to_string());
        }
        assert!(matches!(
            WError::from_error(&Error::UnknownGroup(9)).into_error(),
            Error::UnknownGroup(9)
        ));
        let odd = WError::Other {
            kind: 200,
            message: "?".into(),
        };
        assert_eq!(odd.into_error().kind(), ErrorKind::Internal);
    }
}
