//! Prepared statements, kept per connection.
//!
//! A statement sent as text is parsed and planned on every call; the
//! merged reads over rows and packs plan in a good part of a
//! millisecond. Each connection lives on a thread of its own (`conn`),
//! so a thread-local map is a per-connection cache: a statement is
//! prepared on first use and kept while the connection lives.

use std::cell::RefCell;
use std::collections::HashMap;

use mxstate_api::Result;
use postgres::{GenericClient, Statement};

use crate::error::pg;

thread_local! {
    static PREPARED: RefCell<HashMap<&'static str, Statement>> = RefCell::new(HashMap::new());
}

/// `sql` prepared on the connection of this thread (`c`).
pub fn prepared(c: &mut impl GenericClient, sql: &'static str) -> Result<Statement> {
    if let Some(s) = PREPARED.with(|m| m.borrow().get(sql).cloned()) {
        return Ok(s);
    }
    let s = c.prepare(sql).map_err(pg)?;
    PREPARED.with(|m| m.borrow_mut().insert(sql, s.clone()));
    Ok(s)
}
