//! Opening an mxstate database in a directory.

use std::path::Path;
use std::sync::Arc;

use mxstate_api::{Error, Result};
use mxstate_engine::kv::Cf;
use mxstate_engine::{Engine, EngineOptions, EngineStore};

use crate::kv::{RocksConfig, RocksKv};

/// Opens (or, with `opts.create`, makes) the database in directory `path`.
pub fn open(path: &Path, opts: EngineOptions) -> Result<Engine> {
    open_with(path, opts, &RocksConfig::default())
}

/// [`open`] with RocksDB settings.
pub fn open_with(path: &Path, opts: EngineOptions, rocks: &RocksConfig) -> Result<Engine> {
    let fresh = check_directory(path, opts.create)?;
    if !fresh {
        check_manifest_record_types(path)?;
        let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), path).map_err(|e| match e.kind() {
            // A damaged MANIFEST (or a failing disk) is a damaged database,
            // not "not a database": keep RocksDB's kind (Corrupt, Backend).
            rocksdb::ErrorKind::Corruption | rocksdb::ErrorKind::IOError => crate::error::rocks(e),
            _ => Error::NotADatabase(path.display().to_string()),
        })?;
        let missing: Vec<&str> = Cf::V1
            .iter()
            .map(|cf| cf.name())
            .filter(|name| !cfs.iter().any(|n| n == name))
            .collect();
        if missing.len() == Cf::V1.len() {
            // None of ours: another application's RocksDB database, or
            // ours with a MANIFEST so damaged that the listing stopped
            // early (it reports no error then). RocksDB's OPTIONS file,
            // written at every open, still names our families then;
            // otherwise opening it read-only tells.
            if options_name_our_families(path) {
                return Err(Error::corrupt(
                    "column family list",
                    format!("{}/MANIFEST", path.display()),
                    "the MANIFEST lists none of mxstate's column families, which the OPTIONS file names",
                ));
            }
            return match rocksdb::DB::open_for_read_only(&rocksdb::Options::default(), path, false) {
                Err(e) if matches!(e.kind(), rocksdb::ErrorKind::Corruption | rocksdb::ErrorKind::IOError) => {
                    Err(crate::error::rocks(e))
                }
                _ => Err(Error::NotADatabase(path.display().to_string())),
            };
        }
        if !missing.is_empty() {
            // Some of ours and not the others: not another application's
            // database, ours with a damaged MANIFEST.
            return Err(Error::corrupt(
                "column family list",
                format!("{}/MANIFEST", path.display()),
                format!("column families {} missing", missing.join(", ")),
            ));
        }
    }
    let kv = RocksKv::open(path, fresh, rocks)?;
    match Engine::with_kv(Box::new(kv), opts) {
        // Every family of ours is listed, so mxstate made this database;
        // records without the format record are the rest of a database
        // whose MANIFEST lost the files holding it.
        Err(Error::NotADatabase(_)) if !fresh => Err(Error::corrupt(
            "format record",
            format!("{}/MANIFEST", path.display()),
            "the column families are mxstate's but the format record is missing",
        )),
        r => r,
    }
}

/// The async `StateStore` over the database in `path`.
pub fn open_store(path: &Path, opts: EngineOptions) -> Result<EngineStore> {
    Ok(EngineStore::new(Arc::new(open(path, opts)?)))
}

/// Whether a RocksDB OPTIONS file in `path` names every column family of
/// format 1 (RocksDB writes one at each open: the database was opened as
/// an mxstate database before). Unreadable files count as not naming them.
fn options_name_our_families(path: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(path) else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name().to_string_lossy().starts_with("OPTIONS-")
            && std::fs::read(e.path()).is_ok_and(|bytes| {
                let text = String::from_utf8_lossy(&bytes);
                Cf::V1
                    .iter()
                    .all(|cf| text.contains(&format!("[CFOptions \"{}\"]", cf.name())))
            })
    })
}

/// RocksDB's log record types that only recycled log files use (full,
/// first, middle, last, user-defined timestamp size).
const RECYCLABLE_TYPES: [u8; 5] = [5, 6, 7, 8, 11];

