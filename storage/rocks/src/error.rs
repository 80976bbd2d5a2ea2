//! RocksDB's errors as the API's backend errors, keeping RocksDB's kind.

use mxstate_api::{Error, ErrorKind};

/// Wraps a RocksDB error, classifying it by RocksDB's own kind.
pub fn rocks(e: rocksdb::Error) -> Error {
    let kind = match e.kind() {
        rocksdb::ErrorKind::Corruption => ErrorKind::Corrupt,
        rocksdb::ErrorKind::InvalidArgument | rocksdb::ErrorKind::NotSupported => ErrorKind::InvalidInput,
        rocksdb::ErrorKind::Busy | rocksdb::ErrorKind::TryAgain => ErrorKind::Conflict,
        rocksdb::ErrorKind::NotFound => ErrorKind::NotFound,
        _ => ErrorKind::Backend,
    };
    Error::backend("rocksdb", kind, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_kind() {
        let dir = tempfile::tempdir().unwrap();
        // Opening a missing database without create_if_missing is an
        // "Invalid argument" in RocksDB.
        let e = rocksdb::DB::open(&rocksdb::Options::default(), dir.path().join("none")).unwrap_err();
        let ours = rocks(e);
        assert_eq!(ours.kind(), ErrorKind::InvalidInput, "{ours}");
        assert!(ours.to_string().starts_with("rocksdb: "), "{ours}");
    }
}
