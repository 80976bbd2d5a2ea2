//! Folding rows into packs.
//!
//! Writes land as rows of `mxstate_rows`. A fold step takes the next
//! window of rows of one family in key order, finds each row's *home*
//! pack (the pack with the greatest `lo` at or below its key; below
//! every pack, the first), and rewrites each home pack that has at least
//! `min_rows` of the window's rows: the pack's records with the rows laid
//! over them, cut again into packs that fill a heap page (at most
//! `pack_bytes` of keys and values each; `pack::encode_runs`), and the rows
//! deleted, in the step's one transaction. Rows of a pack below the
//! threshold wait for a later pass, so that a pack is not rewritten for
//! every record (event ids are random keys: new ones touch every pack).
//!
//! The packs of a family partition its keys: pack `i` holds only keys in
//! `[lo_i, lo_{i+1})`. A rewritten pack keeps its `lo` (lowered when rows
//! below the first pack join it); the packs cut from it take their first
//! key as `lo`. A pack left without records is deleted.

use std::collections::BTreeMap;

use mxstate_api::Result;
use postgres::Transaction;

use crate::error::pg;
use crate::layers::{overlay, Row};
use crate::pack::{encode_runs, Pack, COMPACT_LEVEL, FOLD_LEVEL};

/// How folding cuts and chooses.
#[derive(Clone, Copy, Debug)]
pub struct FoldPolicy {
    /// The most bytes of keys and values in one pack.
    pub pack_bytes: usize,
    /// Rows of one pack a step must see to rewrite it (1: every row folds).
    pub min_rows: usize,
    /// Rows one step reads.
    pub window: usize,
}

/// What one step did.
#[derive(Clone, Debug, Default)]
pub struct Folded {
    /// Rows read.
    pub seen: usize,
    /// Rows folded into packs (and deleted).
    pub folded: usize,
    /// Packs written.
    pub written: usize,
    /// Where the next step of this family starts (`None`: the family's
    /// rows were read to the end).
    pub next: Option<Vec<u8>>,
}

/// The location of a pack in messages.
pub fn pack_location(cf: i16, lo: &[u8]) -> String {
    let hex: String = lo.iter().map(|b| format!("{b:02x}")).collect();
    format!("mxstate_packs cf {cf} lo {hex}")
}

/// One step over family `cf` from key `from`, in transaction `t`.
pub fn step(t: &mut Transaction<'_>, cf: i16, from: &[u8], p: FoldPolicy) -> Result<Folded> {
    let window = i64::try_from(p.window.max(1)).unwrap_or(i64::MAX);
    let rows: Vec<Row> = t
        .query(
            "SELECT k, v FROM mxstate_rows WHERE cf = $1 AND k >= $2 ORDER BY k LIMIT $3",
            &[&cf, &from, &window],
        )
        .map_err(pg)?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut done = Folded {
        seen: rows.len(),
        next: match rows.last() {
            Some((k, _)) if rows.len() == p.window.max(1) => Some(crate::kv::key_after(k.clone())),
            _ => None,
        },
        ..Folded::default()
    };
    if rows.is_empty() {
        return Ok(done);
    }
    // Each row's home pack (None: the family has no pack yet).
    let keys: Vec<&[u8]> = rows.iter().map(|(k, _)| k.as_slice()).collect();
    let homes: Vec<Option<Vec<u8>>> = t
        .query(
            "SELECT coalesce((SELECT lo FROM mxstate_packs p WHERE p.cf = $1 AND p.lo <= q.k ORDER BY p.lo DESC LIMIT 1), \
                             (SELECT lo FROM mxstate_packs p WHERE p.cf = $1 ORDER BY p.lo LIMIT 1)) \
             FROM unnest($2::bytea[]) WITH ORDINALITY AS q(k, i) ORDER BY q.i",
            &[&cf, &keys],
        )
        .map_err(pg)?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    let mut by_home: BTreeMap<Option<Vec<u8>>, Vec<Row>> = BTreeMap::new();
    for (row, home) in rows.into_iter().zip(homes) {
        by_home.entry(home).or_default().push(row);
    }
    by_home.retain(|_, rows| rows.len() >= p.min_rows.max(1));
    if by_home.is_empty() {
        return Ok(done);
    }
    let wanted: Vec<&[u8]> = by_home.keys().flatten().map(Vec::as_slice).collect();
    let mut old: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    if !wanted.is_empty() {
        for r in t
            .query(
                "SELECT lo, data FROM mxstate_packs WHERE cf = $1 AND lo = ANY($2)",
                &[&cf, &wanted],
            )
            .map_err(pg)?
        {
            old.insert(r.get(0), r.get(1));
        }
    }
    let (mut gone_packs, mut gone_rows) = (Vec::new(), Vec::new());
    let (mut new_lo, mut new_n, mut new_data) = (Vec::new(), Vec::new(), Vec::new());
    for (home, rows) in by_home {
        let first_row = rows.first().map(|(k, _)| k.clone()).unwrap_or_default();
        gone_rows.extend(rows.iter().map(|(k, _)| k.clone()));
        let entries = match &home {
            Some(lo) => {
                let data = old.get(lo).ok_or_else(|| {
                    mxstate_api::Error::internal(format!("{} vanished during a fold", pack_location(cf, lo)))
                })?;
                gone_packs.push(lo.clone());
                Pack::decode(data, pack_location(cf, lo))?.entries()?
            }
            None => Vec::new(),
        };
        let merged = overlay(entries, rows);
        let first_lo = home.as_ref().map(|lo| lo.clone().min(first_row.clone()));
        let first_lo_len = first_lo.as_ref().map_or(first_row.len(), Vec::len);
        for (i, (run, data)) in encode_runs(merged, first_lo_len, p.pack_bytes, FOLD_LEVEL)?
            .into_iter()
            .enumerate()
        {
            let first = run.first().map(|(k, _)| k.clone()).unwrap_or_default();
            let lo = match (&first_lo, i) {
                (Some(lo), 0) => lo.clone(),
                _ => first,
            };
            new_n.push(i32::try_from(run.len()).unwrap_or(i32::MAX));
            new_data.push(data);
            new_lo.push(lo);
        }
    }
    if !gone_packs.is_empty() {
        t.execute(
            "DELETE FROM mxstate_packs WHERE cf = $1 AND lo = ANY($2)",
            &[&cf, &gone_packs],
        )
        .map_err(pg)?;
    }
    // A join with the keys, not `k = ANY($2)` (see `MULTI_GET` in kv.rs).
    t.execute(
        "DELETE FROM mxstate_rows r USING unnest($2::bytea[]) AS q(k) WHERE r.cf = $1 AND r.k = q.k",
        &[&cf, &gone_rows],
    )
    .map_err(pg)?;
    if !new_lo.is_empty() {
        t.execute(
            "INSERT INTO mxstate_packs (cf, lo, n, data) \
             SELECT $1, * FROM unnest($2::bytea[], $3::int[], $4::bytea[])",
            &[&cf, &new_lo, &new_n, &new_data],
        )
        .map_err(pg)?;
    }
    done.written = new_lo.len();
    done.folded = gone_rows.len();
    Ok(done)
}

