//! [`DumpReader`]: streams the state-table rows out of a Synapse `pg_dump`.
//!
//! The dump is read line by line into one reused buffer. Only the COPY
//! blocks of the four state tables (and `event_auth`, when asked for) are
//! decoded; every other line (DDL, `\restrict`, data of other tables) is
//! skipped after a prefix check.

use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::Arc;

use crate::copy::FieldDecoder;
use crate::error::{DumpError, Location};
use crate::header::CopyHeader;
use crate::input::Input;
use crate::lines::{read_line, LineEnd};
use crate::record::{Include, Record, SourceRow};
use crate::row::RowLayout;
use crate::table::Table;

/// How many lines may pass before the input must have looked like a dump.
const SNIFF_LINES: u64 = 200;
/// Longest line accepted before the input looked like a dump.
const SNIFF_LINE_CAP: usize = 1 << 20;

/// Where the reader is in the dump.
#[derive(Debug)]
enum Block {
    /// Between COPY blocks (SQL text).
    Sql,
    /// Inside the data of a table that is not read.
    Skip { table: String, start: u64 },
    /// Inside the data of a state table.
    Rows { layout: RowLayout, start: u64 },
}

/// Streams [`Record`]s out of a Synapse database dump.
///
/// Accepts plain SQL dumps (optionally gzip or zstd compressed, detected by
/// magic bytes) and custom, tar and directory-format dumps (through
/// `pg_restore`). Iteration stops after the first error.
///
/// As an iterator it gives the state tables' [`Record`]s. A reader opened
/// with [`Include::StateAndAuth`] also reads `event_auth`: use
/// [`DumpReader::next_row`] to get those rows too.
pub struct DumpReader {
    name: Arc<str>,
    input: Input,
    line: Vec<u8>,
    line_no: u64,
    fields: FieldDecoder,
    block: Block,
    verified: bool,
    tables_seen: u8,
    include: Include,
    done: bool,
}

impl std::fmt::Debug for DumpReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DumpReader")
            .field("name", &self.name)
            .field("line", &self.line_no)
            .field("block", &self.block)
            .finish_non_exhaustive()
    }
}

impl DumpReader {
    /// Opens a dump file, or stdin when `path` is `-`, to read the state
    /// tables.
    pub fn open(path: &Path) -> Result<DumpReader, DumpError> {
        Self::open_including(path, Include::State)
    }

    /// Opens a dump file, or stdin when `path` is `-`, to read the tables
    /// `include` names.
    pub fn open_including(path: &Path, include: Include) -> Result<DumpReader, DumpError> {
        let name: Arc<str> = if path.as_os_str() == "-" {
            "<stdin>".into()
        } else {
            path.display().to_string().into()
        };
        let input = Input::open(path, &name, include.tables())?;
        Ok(Self::with_input(name, input, include))
    }

    /// Reads a plain SQL dump from a byte stream that is already open,
    /// detecting gzip and zstd compression by magic bytes as
    /// [`DumpReader::open`] does; `name` is used in errors. Custom and
    /// tar-format archives are refused ([`DumpError::NotADump`]): they need
    /// `pg_restore`, which [`DumpReader::open`] runs on a file or stdin.
    pub fn from_reader(name: &str, reader: impl Read + Send + 'static) -> Result<DumpReader, DumpError> {
        Self::from_reader_including(name, reader, Include::State)
    }

    /// [`DumpReader::from_reader`], reading the tables `include` names.
    pub fn from_reader_including(
        name: &str,
        reader: impl Read + Send + 'static,
        include: Include,
    ) -> Result<DumpReader, DumpError> {
        let name: Arc<str> = name.into();
        let input = Input::from_reader(Box::new(reader), &name)?;
        Ok(Self::with_input(name, input, include))
    }

    /// Reads an uncompressed SQL dump that is already open (no compression
    /// or archive detection), e.g. a generated one; `name` is used in errors.
    pub fn from_bufread(name: &str, reader: impl BufRead + Send + 'static) -> DumpReader {
        Self::from_bufread_including(name, reader, Include::State)
    }

