//! The tables, and the change from the one-table layout.
//!
//! - `mxstate_rows (cf, k, v)`: recent records, one a row; `v` NULL is a
//!   deletion not yet folded;
//! - `mxstate_packs (cf, lo, n, data)`: packed records (`pack`), `n` of
//!   them in `data`, keys from `lo` up to the next pack's `lo`;
//! - `mxstate_lease`: the owner (`lease`).
//!
//! Before packs, every record was a row of `mxstate_kv (cf, k, v NOT
//! NULL)`. Opening such a database renames that table to `mxstate_rows`
//! and allows NULL values, in one transaction of the owner: its records
//! are then rows, folded into packs as any others. The rename is what
//! keeps a build from before packs from opening a database with packs
//! (it finds no `mxstate_kv` and says there is no database) and reading
//! it as if its packed records did not exist.

use mxstate_api::{Error, ErrorKind, Result};
use postgres::{Client, GenericClient};

use crate::error::pg;

/// The tables of the layout, made in one transaction.
const DDL: &str = "CREATE TABLE mxstate_rows (cf smallint NOT NULL, k bytea NOT NULL, v bytea, PRIMARY KEY (cf, k)); \
     ALTER TABLE mxstate_rows ALTER COLUMN v SET STORAGE EXTERNAL; \
     CREATE TABLE mxstate_packs (cf smallint NOT NULL, lo bytea NOT NULL, n int NOT NULL, data bytea NOT NULL, \
                                 PRIMARY KEY (cf, lo)); \
     ALTER TABLE mxstate_packs ALTER COLUMN data SET STORAGE EXTERNAL; \
     ALTER TABLE mxstate_packs SET (toast_tuple_target = 8160)";

/// Which tables a database has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// No mxstate table.
    None,
    /// `mxstate_kv` only: every record a row.
    OneTable,
    /// `mxstate_rows` and `mxstate_packs`.
    Packed,
}

fn exists(c: &mut impl GenericClient, table: &str) -> Result<bool> {
    Ok(c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .map_err(pg)?
        .get(0))
}

/// The layout of the database `c` is connected to.
pub fn layout(c: &mut impl GenericClient, location: &str) -> Result<Layout> {
    let (old, rows, packs) = (
        exists(c, "mxstate_kv")?,
        exists(c, "mxstate_rows")?,
        exists(c, "mxstate_packs")?,
    );
    match (old, rows, packs) {
        (false, false, false) => Ok(Layout::None),
        (true, false, false) => Ok(Layout::OneTable),
        (false, true, true) => Ok(Layout::Packed),
        _ => Err(Error::backend(
            "postgresql",
            ErrorKind::Corrupt,
            format!(
                "{location}: mixed table layouts (mxstate_kv {old}, mxstate_rows {rows}, mxstate_packs {packs}): \
                 a build from before packs wrote to a database that has them"
            ),
        )),
    }
}

/// Makes the tables, or moves a one-table database to them; run by the
/// owner (the advisory lock held).
pub fn prepare(c: &mut Client, location: &str) -> Result<()> {
    let mut t = c.transaction().map_err(pg)?;
    match layout(&mut t, location)? {
        Layout::Packed => return Ok(()),
        Layout::None => t.batch_execute(DDL).map_err(pg)?,
        Layout::OneTable => t
            .batch_execute(
                "ALTER TABLE mxstate_kv RENAME TO mxstate_rows; \
                 ALTER INDEX mxstate_kv_pkey RENAME TO mxstate_rows_pkey; \
                 ALTER TABLE mxstate_rows ALTER COLUMN v DROP NOT NULL; \
                 CREATE TABLE mxstate_packs (cf smallint NOT NULL, lo bytea NOT NULL, n int NOT NULL, \
                                             data bytea NOT NULL, PRIMARY KEY (cf, lo)); \
                 ALTER TABLE mxstate_packs ALTER COLUMN data SET STORAGE EXTERNAL; \
                 ALTER TABLE mxstate_packs SET (toast_tuple_target = 8160)",
            )
            .map_err(pg)?,
    }
    t.commit().map_err(pg)
}
