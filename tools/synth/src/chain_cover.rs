//! Synapse's chain cover index (`event_auth_chains`,
//! `event_auth_chain_links`), computed the way Synapse 1.163 computes it
//! when it persists state events one at a time
//! (`PersistEventsStore._calculate_chain_cover_index` and
//! `_allocate_chain_ids` in `synapse/storage/databases/main/events.py`):
//!
//! - **Chains.** An event continues the chain of its auth event with the
//!   same `(type, state_key)` when that auth event is the chain's last;
//!   otherwise it starts a new chain at sequence number 1.
//! - **Links.** The event's auth events on other chains, less those
//!   reachable from another of its auth events (`_LinkMap.exists_path_from`
//!   over the links stored so far), each give one link from the event's
//!   position to the auth event's.
//!
//! Memory: one room's events and links (the generator's own bound).

use std::collections::HashMap;

use crate::state::Slot;

/// `(chain id, sequence number)`.
pub(crate) type Position = (i64, i64);

/// The chain cover of the room being generated, and the next chain id
/// (global across rooms, as Synapse's `event_auth_chain_id` sequence).
#[derive(Debug)]
pub(crate) struct ChainCover {
    next_chain: i64,
    /// The room's events: their `(type, state_key)` and position.
    events: HashMap<String, (Slot, Position)>,
    /// The last sequence number of each of the room's chains.
    chain_max: HashMap<i64, i64>,
    /// Stored links: origin chain -> target chain -> `(origin seq, target
    /// seq)`, at most one per origin seq (Synapse's `_LinkMap.maps`).
    links: HashMap<i64, HashMap<i64, Vec<(i64, i64)>>>,
}

impl Default for ChainCover {
    fn default() -> Self {
        ChainCover {
            next_chain: 1,
            events: HashMap::new(),
            chain_max: HashMap::new(),
            links: HashMap::new(),
        }
    }
}

impl ChainCover {
    /// Forgets the room (a new room starts); chain ids keep counting.
    pub(crate) fn new_room(&mut self) {
        self.events.clear();
        self.chain_max.clear();
        self.links.clear();
    }

    /// The largest chain id handed out so far (0 if none).
    pub(crate) fn last_chain_id(&self) -> i64 {
        self.next_chain - 1
    }

    /// Adds state event `event_id` of `(type, state_key)` `slot` with the
    /// auth events `auth` (all added before). Returns its position and
    /// writes its links (target positions) to `links`.
    pub(crate) fn add(&mut self, event_id: &str, slot: Slot, auth: &[&str], links: &mut Vec<Position>) -> Position {
        links.clear();
        let known: Vec<(Slot, Position)> = auth.iter().filter_map(|a| self.events.get(*a).copied()).collect();
        debug_assert_eq!(known.len(), auth.len(), "auth events come first");

        // The chain: `_allocate_chain_ids`.
        let continued = known
            .iter()
            .find(|(s, _)| *s == slot)
            .map(|&(_, (chain, seq))| (chain, seq + 1))
            .filter(|&(chain, seq)| self.chain_max.get(&chain).is_some_and(|&max| max < seq));
        let pos = continued.unwrap_or_else(|| {
            let chain = self.next_chain;
            self.next_chain += 1;
            (chain, 1)
        });
        self.chain_max.insert(pos.0, pos.1);

        // The links: the auth events on other chains, less the ones another
        // auth event reaches.
        let mut reduction: Vec<Position> = known.iter().map(|&(_, p)| p).filter(|p| p.0 != pos.0).collect();
        for (i, &(_, start)) in known.iter().enumerate() {
            for (j, &(_, end)) in known.iter().enumerate() {
                if i != j && self.exists_path_from(start, end) {
                    reduction.retain(|&p| p != end);
                }
            }
        }
        reduction.dedup();
        for target in reduction {
            self.add_link(pos, target);
            links.push(target);
        }
        self.events.insert(event_id.to_owned(), (slot, pos));
        pos
    }

    /// Stores a link (Synapse stores every link it computes, and reads them
    /// all back for the next event).
    fn add_link(&mut self, (src_chain, src_seq): Position, (target_chain, target_seq): Position) {
        let current = self
            .links
            .entry(src_chain)
            .or_default()
            .entry(target_chain)
            .or_default();
        match current.iter_mut().find(|(s, _)| *s == src_seq) {
            Some(link) => link.1 = target_seq,
            None => current.push((src_seq, target_seq)),
        }
    }

    /// `_LinkMap.exists_path_from`: whether `target` is reachable from
    /// `src` through the stored links.
    fn exists_path_from(&self, (src_chain, src_seq): Position, (target_chain, target_seq): Position) -> bool {
        if src_chain == target_chain {
            return target_seq <= src_seq;
        }
        let mut visited: HashMap<i64, i64> = HashMap::new();
        let mut search = vec![(src_chain, src_seq)];
        while let Some((chain, seq)) = search.pop() {
            let v = visited.entry(chain).or_insert(0);
            *v = (*v).max(seq);
            let Some(targets) = self.links.get(&chain) else {
                continue;
            };
            for (&tc, links) in targets {
                for &(ss, ts) in links {
                    if ts <= visited.get(&tc).copied().unwrap_or(0) {
                        continue;
                    }
                    if ss <= seq {
                        if tc == target_chain {
                            if target_seq <= ts {
                                return true;
                            }
                        } else {
                            search.push((tc, ts));
                        }
                    }
                }
            }
        }
        false
    }
}
