//! The current state of one room: an insertion-ordered map from
//! `(type, state_key)` to event id.
//!
//! Iteration follows insertion order (a `Vec`), so full copies come out in a
//! deterministic order; the `HashMap` is used only for lookups.

use std::collections::HashMap;

/// Identifies a `(type, state_key)` pair of one room cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Slot {
    /// A state type whose state key is the empty string.
    Plain(&'static str),
    /// `m.room.member` of the room's local user number `n`.
    Member(u32),
    /// `im.vector.modular.widgets` of the room's widget number `n`.
    Widget(u32),
}

/// One entry of a room's state.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) event_type: &'static str,
    pub(crate) state_key: String,
    pub(crate) event_id: String,
}

/// What a [`StateMap::set`] replaced, so a fork branch can be undone.
#[derive(Debug, Clone)]
pub(crate) enum Previous {
    /// The slot was new; undoing removes it (it is the last entry).
    Inserted,
    /// The slot held this event id.
    Replaced(String),
}

/// Insertion-ordered room state.
#[derive(Debug, Default)]
pub(crate) struct StateMap {
    entries: Vec<Entry>,
    index: HashMap<Slot, usize>,
}

impl StateMap {
    /// All entries, in insertion order.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Number of `(type, state_key)` pairs.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Position of `slot` in [`Self::entries`], if present.
    pub(crate) fn position(&self, slot: Slot) -> Option<usize> {
        self.index.get(&slot).copied()
    }

    /// Sets `slot` to `event_id`; `state_key` is called only for a new slot.
    pub(crate) fn set(
        &mut self,
        slot: Slot,
        event_type: &'static str,
        state_key: impl FnOnce() -> String,
        event_id: &str,
    ) -> Previous {
        match self.index.get(&slot) {
            Some(&i) => {
                let old = std::mem::replace(&mut self.entries[i].event_id, event_id.to_owned());
                Previous::Replaced(old)
            }
            None => {
                self.index.insert(slot, self.entries.len());
                self.entries.push(Entry {
                    event_type,
                    state_key: state_key(),
                    event_id: event_id.to_owned(),
                });
                Previous::Inserted
            }
        }
    }

    /// Undoes the latest [`Self::set`] of `slot`, given what it returned.
    pub(crate) fn undo(&mut self, slot: Slot, previous: Previous) {
        match previous {
            Previous::Inserted => {
                let removed = self.index.remove(&slot);
                debug_assert_eq!(removed, Some(self.entries.len() - 1));
                self.entries.pop();
            }
            Previous::Replaced(old) => {
                if let Some(&i) = self.index.get(&slot) {
                    self.entries[i].event_id = old;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_undo() {
        let mut s = StateMap::default();
        s.set(Slot::Plain("a"), "a", String::new, "$1");
        let p = s.set(Slot::Plain("a"), "a", String::new, "$2");
        assert_eq!(s.entries()[0].event_id, "$2");
        s.undo(Slot::Plain("a"), p);
        assert_eq!(s.entries()[0].event_id, "$1");
        let p = s.set(Slot::Member(3), "m.room.member", || "@u".into(), "$3");
        assert_eq!(s.len(), 2);
        s.undo(Slot::Member(3), p);
        assert_eq!(s.len(), 1);
        assert_eq!(s.position(Slot::Member(3)), None);
    }
}
