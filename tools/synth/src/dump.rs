//! [`write_dump`]: the plain-format SQL dump.
//!
//! Layout, as `pg_dump` writes it: the prologue, Synapse's tables (and
//! `state_group_id_seq`), the four COPY blocks, the sequence's `setval`,
//! then Synapse's constraints and indexes (built after loading, which is
//! much faster than maintaining them during the COPYs). With
//! [`SynthOptions::auth`], `event_auth` and the chain cover tables
//! (`event_auth_chain_links`, `event_auth_chains`, the `event_auth_chain_id`
//! sequence) come first, as in a dump of Synapse's main database. DDL and
//! escaping come from `mxstate_synapse_dump`.
//!
//! Each COPY block must be contiguous, so the history is generated once
//! per table from the same seed: memory stays bounded by one room's state
//! (and, with auth, its chain cover) whatever the size of the file.

use std::fmt::Write as _;
use std::io::Write;

use crate::error::SynthError;
use crate::generator::{Generator, GroupRef};
use crate::options::SynthOptions;
use mxstate_synapse_dump::copy::encode_field;
use mxstate_synapse_dump::schema::{
    set_auth_chain_sequence_sql, set_state_group_sequence_sql, AUTH_INDEXES_SQL, AUTH_TABLES_SQL, STATE_INDEXES_SQL,
    STATE_TABLES_SQL,
};

/// What every dump starts with.
const PROLOGUE: &str = "\
--
-- Synthetic Synapse state dump, written by mxstate-synth
--

SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;

";

/// Flush the text buffer to the output past this many bytes.
const FLUSH_AT: usize = 256 * 1024;

/// What [`write_dump`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SynthSummary {
    /// Rooms generated.
    pub rooms: u64,
    /// `state_groups` rows.
    pub groups: u64,
    /// Groups stored as full copies (no edge).
    pub full_copies: u64,
    /// `state_groups_state` rows.
    pub state_rows: u64,
    /// `state_group_edges` rows.
    pub edges: u64,
    /// `event_to_state_groups` rows.
    pub events_mapped: u64,
    /// The largest group id.
    pub max_group_id: i64,
    /// `event_auth` rows (with [`SynthOptions::auth`]).
    pub auth_rows: u64,
    /// `event_auth_chains` rows: state events given a chain position.
    pub chain_positions: u64,
    /// `event_auth_chain_links` rows.
    pub chain_links: u64,
    /// The largest chain id.
    pub max_chain_id: i64,
    /// Bytes of the dump.
    pub bytes_written: u64,
}

/// Buffered text output counting its bytes.
struct Sink<W: Write> {
    out: W,
    buf: String,
    bytes: u64,
}

impl<W: Write> Sink<W> {
    fn new(out: W) -> Self {
        Sink {
            out,
            buf: String::with_capacity(FLUSH_AT + 64 * 1024),
            bytes: 0,
        }
    }

    /// Writes the rest and flushes; returns the bytes written in all.
    fn finish(mut self) -> std::io::Result<u64> {
        self.flush_buf()?;
        self.out.flush()?;
        Ok(self.bytes)
    }

