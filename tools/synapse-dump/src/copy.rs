//! PostgreSQL `COPY ... FROM stdin` text-format codec.
//!
//! A line holds fields separated by tabs. Inside a field a backslash starts
//! an escape: `\b \f \n \r \t \v \\`, octal `\NNN` (1 to 3 digits), hex
//! `\xHH` (1 or 2 digits), and any other `\c` stands for `c`. A field that is
//! exactly `\N` is NULL. This is what `pg_dump` writes and what `psql` reads.
//!
//! [`FieldDecoder`] decodes a line into a reusable buffer without allocating
//! per field; [`decode_line`] is the allocating convenience form.

use memchr::memchr;

use crate::error::{DumpError, Location};

/// Decodes COPY lines into one reusable buffer.
///
/// After a successful [`FieldDecoder::decode`], [`FieldDecoder::get`] gives
/// each field as `Some(text)` or `None` (NULL).
#[derive(Debug, Default)]
pub struct FieldDecoder {
    /// All decoded fields, back to back; valid UTF-8 after a successful decode.
    buf: String,
    /// Byte range of each field in `buf`, `None` for NULL.
    spans: Vec<Option<(usize, usize)>>,
}

impl FieldDecoder {
    /// A decoder with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one line (without its newline). On error the decoder is empty.
    ///
    /// Errors: [`DumpError::InvalidUtf8`] when a field does not decode to
    /// UTF-8, [`DumpError::DanglingBackslash`] when the line ends in a lone
    /// backslash. Their location and table are left empty for the caller.
    pub fn decode(&mut self, line: &[u8]) -> Result<(), DumpError> {
        let mut bytes = std::mem::take(&mut self.buf).into_bytes();
        bytes.clear();
        self.spans.clear();
        if memchr(b'\\', line).is_none() {
            // Fast path: no escape and no NULL anywhere; fields are the raw bytes.
            bytes.extend_from_slice(line);
            let mut start = 0;
            while let Some(i) = memchr(b'\t', &line[start..]) {
                self.spans.push(Some((start, start + i)));
                start += i + 1;
            }
            self.spans.push(Some((start, line.len())));
        } else {
            let mut start = 0;
            loop {
                let end = memchr(b'\t', &line[start..]).map_or(line.len(), |i| start + i);
                let raw = &line[start..end];
                if raw == b"\\N" {
                    self.spans.push(None);
                } else {
                    let from = bytes.len();
                    if !unescape(raw, &mut bytes) {
                        return Err(DumpError::DanglingBackslash {
                            at: Location::default(),
                            table: None,
                            column: self.spans.len() + 1,
                        });
                    }
                    self.spans.push(Some((from, bytes.len())));
                }
                if end == line.len() {
                    break;
                }
                start = end + 1;
            }
        }
        self.finish(bytes)
    }

    /// Validates the decoded bytes as UTF-8, field by field, and keeps them.
    fn finish(&mut self, bytes: Vec<u8>) -> Result<(), DumpError> {
        let bad_column = match String::from_utf8(bytes) {
            Ok(text) => {
                // The whole buffer is UTF-8; each field is if it starts and
                // ends on character boundaries (escapes could split a char).
                let bad = self
                    .spans
                    .iter()
                    .position(|span| span.is_some_and(|(s, e)| !text.is_char_boundary(s) || !text.is_char_boundary(e)));
                self.buf = text;
                match bad {
                    None => return Ok(()),
                    Some(i) => i + 1,
                }
            }
            Err(err) => {
                let valid = err.utf8_error().valid_up_to();
                let mut bytes = err.into_bytes();
                bytes.clear();
                self.buf = String::from_utf8(bytes).unwrap_or_default();
                self.spans
                    .iter()
                    .position(|span| span.is_some_and(|(_, e)| e > valid))
                    .map_or(self.spans.len(), |i| i + 1)
            }
        };
        self.buf.clear();
        self.spans.clear();
        Err(DumpError::InvalidUtf8 {
            at: Location::default(),
            table: None,
            column: bad_column,
        })
    }

    /// Number of fields in the last decoded line.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether no line (or a failed one) was decoded.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Field `i` (0-based): `None` past the end, `Some(None)` for NULL.
    pub fn get(&self, i: usize) -> Option<Option<&str>> {
        let span = self.spans.get(i)?;
        Some(span.and_then(|(s, e)| self.buf.get(s..e)))
    }
}

