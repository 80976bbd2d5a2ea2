//! The two layers of a family: recent records as rows of `mxstate_rows`
//! (a deletion is a row without a value) over the packs of
//! `mxstate_packs`. A row always wins over a packed record of its key.

use std::cmp::Ordering;
use std::collections::VecDeque;

use crate::pack::Entry;

/// A row: a key and its value, or `None` for a deletion not yet folded.
pub type Row = (Vec<u8>, Option<Vec<u8>>);

/// `rows` laid over `entries` (each sorted by key, keys unique): a row
/// replaces the record of its key, a deletion removes it.
pub fn overlay(entries: Vec<Entry>, rows: Vec<Row>) -> Vec<Entry> {
    let mut m = Merge::new(Dir::Up);
    m.rows.extend(rows);
    m.entries.extend(entries);
    m.drain()
}

/// The order of a scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Ascending keys.
    Up,
    /// Descending keys.
    Down,
}

/// What [`Merge::next`] needs or gives.
pub enum Next {
    /// The next record in order.
    Record(Entry),
    /// More rows first (the rows side is empty but not finished).
    NeedRows,
    /// More packed records first.
    NeedEntries,
    /// Both sides are finished.
    Done,
}

/// Merges rows over packed records, both fed in `dir` order.
pub struct Merge {
    dir: Dir,
    /// Rows not yet merged, in `dir` order.
    pub rows: VecDeque<Row>,
    /// Packed records not yet merged, in `dir` order.
    pub entries: VecDeque<Entry>,
    /// No more rows will come.
    pub rows_done: bool,
    /// No more packed records will come.
    pub entries_done: bool,
}

impl Merge {
    /// An empty merge; each side unfinished.
    pub fn new(dir: Dir) -> Merge {
        Merge {
            dir,
            rows: VecDeque::new(),
            entries: VecDeque::new(),
            rows_done: false,
            entries_done: false,
        }
    }

    /// `a` comes before `b` in this merge's order.
    fn before(&self, a: &[u8], b: &[u8]) -> Ordering {
        match self.dir {
            Dir::Up => a.cmp(b),
            Dir::Down => b.cmp(a),
        }
    }

    /// The next record, or what must be fed first.
    pub fn next(&mut self) -> Next {
        loop {
            if self.rows.is_empty() && !self.rows_done {
                return Next::NeedRows;
            }
            if self.entries.is_empty() && !self.entries_done {
                return Next::NeedEntries;
            }
            let take_row = match (self.rows.front(), self.entries.front()) {
                (None, None) => return Next::Done,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(r), Some(e)) => match self.before(&r.0, &e.0) {
                    Ordering::Less => true,
                    Ordering::Equal => {
                        // The row wins over the packed record of its key.
                        self.entries.pop_front();
                        true
                    }
                    Ordering::Greater => false,
                },
            };
            if take_row {
                if let Some((k, Some(v))) = self.rows.pop_front() {
                    return Next::Record((k, v));
                }
                // A deletion: nothing to give.
            } else if let Some(e) = self.entries.pop_front() {
                return Next::Record(e);
            }
        }
    }

    /// Everything, with both sides complete as fed.
    pub fn drain(mut self) -> Vec<Entry> {
        self.rows_done = true;
        self.entries_done = true;
        let mut out = Vec::with_capacity(self.entries.len() + self.rows.len());
        while let Next::Record(e) = self.next() {
            out.push(e);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        #[test]
        fn rows_over_packs_read_as_a_map(
            packed in proptest::collection::btree_map(0u8..32, any::<u8>(), 0..24),
            rows in proptest::collection::btree_map(0u8..32, proptest::option::of(any::<u8>()), 0..24),
        ) {
            let mut model: BTreeMap<u8, u8> = packed.clone();
            for (k, v) in &rows {
                match v {
                    Some(v) => { model.insert(*k, *v); }
                    None => { model.remove(k); }
                }
            }
            let want: Vec<Entry> = model.iter().map(|(k, v)| (vec![*k], vec![*v])).collect();
            let entries: Vec<Entry> = packed.iter().map(|(k, v)| (vec![*k], vec![*v])).collect();
            let rows_v: Vec<Row> = rows.iter().map(|(k, v)| (vec![*k], v.map(|v| vec![v]))).collect();
            prop_assert_eq!(overlay(entries.clone(), rows_v.clone()), want.clone());
            // Descending, fed one record at a time.
            let mut m = Merge::new(Dir::Down);
            let (mut r, mut e) = (rows_v.into_iter().rev(), entries.into_iter().rev());
            let mut down = Vec::new();
            loop {
                match m.next() {
                    Next::Record(x) => down.push(x),
                    Next::NeedRows => match r.next() { Some(x) => m.rows.push_back(x), None => m.rows_done = true },
                    Next::NeedEntries => match e.next() { Some(x) => m.entries.push_back(x), None => m.entries_done = true },
                    Next::Done => break,
                }
            }
            down.reverse();
            prop_assert_eq!(down, want);
        }
    }
}