    fn maybe_flush(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> std::io::Result<()> {
        self.out.write_all(self.buf.as_bytes())?;
        self.bytes += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

/// Writes the dump of `opts` to `out` (buffered internally; `out` need not
/// be a `BufWriter`) and flushes it.
pub fn write_dump<W: Write>(opts: &SynthOptions, out: W) -> Result<SynthSummary, SynthError> {
    opts.validate()?;
    let mut sink = Sink::new(out);
    let mut summary = SynthSummary::default();
    sink.buf.push_str(PROLOGUE);
    if opts.auth {
        sink.buf.push_str(AUTH_TABLES_SQL);
        sink.buf.push('\n');
    }
    sink.buf.push_str(STATE_TABLES_SQL);
    sink.buf.push('\n');

    if opts.auth {
        write_auth(&mut sink, opts, &mut summary)?;
    }

    copy_block(
        &mut sink,
        opts,
        "COPY public.state_groups (id, room_id, event_id) FROM stdin;\n",
        |g, sink| {
            let buf = &mut sink.buf;
            let _ = write!(buf, "{}\t", g.id());
            encode_field(g.room_id(), buf);
            buf.push('\t');
            encode_field(g.event_id(), buf);
            buf.push('\n');
            summary.groups += 1;
            summary.max_group_id = summary.max_group_id.max(g.id());
            if g.is_full_copy() {
                summary.full_copies += 1;
            }
            if g.is_last_in_room() {
                summary.rooms += 1;
            }
            Ok(())
        },
    )?;
    copy_block(
        &mut sink,
        opts,
        "COPY public.state_group_edges (state_group, prev_state_group) FROM stdin;\n",
        |g, sink| {
            if let Some(prev) = g.prev() {
                let _ = writeln!(sink.buf, "{}\t{prev}", g.id());
                summary.edges += 1;
            }
            Ok(())
        },
    )?;
    let mut prefix = String::new();
    copy_block(
        &mut sink,
        opts,
        "COPY public.state_groups_state (state_group, room_id, type, state_key, event_id) FROM stdin;\n",
        |g, sink| {
            prefix.clear();
            let _ = write!(prefix, "{}\t", g.id());
            encode_field(g.room_id(), &mut prefix);
            prefix.push('\t');
            for row in g.rows() {
                sink.maybe_flush()?;
                let buf = &mut sink.buf;
                buf.push_str(&prefix);
                encode_field(row.event_type, buf);
                buf.push('\t');
                encode_field(row.state_key, buf);
                buf.push('\t');
                encode_field(row.event_id, buf);
                buf.push('\n');
                summary.state_rows += 1;
            }
            Ok(())
        },
    )?;
    copy_block(
        &mut sink,
        opts,
        "COPY public.event_to_state_groups (event_id, state_group) FROM stdin;\n",
        |g, sink| {
            prefix.clear();
            let _ = writeln!(prefix, "\t{}", g.id());
            for event in g.mapped_events() {
                encode_field(event, &mut sink.buf);
                sink.buf.push_str(&prefix);
                summary.events_mapped += 1;
            }
            Ok(())
        },
    )?;
    sink.buf.push_str(&set_state_group_sequence_sql(summary.max_group_id));
    sink.buf.push_str(STATE_INDEXES_SQL);
    if opts.auth {
        sink.buf.push_str(&set_auth_chain_sequence_sql(summary.max_chain_id));
        sink.buf.push_str(AUTH_INDEXES_SQL);
    }
    summary.bytes_written = sink.finish()?;
    Ok(summary)
}

/// Writes only the auth tables of `opts` (with [`SynthOptions::auth`]
/// forced on): `event_auth` and Synapse's chain cover, and Synapse's four
/// state tables empty (a Synapse database whose state groups are
/// elsewhere, which `mxstate import` reads like any other). For benchmarks
/// of auth questions, which need no state groups.
pub fn write_auth_dump<W: Write>(opts: &SynthOptions, out: W) -> Result<SynthSummary, SynthError> {
    let opts = SynthOptions {
        auth: true,
        ..opts.clone()
    };
    opts.validate()?;
    let mut sink = Sink::new(out);
    let mut summary = SynthSummary::default();
    sink.buf.push_str(PROLOGUE);
    sink.buf.push_str(AUTH_TABLES_SQL);
    sink.buf.push('\n');
    sink.buf.push_str(STATE_TABLES_SQL);
    sink.buf.push('\n');
    write_auth(&mut sink, &opts, &mut summary)?;
    for table in [
        "state_groups (id, room_id, event_id)",
        "state_group_edges (state_group, prev_state_group)",
        "state_groups_state (state_group, room_id, type, state_key, event_id)",
        "event_to_state_groups (event_id, state_group)",
    ] {
        let _ = write!(sink.buf, "COPY public.{table} FROM stdin;\n\\.\n\n");
    }
    sink.buf.push_str(&set_auth_chain_sequence_sql(summary.max_chain_id));
    sink.buf.push_str(STATE_INDEXES_SQL);
    sink.buf.push_str(AUTH_INDEXES_SQL);
    summary.bytes_written = sink.finish()?;
    Ok(summary)
}

/// The COPY blocks of `event_auth` and of the chain cover, in pg_dump's
/// (alphabetical) order.
fn write_auth<W: Write>(sink: &mut Sink<W>, opts: &SynthOptions, summary: &mut SynthSummary) -> Result<(), SynthError> {
    let mut suffix = String::new();
    copy_block(
        sink,
        opts,
        "COPY public.event_auth (event_id, auth_id, room_id) FROM stdin;\n",
        |g, sink| {
            suffix.clear();
            suffix.push('\t');
            encode_field(g.room_id(), &mut suffix);
            suffix.push('\n');
            for auth in g.auth_events() {
                encode_field(g.event_id(), &mut sink.buf);
                sink.buf.push('\t');
                encode_field(auth, &mut sink.buf);
                sink.buf.push_str(&suffix);
                summary.auth_rows += 1;
            }
            Ok(())
        },
    )?;
    copy_block(
        sink,
        opts,
        "COPY public.event_auth_chain_links (origin_chain_id, origin_sequence_number, target_chain_id, target_sequence_number) FROM stdin;\n",
        |g, sink| {
            if let Some((chain, seq)) = g.auth_chain_position() {
                for (tc, ts) in g.auth_chain_links() {
                    let _ = writeln!(sink.buf, "{chain}\t{seq}\t{tc}\t{ts}");
                    summary.chain_links += 1;
                }
            }
            Ok(())
        },
    )?;
    copy_block(
        sink,
        opts,
        "COPY public.event_auth_chains (event_id, chain_id, sequence_number) FROM stdin;\n",
        |g, sink| {
            if let Some((chain, seq)) = g.auth_chain_position() {
                encode_field(g.event_id(), &mut sink.buf);
                let _ = writeln!(sink.buf, "\t{chain}\t{seq}");
                summary.chain_positions += 1;
                summary.max_chain_id = summary.max_chain_id.max(chain);
            }
            Ok(())
        },
    )?;
    Ok(())
}

/// Writes one COPY block: `header`, `row(group)` for every group, `\.`.
/// `row` appends to the sink's buffer and may flush it (big full copies).
fn copy_block<W: Write>(
    sink: &mut Sink<W>,
    opts: &SynthOptions,
    header: &str,
    mut row: impl FnMut(&GroupRef<'_>, &mut Sink<W>) -> std::io::Result<()>,
) -> Result<(), SynthError> {
    sink.buf.push_str(header);
    let mut generator = Generator::new(opts)?;
    while let Some(group) = generator.next_group() {
        row(&group, sink)?;
        sink.maybe_flush()?;
    }
    sink.buf.push_str("\\.\n\n");
    Ok(())
}