/// Appends the unescaped form of one raw field to `out`.
/// Returns false when the field ends in a lone backslash.
fn unescape(raw: &[u8], out: &mut Vec<u8>) -> bool {
    let mut i = 0;
    while let Some(j) = memchr(b'\\', &raw[i..]) {
        out.extend_from_slice(&raw[i..i + j]);
        i += j + 1;
        let Some(&c) = raw.get(i) else {
            return false;
        };
        i += 1;
        let byte = match c {
            b'0'..=b'7' => {
                let mut value = u32::from(c - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                // PostgreSQL keeps the low 8 bits of `\400`..`\777`.
                (value & 0xff) as u8
            }
            b'x' => match raw.get(i).copied().and_then(hex_value) {
                Some(high) => {
                    i += 1;
                    match raw.get(i).copied().and_then(hex_value) {
                        Some(low) => {
                            i += 1;
                            high * 16 + low
                        }
                        None => high,
                    }
                }
                None => b'x',
            },
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 0x0b,
            other => other,
        };
        out.push(byte);
    }
    out.extend_from_slice(&raw[i..]);
    true
}

/// The value of one hex digit.
fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes one COPY line (without its newline) into its fields, `None` for NULL.
///
/// Allocates one `String` per field; readers of large inputs use
/// [`FieldDecoder`] instead.
pub fn decode_line(line: &[u8]) -> Result<Vec<Option<String>>, DumpError> {
    let mut decoder = FieldDecoder::new();
    decoder.decode(line)?;
    Ok((0..decoder.len())
        .map(|i| decoder.get(i).flatten().map(str::to_owned))
        .collect())
}

/// Appends `s` escaped for a COPY text field, as PostgreSQL's `COPY TO` does:
/// backslash, tab, newline, carriage return, backspace, form feed and
/// vertical tab become `\\ \t \n \r \b \f \v`. A NUL character (which
/// PostgreSQL cannot store in `text`) becomes `\000`, so the output is still
/// one line. Other characters are copied as they are.
pub fn encode_field(s: &str, out: &mut String) {
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'\\' => "\\\\",
            b'\t' => "\\t",
            b'\n' => "\\n",
            b'\r' => "\\r",
            0x08 => "\\b",
            0x0c => "\\f",
            0x0b => "\\v",
            0 => "\\000",
            _ => continue,
        };
        // `i` is the index of an ASCII byte, hence a character boundary.
        out.push_str(s.get(run..i).unwrap_or_default());
        out.push_str(escaped);
        run = i + 1;
    }
    out.push_str(s.get(run..).unwrap_or_default());
}

