//! [`CopyWriter`]: writes the state tables as a plain SQL file of COPY
//! blocks that `psql` loads, like the data part of a `pg_dump`.
//!
//! ```text
//! SET client_encoding = 'UTF8';
//! SET standard_conforming_strings = on;
//! [CREATE TABLE ...]                 -- with Schema::Create
//! COPY state_groups (id, room_id, event_id) FROM stdin;
//! 1<TAB>!room:example.org<TAB>$event
//! \.
//! [ALTER TABLE ... / CREATE INDEX ...] -- with Schema::Create, at finish()
//! ```

use std::fmt::Write as _;
use std::io::{BufWriter, Write};

use crate::copy::encode_field;
use crate::error::{DumpError, Location};
use crate::record::Record;
use crate::schema::{set_state_group_sequence_sql, STATE_INDEXES_SQL, STATE_TABLES_SQL};
use crate::table::Table;

/// Whether the written file creates the tables itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Only data: load into a database that already has Synapse's schema.
    DataOnly,
    /// Create the tables first and their indexes at the end (as pg_dump
    /// does, so loading is not slowed by index maintenance).
    Create,
}

/// Writes COPY blocks of the four state tables to `W` (buffered internally).
pub struct CopyWriter<W: Write> {
    out: BufWriter<W>,
    line: String,
    table: Option<Table>,
    schema: Schema,
    rows: u64,
}

impl<W: Write> std::fmt::Debug for CopyWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyWriter")
            .field("table", &self.table)
            .field("schema", &self.schema)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// Appends an integer field.
fn push_int(line: &mut String, value: i64) {
    // Writing to a String cannot fail.
    let _ = write!(line, "{value}");
}

/// Appends a tab and an encoded text field.
fn push_text(line: &mut String, text: &str) {
    line.push('\t');
    encode_field(text, line);
}

fn io_error(source: std::io::Error) -> DumpError {
    DumpError::Io {
        at: Location::default(),
        source,
    }
}

impl<W: Write> CopyWriter<W> {
    /// A writer that has written nothing yet.
    pub fn new(out: W) -> Self {
        CopyWriter {
            out: BufWriter::with_capacity(256 * 1024, out),
            line: String::with_capacity(1024),
            table: None,
            schema: Schema::DataOnly,
            rows: 0,
        }
    }

    /// Writes the `SET` lines every pg_dump starts with and, with
    /// [`Schema::Create`], the table DDL (the indexes follow in [`Self::finish`]).
    pub fn write_prologue(&mut self, schema: Schema) -> Result<(), DumpError> {
        self.schema = schema;
        self.raw(
            "--\n-- Synapse state tables, written by mxstate\n--\n\n\
             SET client_encoding = 'UTF8';\n\
             SET standard_conforming_strings = on;\n\
             SET client_min_messages = warning;\n\n",
        )?;
        if schema == Schema::Create {
            self.raw(STATE_TABLES_SQL)?;
            self.raw("\n")?;
        }
        Ok(())
    }

    /// Writes any SQL text between COPY blocks (ends it with a newline yourself).
    pub fn raw(&mut self, sql: &str) -> Result<(), DumpError> {
        if self.table.is_some() {
            return Err(DumpError::WriterMisuse {
                reason: "SQL text inside a COPY block",
            });
        }
        self.out.write_all(sql.as_bytes()).map_err(io_error)
    }

    /// Starts the COPY block of `table`.
    pub fn begin_table(&mut self, table: Table) -> Result<(), DumpError> {
        if self.table.is_some() {
            return Err(DumpError::WriterMisuse {
                reason: "begin_table inside a COPY block",
            });
        }
        let header = format!("COPY {} ({}) FROM stdin;\n", table.name(), table.columns().join(", "));
        self.out.write_all(header.as_bytes()).map_err(io_error)?;
        self.table = Some(table);
        Ok(())
    }

