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
        let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), path)
            .map_err(|_| Error::NotADatabase(path.display().to_string()))?;
        if Cf::V1.iter().any(|cf| !cfs.iter().any(|n| n == cf.name())) {
            return Err(Error::NotADatabase(path.display().to_string()));
        }
    }
    let kv = RocksKv::open(path, fresh, rocks)?;
    Engine::with_kv(Box::new(kv), opts)
}

/// The async `StateStore` over the database in `path`.
pub fn open_store(path: &Path, opts: EngineOptions) -> Result<EngineStore> {
    Ok(EngineStore::new(Arc::new(open(path, opts)?)))
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
