//! Opening a dump: stdin or a file, gzip/zstd detected by magic bytes,
//! custom/tar/directory-format archives turned into SQL by `pg_restore`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::{tail_one_line, DumpError, Location};
use crate::pgtools::find_program;
use crate::table::Table;

/// Read buffer size, for the raw input and for decompressed text.
const BUFFER: usize = 256 * 1024;

/// What the first bytes of a stream say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gzip,
    Zstd,
    /// `pg_dump -Fc` (magic `PGDMP`) or `-Ft` (a tar with `ustar` at 257).
    Archive,
    Bzip2,
    Xz,
    Plain,
}

fn sniff(head: &[u8]) -> Kind {
    if head.starts_with(&[0x1f, 0x8b]) {
        Kind::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Kind::Zstd
    } else if head.starts_with(b"PGDMP") || head.get(257..262) == Some(b"ustar") {
        Kind::Archive
    } else if head.starts_with(b"BZh") {
        Kind::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Kind::Xz
    } else {
        Kind::Plain
    }
}

/// Why [`Input::from_reader`] refuses a custom or tar-format archive.
const ARCHIVE_NEEDS_FILE: &str =
    "a custom or tar-format archive needs pg_restore: open it as a file or stdin, not as an in-memory stream";

/// `raw` decompressed as `kind` says (gzip or zstd); plain text as it is.
fn decompressing(kind: Kind, raw: Box<dyn BufRead + Send>) -> io::Result<Box<dyn BufRead + Send>> {
    Ok(match kind {
        Kind::Gzip => Box::new(BufReader::with_capacity(BUFFER, flate2::read::MultiGzDecoder::new(raw))),
        Kind::Zstd => Box::new(BufReader::with_capacity(
            BUFFER,
            zstd::stream::read::Decoder::with_buffer(raw)?,
        )),
        Kind::Plain | Kind::Archive | Kind::Bzip2 | Kind::Xz => raw,
    })
}

/// Counts the bytes read through it, for progress reporting.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// How progress is measured.
enum Progress {
    /// Bytes of the input read so far.
    Counted(Arc<AtomicU64>),
    /// `pg_restore` reads the file itself: its `rchar` in `/proc/<pid>/io`.
    ChildIo(u32),
}

/// A running `pg_restore` and the threads serving it.
struct Restore {
    child: Child,
    stderr: Option<JoinHandle<String>>,
    feeder: Option<JoinHandle<()>>,
}

/// An opened dump: the SQL text as a `BufRead`, plus progress information.
pub(crate) struct Input {
    /// The SQL text of the dump.
    pub(crate) reader: Box<dyn BufRead + Send>,
    progress: Progress,
    total: Option<u64>,
    restore: Option<Restore>,
    finished: bool,
}

impl Input {
    /// Opens `path` (`-` for stdin). `name` is used in errors; `tables`
    /// are those `pg_restore` is to give, for an archive.
    pub(crate) fn open(path: &Path, name: &Arc<str>, tables: &[Table]) -> Result<Input, DumpError> {
        let io_err = |source| DumpError::Io {
            at: Location::file(Arc::clone(name)),
            source,
        };
        let count = Arc::new(AtomicU64::new(0));
        let is_stdin = path.as_os_str() == "-";
        let (raw, total): (Box<dyn Read + Send>, Option<u64>) = if is_stdin {
            (Box::new(io::stdin()), None)
        } else if path.is_dir() {
            if path.join("toc.dat").is_file() {
                return spawn_restore(name, RestoreSource::Path(path), None, tables);
            }
            return Err(DumpError::NotADump {
                at: Location::file(Arc::clone(name)),
                reason: "a directory without toc.dat".into(),
            });
        } else {
            let file = File::open(path).map_err(io_err)?;
            let meta = file.metadata().map_err(io_err)?;
            (Box::new(file), meta.is_file().then_some(meta.len()))
        };
        let mut buffered = BufReader::with_capacity(
            BUFFER,
            Counting {
                inner: raw,
                count: Arc::clone(&count),
            },
        );
        let kind = sniff(buffered.fill_buf().map_err(io_err)?);
        let not_supported = |what: &str| DumpError::NotADump {
            at: Location::file(Arc::clone(name)),
            reason: format!("{what}-compressed input is not supported; decompress it first"),
        };
        let mut text: Box<dyn BufRead + Send> = match kind {
            Kind::Bzip2 => return Err(not_supported("bzip2")),
            Kind::Xz => return Err(not_supported("xz")),
            Kind::Archive if is_stdin || total.is_none() => {
                return spawn_restore(name, RestoreSource::Pipe(Box::new(buffered)), Some(count), tables);
            }
            Kind::Archive => {
                drop(buffered);
                let mut input = spawn_restore(name, RestoreSource::Path(path), None, tables)?;
                input.total = total;
                return Ok(input);
            }
            Kind::Plain | Kind::Gzip | Kind::Zstd => decompressing(kind, Box::new(buffered)).map_err(io_err)?,
        };
        if sniff(text.fill_buf().map_err(io_err)?) == Kind::Archive {
            // A compressed custom-format archive: decompress into pg_restore.
            let mut input = spawn_restore(name, RestoreSource::Pipe(text), Some(count), tables)?;
            input.total = total;
            return Ok(input);
        }
        Ok(Input {
            reader: text,
            progress: Progress::Counted(count),
            total,
            restore: None,
            finished: false,
        })
    }