/// Packs one repack step reads.
pub const REPACK_WINDOW: i64 = 64;

/// One step of repacking family `cf` (`compact`): the packs from `lo`
/// `from` on, up to [`REPACK_WINDOW`] of them, merged and cut again into
/// full packs, in transaction `t`. Packs written by folding random keys
/// end up about 70% full (as B-tree leaves do); this fills them. Returns
/// where the next step starts: the last pack written, which is read
/// again with the next packs (`None`: the family is done).
pub fn repack_step(t: &mut Transaction<'_>, cf: i16, from: &[u8], p: FoldPolicy) -> Result<Option<Vec<u8>>> {
    let packs: Vec<(Vec<u8>, Vec<u8>)> = t
        .query(
            "SELECT lo, data FROM mxstate_packs WHERE cf = $1 AND lo >= $2 ORDER BY lo LIMIT $3",
            &[&cf, &from, &REPACK_WINDOW],
        )
        .map_err(pg)?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let Some((first_lo, _)) = packs.first() else {
        return Ok(None);
    };
    if packs.len() < 2 {
        return Ok(None);
    }
    let first_lo = first_lo.clone();
    let mut entries = Vec::new();
    for (lo, data) in &packs {
        entries.extend(Pack::decode(data, pack_location(cf, lo))?.entries()?);
    }
    let old: Vec<&[u8]> = packs.iter().map(|(lo, _)| lo.as_slice()).collect();
    let (mut new_lo, mut new_n, mut new_data) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (run, data)) in encode_runs(entries, first_lo.len(), p.pack_bytes, COMPACT_LEVEL)?
        .into_iter()
        .enumerate()
    {
        let lo = if i == 0 {
            first_lo.clone()
        } else {
            run.first().map(|(k, _)| k.clone()).unwrap_or_default()
        };
        new_n.push(i32::try_from(run.len()).unwrap_or(i32::MAX));
        new_data.push(data);
        new_lo.push(lo);
    }
    t.execute("DELETE FROM mxstate_packs WHERE cf = $1 AND lo = ANY($2)", &[&cf, &old])
        .map_err(pg)?;
    t.execute(
        "INSERT INTO mxstate_packs (cf, lo, n, data) SELECT $1, * FROM unnest($2::bytea[], $3::int[], $4::bytea[])",
        &[&cf, &new_lo, &new_n, &new_data],
    )
    .map_err(pg)?;
    let full = i64::try_from(packs.len()).unwrap_or(0) >= REPACK_WINDOW;
    Ok(match new_lo.pop() {
        // Progress is certain: the window held more packs than one.
        Some(last) if full && last > first_lo => Some(last),
        _ => None,
    })
}