/// Refuses a MANIFEST (the one `CURRENT` names) holding a record header
/// of a recyclable type, which mxstate never writes (it does not recycle
/// logs): a damaged byte. RocksDB's log reader, given such a header in a
/// MANIFEST, can loop forever while listing column families (found by
/// the corruption test: a flipped type byte, 6 instead of 1). Headers are
/// walked in RocksDB's log format (32 KiB blocks, 7-byte headers: CRC,
/// little-endian length, type) while they stay inside the file; whatever
/// else is wrong is left to RocksDB, which reports it.
fn check_manifest_record_types(path: &Path) -> Result<()> {
    const BLOCK: usize = 32 * 1024;
    const HEADER: usize = 7;
    let Ok(current) = std::fs::read_to_string(path.join("CURRENT")) else {
        return Ok(());
    };
    let name = current.trim_end();
    if name.is_empty() || name.contains('/') {
        return Ok(());
    }
    let manifest = path.join(name);
    let Ok(bytes) = std::fs::read(&manifest) else {
        return Ok(());
    };
    let mut pos = 0usize;
    while pos + HEADER <= bytes.len() {
        let left_in_block = BLOCK - pos % BLOCK;
        if left_in_block < HEADER {
            pos += left_in_block;
            continue;
        }
        let len = usize::from(u16::from_le_bytes([bytes[pos + 4], bytes[pos + 5]]));
        let kind = bytes[pos + 6];
        if RECYCLABLE_TYPES.contains(&kind) {
            return Err(Error::corrupt(
                "MANIFEST record",
                format!("{} at byte {pos}", manifest.display()),
                format!("record type {kind} is only used by recycled logs"),
            ));
        }
        if kind == 0 || pos + HEADER + len > bytes.len() {
            break;
        }
        pos += HEADER + len;
    }
    Ok(())
}

/// Checks the directory; returns whether a new database is to be made.
fn check_directory(path: &Path, create: bool) -> Result<bool> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let shown = || path.display().to_string();
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !create {
                return Err(Error::NoDatabase(shown()));
            }
            std::fs::create_dir_all(path).map_err(io)?;
            Ok(true)
        }
        Err(e) => Err(io(e)),
        Ok(m) if !m.is_dir() => Err(Error::NotADatabase(shown())),
        Ok(_) => {
            let empty = std::fs::read_dir(path).map_err(io)?.next().is_none();
            if empty && !create {
                return Err(Error::NoDatabase(shown()));
            }
            if !empty && !path.join("CURRENT").is_file() {
                return Err(Error::NotADatabase(shown()));
            }
            Ok(empty)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxstate_api::ErrorKind;

    /// A MANIFEST from the corruption test, whose flipped type byte made
    /// RocksDB's column family listing loop forever: refused, promptly.
    #[test]
    fn a_manifest_record_of_a_recyclable_type_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifest-recyclable-type");
        std::fs::copy(fixture, db.join("MANIFEST-000005")).unwrap();
        std::fs::write(db.join("CURRENT"), "MANIFEST-000005\n").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let opened = db.clone();
        std::thread::spawn(move || {
            let _ = tx.send(open(&opened, EngineOptions::default()).map(|_| ()));
        });
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("opening did not return within 60 s");
        let err = result.expect_err("a damaged MANIFEST opened");
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
        assert!(err.to_string().contains("record type 6"), "{err}");
    }

    #[test]
    fn another_rocksdb_database_is_not_ours() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        o.create_missing_column_families(true);
        drop(rocksdb::DB::open_cf(&o, dir.path(), ["theirs"]).unwrap());
        let e = open(dir.path(), EngineOptions::default()).err().unwrap();
        assert!(matches!(e, Error::NotADatabase(_)), "{e}");
    }

    #[test]
    fn a_damaged_manifest_is_a_damaged_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        drop(open(&db, EngineOptions::default()).unwrap());
        let files: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(&db)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect();
        let (manifest, pristine) = files
            .iter()
            .find(|(p, _)| p.file_name().unwrap().to_string_lossy().starts_with("MANIFEST-"))
            .unwrap();
        // A damaged first record stops RocksDB's listing of column
        // families without an error; other damage fails the listing.
        for at in (0..pristine.len()).step_by(7) {
            std::fs::remove_dir_all(&db).unwrap();
            std::fs::create_dir(&db).unwrap();
            for (p, bytes) in &files {
                std::fs::write(p, bytes).unwrap();
            }
            let mut bytes = pristine.clone();
            bytes[at] ^= 0xf2;
            std::fs::write(manifest, &bytes).unwrap();
            match open(&db, EngineOptions::default()) {
                Ok(_) => {}
                Err(e) => assert!(
                    matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::Backend),
                    "byte {at} of {}: {e}",
                    pristine.len()
                ),
            }
        }
    }
}