/// Appends one whole COPY line: the fields encoded, tab-separated, and a newline.
pub fn encode_line(fields: &[&str], out: &mut String) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        encode_field(field, out);
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one(line: &[u8]) -> Option<String> {
        let fields = decode_line(line).expect("decodes");
        assert_eq!(fields.len(), 1, "{line:?}");
        fields.into_iter().next().flatten()
    }

    #[test]
    fn splits_on_tabs_and_keeps_empty_fields() {
        let fields = decode_line(b"1\t\tb\t").expect("decodes");
        assert_eq!(
            fields,
            vec![
                Some("1".into()),
                Some(String::new()),
                Some("b".into()),
                Some(String::new())
            ]
        );
        assert_eq!(decode_line(b"").expect("decodes"), vec![Some(String::new())]);
    }

    #[test]
    fn decodes_every_named_escape() {
        assert_eq!(one(b"a\\tb").as_deref(), Some("a\tb"));
        assert_eq!(one(b"a\\nb").as_deref(), Some("a\nb"));
        assert_eq!(one(b"a\\rb").as_deref(), Some("a\rb"));
        assert_eq!(one(b"a\\\\b").as_deref(), Some("a\\b"));
        assert_eq!(one(b"a\\bb").as_deref(), Some("a\u{8}b"));
        assert_eq!(one(b"a\\fb").as_deref(), Some("a\u{c}b"));
        assert_eq!(one(b"a\\vb").as_deref(), Some("a\u{b}b"));
    }

    #[test]
    fn null_only_as_a_whole_field() {
        assert_eq!(
            decode_line(b"\\N\tx\t\\N").expect("decodes"),
            vec![None, Some("x".into()), None]
        );
        assert_eq!(one(b"a\\Nb").as_deref(), Some("aNb"));
        assert_eq!(one(b"\\\\N").as_deref(), Some("\\N"));
        assert_eq!(one(b"\\NN").as_deref(), Some("NN"));
    }

    #[test]
    fn decodes_octal_with_one_to_three_digits() {
        assert_eq!(one(b"\\101").as_deref(), Some("A"));
        assert_eq!(one(b"\\1010").as_deref(), Some("A0"));
        assert_eq!(one(b"\\11x").as_deref(), Some("\tx"));
        assert_eq!(one(b"\\7").as_deref(), Some("\u{7}"));
        assert_eq!(one(b"\\08").as_deref(), Some("\u{0}8"));
        // UTF-8 bytes of "é" (c3 a9) in octal.
        assert_eq!(one(b"\\303\\251").as_deref(), Some("é"));
        // Only the low 8 bits count, as in PostgreSQL: \501 = 0x141 -> 0x41.
        assert_eq!(one(b"\\501").as_deref(), Some("A"));
    }

    #[test]
    fn decodes_hex_with_one_or_two_digits() {
        assert_eq!(one(b"\\x41").as_deref(), Some("A"));
        assert_eq!(one(b"\\x4").as_deref(), Some("\u{4}"));
        assert_eq!(one(b"\\x4g").as_deref(), Some("\u{4}g"));
        assert_eq!(one(b"\\x414").as_deref(), Some("A4"));
        assert_eq!(one(b"\\xc3\\xA9").as_deref(), Some("é"));
        // `\x` without a hex digit is a plain x.
        assert_eq!(one(b"\\xz").as_deref(), Some("xz"));
    }

    #[test]
    fn other_escapes_stand_for_the_character() {
        assert_eq!(one(b"\\a\\q\\.\\ \\\"").as_deref(), Some("aq. \""));
        assert_eq!(one("\\ключ".as_bytes()).as_deref(), Some("ключ"));
    }

    #[test]
    fn invalid_utf8_is_an_error_naming_the_column() {
        let err = decode_line(b"ok\t\xff\xfe").expect_err("invalid");
        assert!(matches!(err, DumpError::InvalidUtf8 { column: 2, .. }), "{err:?}");
        let err = decode_line(b"1\tx\\377").expect_err("invalid escaped byte");
        assert!(matches!(err, DumpError::InvalidUtf8 { column: 2, .. }), "{err:?}");
        // Each half of "é" alone is invalid, even though together they are not.
        let err = decode_line(b"\\xc3\t\\xa9").expect_err("split char");
        assert!(matches!(err, DumpError::InvalidUtf8 { column: 1, .. }), "{err:?}");
    }

    #[test]
    fn lone_trailing_backslash_is_an_error() {
        let err = decode_line(b"a\tb\\").expect_err("dangling");
        assert!(matches!(err, DumpError::DanglingBackslash { column: 2, .. }), "{err:?}");
    }

    #[test]
    fn decoder_is_reusable_after_an_error() {
        let mut decoder = FieldDecoder::new();
        assert!(decoder.decode(b"\xff").is_err());
        assert!(decoder.is_empty());
        decoder.decode(b"x\\ty\t\\N").expect("decodes");
        assert_eq!(decoder.len(), 2);
        assert_eq!(decoder.get(0), Some(Some("x\ty")));
        assert_eq!(decoder.get(1), Some(None));
        assert_eq!(decoder.get(2), None);
    }

    #[test]
    fn encodes_like_postgres() {
        let mut out = String::new();
        encode_field("a\\b\tc\nd\re\u{8}f\u{c}g\u{b}h\u{0}i\u{1}é", &mut out);
        assert_eq!(out, "a\\\\b\\tc\\nd\\re\\bf\\fg\\vh\\000i\u{1}é");
        let mut line = String::new();
        encode_line(&["1", "\\N", "x\ty"], &mut line);
        assert_eq!(line, "1\t\\\\N\tx\\ty\n");
    }

    /// Strings rich in the characters COPY escapes, plus arbitrary ones.
    fn tricky_string() -> impl Strategy<Value = String> {
        let special = prop_oneof![
            Just('\t'),
            Just('\n'),
            Just('\r'),
            Just('\\'),
            Just('N'),
            Just('.'),
            Just('x'),
            Just('0'),
            Just('\u{0}'),
            Just('\u{8}'),
            Just('\u{b}'),
            Just('\u{c}'),
            Just('é'),
            any::<char>(),
        ];
        proptest::collection::vec(special, 0..24).prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(fields in proptest::collection::vec(tricky_string(), 1..5)) {
            let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
            let mut line = String::new();
            encode_line(&refs, &mut line);
            prop_assert_eq!(line.matches('\n').count(), 1);
            let decoded = decode_line(line.trim_end_matches('\n').as_bytes())
                .expect("encoded lines decode");
            let expected: Vec<Option<String>> = fields.into_iter().map(Some).collect();
            prop_assert_eq!(decoded, expected);
        }

        #[test]
        fn single_field_round_trip(s in any::<String>()) {
            let mut out = String::new();
            encode_field(&s, &mut out);
            prop_assert!(!out.contains('\t') && !out.contains('\n') && !out.contains('\r'));
            prop_assert_eq!(decode_line(out.as_bytes()).expect("decodes"), vec![Some(s)]);
        }
    }
}
