//! Targets `dump_copy` and `dump_compressed`: the Synapse dump reader.
//!
//! `dump_copy` takes the input as plain SQL text: the COPY line decoder
//! alone ([`decode_line`], with an encode/decode round trip), then the
//! whole reader ([`DumpReader::from_bufread`]: pg_dump preamble, COPY
//! headers, `\.` terminators, rows). The records read before the first
//! error, written back by [`CopyWriter`], must read back the same.
//!
//! `dump_compressed` takes the input as a stream whose compression is
//! sniffed ([`DumpReader::from_reader`]): gzip and zstd streams exercise the
//! decompressors under the reader. Input that does not look compressed is
//! also compressed both ways, and must read exactly as the plain text does.

use std::io::{Cursor, Write};

use mxstate_synapse_dump::copy::{decode_line, encode_field};
use mxstate_synapse_dump::{CopyWriter, DumpError, DumpReader, Record, Schema};

/// Most records read from one input: a small compressed input can expand a
/// lot, and the reader's speed on big input is not what is tested here.
const MAX_RECORDS: usize = 20_000;

/// What reading gave: each record, or the error's message (the last item).
type Outcome = Vec<Result<Record, String>>;

/// Reads up to [`MAX_RECORDS`] items; every error must print.
fn read_all(reader: impl Iterator<Item = Result<Record, DumpError>>) -> Outcome {
    reader
        .take(MAX_RECORDS)
        .map(|item| item.map_err(|err| err.to_string()))
        .collect()
}

/// The COPY line decoder on `line`, and the round trip of what it decoded.
fn check_line(line: &[u8]) {
    let Ok(fields) = decode_line(line) else {
        return;
    };
    assert!(!fields.is_empty(), "a line has at least one field");
    let mut encoded = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            encoded.push('\t');
        }
        match field {
            Some(text) => encode_field(text, &mut encoded),
            None => encoded.push_str("\\N"),
        }
    }
    let again = decode_line(encoded.as_bytes()).expect("re-encoded fields decode");
    assert_eq!(again, fields, "decode(encode(fields)) differs");
}

/// Writes `records` as a dump, in their order, one COPY block per run of
/// records of one table.
fn write_dump(records: &[Record]) -> Vec<u8> {
    let mut writer = CopyWriter::new(Vec::new());
    writer.write_prologue(Schema::DataOnly).expect("prologue");
    let mut table = None;
    for record in records {
        if table != Some(record.table()) {
            if table.is_some() {
                writer.end_table().expect("end_table");
            }
            writer.begin_table(record.table()).expect("begin_table");
            table = Some(record.table());
        }
        writer.record(record).expect("record");
    }
    if table.is_some() {
        writer.end_table().expect("end_table");
    }
    writer.finish().expect("finish")
}

/// The records read, written back and read again, come out the same.
fn check_round_trip(outcome: &Outcome) {
    let records: Vec<Record> = outcome.iter().map_while(|item| item.as_ref().ok().cloned()).collect();
    if records.is_empty() || records.len() >= MAX_RECORDS {
        return;
    }
    let dump = write_dump(&records);
    let again = read_all(DumpReader::from_bufread("rewritten", Cursor::new(dump)));
    let expected: Outcome = records.into_iter().map(Ok).collect();
    assert_eq!(again, expected, "records written back read differently");
}

/// Fuzz target `dump_copy`: see the module documentation.
pub fn dump_copy(data: &[u8]) {
    check_line(data);
    if let Some(first) = data.split(|&b| b == b'\n').next() {
        check_line(first);
    }
    let outcome = read_all(DumpReader::from_bufread("fuzz", Cursor::new(data.to_vec())));
    assert!(!outcome.is_empty(), "a reader ends with records or an error");
    check_round_trip(&outcome);
}

/// Whether [`DumpReader::from_reader`] takes `data` as plain text: the
/// magic bytes of gzip, zstd, pg_dump archives (custom, tar), bzip2, xz.
fn looks_plain(data: &[u8]) -> bool {
    let magic: [&[u8]; 5] = [
        &[0x1f, 0x8b],
        &[0x28, 0xb5, 0x2f, 0xfd],
        b"PGDMP",
        b"BZh",
        b"\xfd7zXZ\0",
    ];
    !magic.iter().any(|m| data.starts_with(m)) && data.get(257..262) != Some(b"ustar")
}

/// `data` gzip-compressed.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("writes to memory");
    encoder.finish().expect("writes to memory")
}

/// Fuzz target `dump_compressed`: see the module documentation.
pub fn dump_compressed(data: &[u8]) {
    let outcome = match DumpReader::from_reader("fuzz", Cursor::new(data.to_vec())) {
        Ok(reader) => read_all(reader),
        Err(err) => vec![Err(err.to_string())],
    };
    assert!(!outcome.is_empty(), "a reader ends with records or an error");
    check_round_trip(&outcome);
    if !looks_plain(data) {
        return;
    }
    let plain = read_all(DumpReader::from_bufread("fuzz", Cursor::new(data.to_vec())));
    assert_eq!(outcome, plain, "plain text read through from_reader differs");
    let zstd = zstd::bulk::compress(data, 1).expect("compresses in memory");
    for (how, compressed) in [("zstd", zstd), ("gzip", gzip(data))] {
        let via = match DumpReader::from_reader("fuzz", Cursor::new(compressed)) {
            Ok(reader) => read_all(reader),
            Err(err) => vec![Err(err.to_string())],
        };
        assert_eq!(via, plain, "{how}-compressed input reads differently");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &[u8] = b"--\n-- PostgreSQL database dump\n--\n\nSET client_encoding = 'UTF8';\n\n\
COPY public.state_groups (id, room_id, event_id) FROM stdin;\n\
1\t!r:x\t$e1\n\
\\.\n\
COPY public.state_groups_state (state_group, room_id, type, state_key, event_id) FROM stdin;\n\
1\t!r:x\tm.room.create\t\t$e1\n\
1\t!r:x\tm.room.member\t@a\\tb:x\t$e2\n\
\\.\n\
COPY public.state_group_edges (state_group, prev_state_group) FROM stdin;\n\
\\.\n\
COPY public.event_to_state_groups (event_id, state_group) FROM stdin;\n\
$e1\t1\n\
\\.\n";

    #[test]
    fn fixed_inputs() {
        for input in [
            &b""[..],
            b"\\",
            b"a\tb\\N\t\\N\t\\x4\\101",
            b"COPY public.state_groups (id) FROM stdin;\n",
            b"SET x;\nCOPY public.state_groups (id, room_id, event_id) FROM stdin;\n1\t2\n\\.\n",
            b"\x1f\x8b\x08\x00",
            b"\x28\xb5\x2f\xfd\x00",
            b"PGDMP",
            DUMP,
        ] {
            dump_copy(input);
            dump_compressed(input);
        }
        dump_compressed(&gzip(DUMP));
        dump_compressed(&zstd::bulk::compress(DUMP, 3).expect("compresses"));
    }

    #[test]
    fn reads_the_sample_dump() {
        let outcome = read_all(DumpReader::from_bufread("sample", Cursor::new(DUMP.to_vec())));
        assert_eq!(outcome.len(), 4, "{outcome:?}");
        assert!(outcome.iter().all(Result::is_ok), "{outcome:?}");
    }
}
