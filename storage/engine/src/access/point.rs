//! Point reads on the committed records: a few named keys of a group whose
//! chain is not cached are looked up in the records' encoded form while
//! walking the chain. No delta is decoded, nothing is allocated per hop,
//! nothing is added to the caches, and the walk stops as soon as every
//! key is decided. A cold read of one key thus costs the pages its chain
//! lies in and a scan of a few varints per record.

use std::sync::Arc;

use mxstate_api::{Error, Result};

use crate::format::group::{GroupRecord, HeadPhysical, Physical, RecordHead};
use crate::format::keys::{EventNid, IKey};

use super::cache::{Page, PAGE_IDS};
use super::committed::Committed;
use super::source::{at, endless, found_entries, in_snapshot, lookup_in_chain, MAX_HOPS};

/// Where the walk found a record.
enum Located {
    /// Encoded, in this page.
    Encoded(Arc<Page>),
    /// Decoded, in the record cache (a record committed since its page
    /// was read) or read alone.
    Decoded(Arc<GroupRecord>),
}

/// [`Committed::locate`] answered a page without the record: a bug.
fn left_its_page(g: u64) -> Error {
    Error::internal(format!(
        "the record of group {g} was located in a page that does not hold it"
    ))
}

/// Keys decided so far: `found[i]` for `keys[i]`.
type Found = [Option<Option<EventNid>>];

impl Committed<'_> {
    /// The entries of group `g` (not a ghost check: the caller's) for
    /// `keys` (ascending), walking its chain in encoded form; stops at a
    /// cached checkpoint chain.
    pub(super) fn point_walk(&self, g: u64, keys: &[IKey]) -> Result<Vec<(IKey, EventNid)>> {
        let mut found = vec![None; keys.len()];
        let mut page: Option<(u64, Arc<Page>)> = None;
        let mut cur = g;
        for _ in 0..=MAX_HOPS {
            let physical = match self.locate(cur, &mut page)? {
                Located::Encoded(p) => {
                    let bytes = p.get(cur).ok_or_else(|| left_its_page(cur))?;
                    let head = RecordHead::parse(cur, bytes).map_err(|e| at(e, format!("groups/{cur}")))?;
                    if self.stopped_at_chain(g, cur, head.level, keys, &mut found)? {
                        return Ok(found_entries(keys, &found));
                    }
                    head.find(keys, &mut found)
                        .map_err(|e| at(e, format!("groups/{cur}")))?;
                    head.physical
                }
                Located::Decoded(rec) => {
                    if self.stopped_at_chain(g, cur, rec.level, keys, &mut found)? {
                        return Ok(found_entries(keys, &found));
                    }
                    match &rec.physical {
                        Physical::Snapshot(s) => HeadPhysical::Snapshot(*s),
                        Physical::Delta { base, delta } => {
                            for (&k, slot) in keys.iter().zip(found.iter_mut()) {
                                if slot.is_none() {
                                    *slot = crate::delta::lookup(delta, k);
                                }
                            }
                            HeadPhysical::Delta { base: *base }
                        }
                    }
                }
            };
            match physical {
                HeadPhysical::Snapshot(s) => {
                    in_snapshot(self, s, keys, &mut found)?;
                    return Ok(found_entries(keys, &found));
                }
                HeadPhysical::Delta { base } => {
                    if found.iter().all(Option::is_some) {
                        return Ok(found_entries(keys, &found));
                    }
                    cur = base;
                }
            }
        }
        Err(endless(g))
    }

    /// Fails with [`Error::UnknownGroup`] unless group `g` exists and is
    /// not a ghost; reads its record's head only (a decoded record when
    /// cached, else its page), decoding and caching nothing.
    pub fn check_live(&self, g: u64) -> Result<()> {
        let ghost = if let Some(rec) = self.caches.records.get(&g) {
            rec.ghost
        } else {
            match self.locate(g, &mut None)? {
                Located::Decoded(rec) => rec.ghost,
                Located::Encoded(p) => {
                    let bytes = p.get(g).ok_or_else(|| left_its_page(g))?;
                    RecordHead::parse(g, bytes)
                        .map_err(|e| at(e, format!("groups/{g}")))?
                        .ghost()
                }
            }
        };
        if ghost {
            return Err(Error::UnknownGroup(g));
        }
        Ok(())
    }

    /// At checkpoint `cur` (below `g`) whose chain is cached: decides the
    /// keys left on that chain and says the walk is over.
    fn stopped_at_chain(&self, g: u64, cur: u64, level: u8, keys: &[IKey], found: &mut Found) -> Result<bool> {
        if cur == g || level == 0 {
            return Ok(false);
        }
        let Some(chain) = self.caches.chains.get(&cur) else {
            return Ok(false);
        };
        lookup_in_chain(self, &chain, keys, found)?;
        Ok(true)
    }

    /// The record of `cur`: in the page at hand or a cached page, else
    /// decoded in the record cache, else in its page read from the store.
    fn locate(&self, cur: u64, page: &mut Option<(u64, Arc<Page>)>) -> Result<Located> {
        let n = cur / PAGE_IDS;
        let held = match page {
            Some((at, p)) if *at == n => Some(p.clone()),
            _ => self.caches.records.page(n),
        };
        let p = match held {
            Some(p) => p,
            None => {
                if let Some(rec) = self.caches.records.get(&cur) {
                    return Ok(Located::Decoded(rec));
                }
                self.page(n)?
            }
        };
        *page = Some((n, p.clone()));
        if p.get(cur).is_some() {
            return Ok(Located::Encoded(p));
        }
        // Not in its page: committed since the page was read, or missing
        // (an error naming the group).
        use super::source::Source;
        Ok(Located::Decoded(self.existing(cur)?))
    }
}
