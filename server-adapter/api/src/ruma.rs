//! Conversions to and from ruma's identifier types (feature `ruma`).
//!
//! ruma validates by the specification's grammar; mxstate by the looser
//! rules of what Synapse stores. A ruma id always converts to mxstate's;
//! the other way may be refused, with mxstate's error naming the id.

use ruma_common::{OwnedEventId, OwnedRoomId};

use crate::error::{Error, Result};
use crate::ids::{EventId, RoomId};

impl TryFrom<&ruma_common::RoomId> for RoomId {
    type Error = Error;
    fn try_from(id: &ruma_common::RoomId) -> Result<Self> {
        RoomId::parse(id.as_str())
    }
}

impl TryFrom<&ruma_common::EventId> for EventId {
    type Error = Error;
    fn try_from(id: &ruma_common::EventId) -> Result<Self> {
        EventId::parse(id.as_str())
    }
}

impl TryFrom<&RoomId> for OwnedRoomId {
    type Error = Error;
    fn try_from(id: &RoomId) -> Result<Self> {
        OwnedRoomId::try_from(id.as_str()).map_err(|_| Error::InvalidRoomId(id.as_str().to_owned()))
    }
}

impl TryFrom<&EventId> for OwnedEventId {
    type Error = Error;
    fn try_from(id: &EventId) -> Result<Self> {
        OwnedEventId::try_from(id.as_str()).map_err(|_| Error::InvalidEventId(id.as_str().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let r = OwnedRoomId::try_from("!abc:example.org").expect("ruma room id");
        let ours = RoomId::try_from(&*r).expect("mxstate room id");
        assert_eq!(ours.as_str(), "!abc:example.org");
        assert_eq!(OwnedRoomId::try_from(&ours).expect("back"), r);
        let e = OwnedEventId::try_from("$t1SgRipvyNAsbTmzyVPJTUbxqLO9tTPgIzhk-CGHblY").expect("ruma event id");
        let ours = EventId::try_from(&*e).expect("mxstate event id");
        assert_eq!(OwnedEventId::try_from(&ours).expect("back"), e);
    }
}