    /// [`DumpReader::from_bufread`], reading the tables `include` names.
    pub fn from_bufread_including(name: &str, reader: impl BufRead + Send + 'static, include: Include) -> DumpReader {
        Self::with_input(name.into(), Input::from_bufread(Box::new(reader)), include)
    }

    fn with_input(name: Arc<str>, input: Input, include: Include) -> Self {
        DumpReader {
            name,
            input,
            line: Vec::with_capacity(4096),
            line_no: 0,
            fields: FieldDecoder::new(),
            block: Block::Sql,
            verified: false,
            tables_seen: 0,
            include,
            done: false,
        }
    }

    /// The input's name as used in errors (the path, or `<stdin>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Input bytes consumed so far (compressed bytes for compressed input),
    /// for progress reporting.
    pub fn bytes_read(&self) -> u64 {
        self.input.bytes_read()
    }

    /// The input's size in bytes, when it is a regular file.
    pub fn total_bytes(&self) -> Option<u64> {
        self.input.total_bytes()
    }

    /// The 1-based number of the last line read (0 before the first).
    /// For custom-format dumps, lines of `pg_restore`'s output.
    pub fn line(&self) -> u64 {
        self.line_no
    }

    /// The tables read whose COPY blocks were seen so far (`event_auth`
    /// only when it is read).
    pub fn tables_seen(&self) -> Vec<Table> {
        Table::WITH_AUTH
            .into_iter()
            .filter(|t| self.tables_seen & t.bit() != 0)
            .collect()
    }

    fn at(&self, line: u64) -> Location {
        Location::new(&self.name, line)
    }

    /// The next row of a table read ([`Include`]), or `None` at the end.
    /// Stops after the first error, as the iterator does.
    pub fn next_row(&mut self) -> Option<Result<SourceRow, DumpError>> {
        let mut row = SourceRow::placeholder();
        Some(self.next_row_into(&mut row)?.map(|()| row))
    }

