//! Reading one line at a time into a reused buffer, with an optional length cap.

use std::io::{self, BufRead};

use memchr::memchr;

/// How a call to [`read_line`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineEnd {
    /// A whole line, its newline removed.
    Complete,
    /// The last line of the input, without a newline.
    Partial,
    /// The line is longer than the cap; the buffer holds its beginning.
    TooLong,
    /// No more input.
    Eof,
}

/// Reads the next line into `buf` (cleared first) without its `\n` (nor a
/// `\r` before it). Stops early with [`LineEnd::TooLong`] once more than
/// `cap` bytes were read.
pub(crate) fn read_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>, cap: usize) -> io::Result<LineEnd> {
    buf.clear();
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if available.is_empty() {
            return Ok(if buf.is_empty() { LineEnd::Eof } else { LineEnd::Partial });
        }
        match memchr(b'\n', available) {
            Some(i) => {
                buf.extend_from_slice(&available[..i]);
                reader.consume(i + 1);
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                return Ok(if buf.len() > cap {
                    LineEnd::TooLong
                } else {
                    LineEnd::Complete
                });
            }
            None => {
                let n = available.len();
                buf.extend_from_slice(available);
                reader.consume(n);
                if buf.len() > cap {
                    return Ok(LineEnd::TooLong);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_across_small_buffers() {
        let data = b"first\r\nsecond line\n\nlast";
        let mut reader = io::BufReader::with_capacity(3, &data[..]);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        loop {
            let end = read_line(&mut reader, &mut buf, usize::MAX).expect("reads");
            if end == LineEnd::Eof {
                break;
            }
            got.push((end, String::from_utf8_lossy(&buf).into_owned()));
        }
        assert_eq!(
            got,
            vec![
                (LineEnd::Complete, "first".into()),
                (LineEnd::Complete, "second line".into()),
                (LineEnd::Complete, String::new()),
                (LineEnd::Partial, "last".into()),
            ]
        );
    }

    #[test]
    fn stops_at_the_cap() {
        let data = [b'x'; 100];
        let mut reader = io::BufReader::with_capacity(8, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut reader, &mut buf, 20).expect("reads"), LineEnd::TooLong);
        assert!(buf.len() <= 28);
    }
}