    /// A byte stream already open, plain or gzip/zstd-compressed (detected
    /// by magic bytes, as [`Input::open`] does). Custom and tar-format
    /// archives, which need `pg_restore`, and bzip2/xz input are refused.
    pub(crate) fn from_reader(reader: Box<dyn Read + Send>, name: &Arc<str>) -> Result<Input, DumpError> {
        let io_err = |source| DumpError::Io {
            at: Location::file(Arc::clone(name)),
            source,
        };
        let refuse = |reason: &str| DumpError::NotADump {
            at: Location::file(Arc::clone(name)),
            reason: reason.into(),
        };
        let count = Arc::new(AtomicU64::new(0));
        let mut buffered = BufReader::with_capacity(
            BUFFER,
            Counting {
                inner: reader,
                count: Arc::clone(&count),
            },
        );
        let kind = sniff(buffered.fill_buf().map_err(io_err)?);
        let mut text = match kind {
            Kind::Plain | Kind::Gzip | Kind::Zstd => decompressing(kind, Box::new(buffered)).map_err(io_err)?,
            Kind::Bzip2 => return Err(refuse("bzip2-compressed input is not supported; decompress it first")),
            Kind::Xz => return Err(refuse("xz-compressed input is not supported; decompress it first")),
            Kind::Archive => return Err(refuse(ARCHIVE_NEEDS_FILE)),
        };
        if sniff(text.fill_buf().map_err(io_err)?) == Kind::Archive {
            return Err(refuse(ARCHIVE_NEEDS_FILE));
        }
        Ok(Input {
            reader: text,
            progress: Progress::Counted(count),
            total: None,
            restore: None,
            finished: false,
        })
    }

    /// Text that is already open: no detection, progress counts its bytes.
    pub(crate) fn from_bufread(reader: Box<dyn BufRead + Send>) -> Input {
        let count = Arc::new(AtomicU64::new(0));
        Input {
            reader: Box::new(BufReader::with_capacity(
                BUFFER,
                Counting {
                    inner: reader,
                    count: Arc::clone(&count),
                },
            )),
            progress: Progress::Counted(count),
            total: None,
            restore: None,
            finished: false,
        }
    }

    /// Input bytes consumed so far (compressed bytes for compressed input).
    pub(crate) fn bytes_read(&self) -> u64 {
        let read = match &self.progress {
            Progress::Counted(count) => count.load(Ordering::Relaxed),
            Progress::ChildIo(_) if self.finished => self.total.unwrap_or(0),
            Progress::ChildIo(pid) => child_rchar(*pid).unwrap_or(0),
        };
        self.total.map_or(read, |total| read.min(total))
    }

    /// The input's size, when it is a regular file.
    pub(crate) fn total_bytes(&self) -> Option<u64> {
        self.total
    }

    /// Called at the end of the SQL text: waits for `pg_restore`, if any,
    /// and reports its failure.
    pub(crate) fn finish(&mut self, at: Location) -> Result<(), DumpError> {
        self.finished = true;
        let Some(mut restore) = self.restore.take() else {
            return Ok(());
        };
        let status = restore
            .child
            .wait()
            .map_err(|source| DumpError::Io { at: at.clone(), source })?;
        let stderr = restore.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        if let Some(feeder) = restore.feeder.take() {
            // The feeder only ends with the input or a closed pipe.
            let _ = feeder.join();
        }
        if status.success() {
            Ok(())
        } else {
            Err(DumpError::PgRestoreFailed {
                at,
                status: status.to_string(),
                stderr: tail_one_line(&stderr, 600),
            })
        }
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        if let Some(restore) = self.restore.as_mut() {
            // Dropped before the end: stop the pg_restore this Input started.
            let _ = restore.child.kill();
            let _ = restore.child.wait();
        }
    }
}