    /// [`DumpReader::next_row`] into `row`, reusing its strings' buffers
    /// when it holds a row of the same table (a reader that keeps its rows
    /// allocates nothing per row). `Some(Ok(()))`: `row` is the next row;
    /// after `None` or an error, `row` holds anything.
    pub fn next_row_into(&mut self, row: &mut SourceRow) -> Option<Result<(), DumpError>> {
        if self.done {
            return None;
        }
        match self.step(row) {
            Ok(true) => Some(Ok(())),
            Ok(false) => {
                self.done = true;
                None
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }

    /// Reads lines until the next row (into `out`: true), the end (false),
    /// or an error.
    fn step(&mut self, out: &mut SourceRow) -> Result<bool, DumpError> {
        loop {
            let cap = if self.verified { usize::MAX } else { SNIFF_LINE_CAP };
            let end = read_line(&mut *self.input.reader, &mut self.line, cap).map_err(|source| DumpError::Io {
                at: self.at(self.line_no + 1),
                source,
            })?;
            if end == LineEnd::Eof {
                return self.at_eof().map(|()| false);
            }
            self.line_no += 1;
            match self.block {
                Block::Rows { layout, start } => {
                    if end == LineEnd::Partial {
                        return Err(self.truncated(layout.table.name().into(), start, self.line_no));
                    }
                    if self.line == b"\\." {
                        self.block = Block::Sql;
                        continue;
                    }
                    return self.row(layout, start, out).map(|()| true);
                }
                Block::Skip { ref table, start } => {
                    if end == LineEnd::Partial {
                        return Err(self.truncated(table.clone(), start, self.line_no));
                    }
                    if self.line == b"\\." {
                        self.block = Block::Sql;
                    }
                }
                Block::Sql => {
                    if !self.verified {
                        self.sniff(end)?;
                    }
                    if self.line.starts_with(b"COPY ") {
                        self.enter_block()?;
                    }
                }
            }
        }
    }

    /// Decodes the current line as a row of `layout`'s table.
    fn row(&mut self, layout: RowLayout, start: u64, out: &mut SourceRow) -> Result<(), DumpError> {
        let line_no = self.line_no;
        let name = &self.name;
        self.fields
            .decode(&self.line)
            .map_err(|e| e.locate(Location::new(name, line_no), layout.table))?;
        if self.fields.len() != layout.width && (self.line.is_empty() || self.line.starts_with(b"--")) {
            // SQL text where a row should be: the block lost its `\.`.
            return Err(DumpError::Unterminated {
                at: self.at(line_no),
                table: layout.table.name().into(),
                copy_line: start,
            });
        }
        layout.row_into(&self.fields, || Location::new(name, line_no), out)
    }

    /// Checks, in the first lines, that the input looks like a SQL dump.
    fn sniff(&mut self, end: LineEnd) -> Result<(), DumpError> {
        let reason = if end == LineEnd::TooLong {
            Some(format!("line longer than {SNIFF_LINE_CAP} bytes before any SQL"))
        } else if self.line.contains(&0) || std::str::from_utf8(&self.line).is_err() {
            Some("binary data".to_owned())
        } else if self.line.starts_with(b"-- PostgreSQL database")
            || self.line.starts_with(b"SET ")
            || self.line.starts_with(b"COPY ")
            || self.line.starts_with(b"\\connect ")
        {
            self.verified = true;
            None
        } else if self.line_no >= SNIFF_LINES {
            Some(format!(
                "no 'PostgreSQL database dump' header, SET or COPY line in the first {SNIFF_LINES} lines"
            ))
        } else {
            None
        };
        match reason {
            Some(reason) => Err(DumpError::NotADump {
                at: self.at(self.line_no),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Handles a line starting with `COPY `.
    fn enter_block(&mut self) -> Result<(), DumpError> {
        let Some(header) = CopyHeader::parse(&self.line) else {
            return Ok(()); // Not a `COPY ... FROM stdin;` data block.
        };
        let start = self.line_no;
        let table = header
            .in_public_schema()
            .then(|| Table::from_name(&header.table))
            .flatten()
            .filter(|&t| self.include.reads(t));
        self.block = match table {
            None => Block::Skip {
                table: header.table,
                start,
            },
            Some(table) => {
                let Some(columns) = header.columns else {
                    return Err(DumpError::BadCopyHeader {
                        at: self.at(start),
                        table,
                    });
                };
                let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
                let layout = RowLayout::from_columns(table, &columns).map_err(|column| DumpError::MissingColumn {
                    at: self.at(start),
                    table,
                    column,
                })?;
                self.tables_seen |= table.bit();
                Block::Rows { layout, start }
            }
        };
        Ok(())
    }

    fn truncated(&self, table: String, copy_line: u64, line: u64) -> DumpError {
        DumpError::Truncated {
            at: self.at(line),
            table,
            copy_line,
        }
    }

    /// The input ended (after `line_no` lines).
    fn at_eof(&mut self) -> Result<(), DumpError> {
        self.input.finish(self.at(self.line_no))?;
        let eof_line = self.line_no + 1;
        match &self.block {
            Block::Rows { layout, start } => {
                return Err(self.truncated(layout.table.name().into(), *start, eof_line));
            }
            Block::Skip { table, start } => {
                return Err(self.truncated(table.clone(), *start, eof_line));
            }
            Block::Sql => {}
        }
        if !self.verified {
            let reason = if self.line_no == 0 {
                "empty input"
            } else {
                "no 'PostgreSQL database dump' header, SET or COPY line"
            };
            return Err(DumpError::NotADump {
                at: self.at(self.line_no),
                reason: reason.into(),
            });
        }
        if Table::ALL.iter().all(|t| self.tables_seen & t.bit() == 0) {
            return Err(DumpError::NoStateTables {
                at: self.at(self.line_no),
            });
        }
        Ok(())
    }
}

impl Iterator for DumpReader {
    type Item = Result<Record, DumpError>;

    /// The next state-table record (`event_auth` rows, if read, are
    /// passed over: [`DumpReader::next_row`] gives them).
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.next_row()? {
                Ok(SourceRow::State(record)) => return Some(Ok(record)),
                Ok(SourceRow::Auth(_)) => {}
                Err(err) => return Some(Err(err)),
            }
        }
    }
}

impl std::iter::FusedIterator for DumpReader {}
