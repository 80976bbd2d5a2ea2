//! The pieces of the `compare` binary: mxstate against Synapse's own
//! PostgreSQL tables and queries, on the same synthetic dump.

pub mod mx;
pub mod pg;
pub mod pg_auth;
pub mod report;

/// Errors of the comparison: anything, with a message.
pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

use std::path::PathBuf;
use std::time::Instant;

/// Progress on stderr, with the time since the start.
pub struct Log(pub Instant);

impl Log {
    pub fn say(&self, msg: &str) {
        eprintln!("[{:>7.1} s] {msg}", self.0.elapsed().as_secs_f64());
    }
}

/// Runs a comparison's `run`, exiting 1 with its error.
pub fn exit_on_error(name: &str, result: Res<()>) {
    if let Err(e) = result {
        eprintln!("{name}: {e}");
        std::process::exit(1);
    }
}

/// The work directory: `given` (created, kept) or a temporary one under
/// /var/tmp named `prefix...` (removed when the guard drops); and the
/// mxstate database's path in it, removed if an earlier run left one.
pub fn work_dir(given: Option<&PathBuf>, prefix: &str) -> Res<(Option<tempfile::TempDir>, PathBuf, PathBuf)> {
    let (tmp, work) = match given {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            (None, d.clone())
        }
        None => {
            let t = tempfile::Builder::new().prefix(prefix).tempdir_in("/var/tmp")?;
            let p = t.path().to_owned();
            (Some(t), p)
        }
    };
    let db = work.join("mxstate-db");
    if db.exists() {
        // Ours from an earlier run in the same work directory.
        std::fs::remove_dir_all(&db)?;
    }
    Ok((tmp, work, db))
}