/// `rchar` (bytes read) of a process, from `/proc/<pid>/io`.
fn child_rchar(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|line| line.strip_prefix("rchar:"))
        .and_then(|v| v.trim().parse().ok())
}

/// What pg_restore reads.
enum RestoreSource<'a> {
    /// A file or directory, given as an argument.
    Path(&'a Path),
    /// A stream, copied to its stdin by a thread.
    Pipe(Box<dyn BufRead + Send>),
}

/// Runs `pg_restore --data-only --file=- --table=<each of tables>` and
/// returns its stdout as the input.
fn spawn_restore(
    name: &Arc<str>,
    source: RestoreSource<'_>,
    count: Option<Arc<AtomicU64>>,
    tables: &[Table],
) -> Result<Input, DumpError> {
    let at = || Location::file(Arc::clone(name));
    let program = find_program("pg_restore").map_err(|searched| DumpError::PgRestoreNotFound { at: at(), searched })?;
    let mut command = Command::new(&program);
    command.args(["--data-only", "--file=-"]);
    for table in tables {
        command.arg(format!("--table={}", table.name()));
    }
    let pipe = match source {
        RestoreSource::Path(path) => {
            command.arg(path).stdin(Stdio::null());
            None
        }
        RestoreSource::Pipe(reader) => {
            command.stdin(Stdio::piped());
            Some(reader)
        }
    };
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| DumpError::PgRestoreFailed {
            at: at(),
            status: format!("could not start {}", program.display()),
            stderr: err.to_string(),
        })?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take().map(|mut stderr| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stderr.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    });
    let feeder = match (pipe, child.stdin.take()) {
        (Some(mut reader), Some(mut stdin)) => Some(std::thread::spawn(move || {
            // A write error means pg_restore stopped; its status tells why.
            let _ = io::copy(&mut reader, &mut stdin);
        })),
        _ => None,
    };
    let Some(stdout) = stdout else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(DumpError::PgRestoreFailed {
            at: at(),
            status: "no stdout".into(),
            stderr: String::new(),
        });
    };
    let progress = match count {
        Some(count) => Progress::Counted(count),
        None => Progress::ChildIo(child.id()),
    };
    Ok(Input {
        reader: Box::new(BufReader::with_capacity(BUFFER, stdout)),
        progress,
        total: None,
        restore: Some(Restore { child, stderr, feeder }),
        finished: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_magic_bytes() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Kind::Gzip);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Kind::Zstd);
        assert_eq!(sniff(b"PGDMP\x01\x0e"), Kind::Archive);
        assert_eq!(sniff(b"BZh91AY"), Kind::Bzip2);
        assert_eq!(sniff(b"--\n-- PostgreSQL database dump"), Kind::Plain);
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&tar), Kind::Archive);
    }

    /// The SQL text `from_reader` gives for `bytes`, or its error.
    fn text_of(bytes: Vec<u8>) -> Result<Vec<u8>, DumpError> {
        let name: Arc<str> = "test".into();
        let mut input = Input::from_reader(Box::new(io::Cursor::new(bytes)), &name)?;
        let mut text = Vec::new();
        input.reader.read_to_end(&mut text).expect("reads");
        Ok(text)
    }

    #[test]
    fn from_reader_decompresses_and_refuses_archives() {
        let sql = b"SET x = 1;\nCOPY t (a) FROM stdin;\n\\.\n".to_vec();
        assert_eq!(text_of(sql.clone()).expect("plain"), sql);
        let zstd = zstd::bulk::compress(&sql, 3).expect("compresses");
        assert_eq!(text_of(zstd).expect("zstd"), sql);
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gzip, &sql).expect("compresses");
        assert_eq!(text_of(gzip.finish().expect("compresses")).expect("gzip"), sql);
        for refused in [
            b"PGDMP\x01".to_vec(),
            zstd::bulk::compress(b"PGDMP\x01", 3).expect("compresses"),
            b"BZh9".to_vec(),
        ] {
            let err = text_of(refused).expect_err("refused");
            assert!(matches!(err, DumpError::NotADump { .. }), "{err:?}");
        }
    }
}