    /// Writes one row of the current table, fields in `table.columns()` order.
    pub fn row(&mut self, fields: &[&str]) -> Result<(), DumpError> {
        let table = self.current()?;
        if fields.len() != table.columns().len() {
            return Err(DumpError::ColumnCount {
                at: Location::default(),
                table,
                expected: table.columns().len(),
                found: fields.len(),
            });
        }
        self.line.clear();
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                self.line.push('\t');
            }
            encode_field(field, &mut self.line);
        }
        self.end_row()
    }

    /// Writes one record; it must belong to the current table.
    pub fn record(&mut self, record: &Record) -> Result<(), DumpError> {
        if self.current()? != record.table() {
            return Err(DumpError::WriterMisuse {
                reason: "record of another table than the current COPY block",
            });
        }
        self.line.clear();
        let line = &mut self.line;
        match record {
            Record::StateGroup { id, room_id, event_id } => {
                push_int(line, *id);
                push_text(line, room_id);
                push_text(line, event_id);
            }
            Record::Edge {
                state_group,
                prev_state_group,
            } => {
                push_int(line, *state_group);
                line.push('\t');
                push_int(line, *prev_state_group);
            }
            Record::StateRow {
                state_group,
                room_id,
                event_type,
                state_key,
                event_id,
            } => {
                push_int(line, *state_group);
                push_text(line, room_id);
                push_text(line, event_type);
                push_text(line, state_key);
                push_text(line, event_id);
            }
            Record::EventToStateGroup { event_id, state_group } => {
                encode_field(event_id, line);
                line.push('\t');
                push_int(line, *state_group);
            }
        }
        self.end_row()
    }

    fn current(&self) -> Result<Table, DumpError> {
        self.table.ok_or(DumpError::WriterMisuse {
            reason: "row outside a COPY block (call begin_table first)",
        })
    }

    fn end_row(&mut self) -> Result<(), DumpError> {
        self.line.push('\n');
        self.rows += 1;
        self.out.write_all(self.line.as_bytes()).map_err(io_error)
    }

    /// Ends the current COPY block with `\.`.
    pub fn end_table(&mut self) -> Result<(), DumpError> {
        if self.table.take().is_none() {
            return Err(DumpError::WriterMisuse {
                reason: "end_table outside a COPY block",
            });
        }
        self.out.write_all(b"\\.\n\n").map_err(io_error)
    }

    /// Writes the `setval` that makes Synapse's next state group id `last_id + 1`.
    pub fn set_state_group_sequence(&mut self, last_id: i64) -> Result<(), DumpError> {
        self.raw(&set_state_group_sequence_sql(last_id))
    }

    /// Rows written so far, all tables together.
    pub fn rows_written(&self) -> u64 {
        self.rows
    }

    /// Writes the indexes (with [`Schema::Create`]), flushes, and returns the output.
    pub fn finish(mut self) -> Result<W, DumpError> {
        if self.table.is_some() {
            return Err(DumpError::WriterMisuse {
                reason: "finish inside a COPY block (call end_table first)",
            });
        }
        if self.schema == Schema::Create {
            self.raw(STATE_INDEXES_SQL)?;
        }
        self.out.into_inner().map_err(|err| io_error(err.into_error()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::DumpReader;

    #[test]
    fn written_dump_reads_back() {
        let records = vec![
            Record::EventToStateGroup {
                event_id: "$a\\b".into(),
                state_group: 7,
            },
            Record::StateRow {
                state_group: 7,
                room_id: "!r:x".into(),
                event_type: "m.room.member".into(),
                state_key: "tab\there\nnew\u{1F511}\\N".into(),
                event_id: "$e".into(),
            },
        ];
        let mut writer = CopyWriter::new(Vec::new());
        writer.write_prologue(Schema::Create).expect("prologue");
        for record in &records {
            writer.begin_table(record.table()).expect("begin");
            writer.record(record).expect("record");
            writer.end_table().expect("end");
        }
        writer.begin_table(Table::StateGroups).expect("begin");
        writer.row(&["8", "!r:x", "$e\t"]).expect("row");
        assert!(matches!(
            writer.row(&["8", "!r:x"]),
            Err(DumpError::ColumnCount {
                expected: 3,
                found: 2,
                ..
            })
        ));
        assert!(matches!(
            writer.record(&records[0]),
            Err(DumpError::WriterMisuse { .. })
        ));
        writer.end_table().expect("end");
        writer.set_state_group_sequence(8).expect("setval");
        let bytes = writer.finish().expect("finish");
        let text = String::from_utf8(bytes.clone()).expect("utf8");
        assert!(text.contains("CREATE INDEX state_groups_state_type_idx"));
        let read: Vec<Record> = DumpReader::from_bufread("written", std::io::Cursor::new(bytes))
            .collect::<Result<_, _>>()
            .expect("reads back");
        let mut expected = records;
        expected.push(Record::StateGroup {
            id: 8,
            room_id: "!r:x".into(),
            event_id: "$e\t".into(),
        });
        assert_eq!(read, expected);
    }

    #[test]
    fn misuse_is_an_error() {
        let mut writer = CopyWriter::new(Vec::new());
        assert!(writer.row(&["1"]).is_err());
        assert!(writer.end_table().is_err());
        writer.begin_table(Table::StateGroupEdges).expect("begin");
        assert!(writer.begin_table(Table::StateGroups).is_err());
        assert!(writer.raw("SELECT 1;\n").is_err());
        assert!(writer.finish().is_err());
    }
}
