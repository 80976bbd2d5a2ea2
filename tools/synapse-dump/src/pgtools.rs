//! Finding PostgreSQL client and server programs.

use std::path::{Path, PathBuf};

/// Where Debian/Ubuntu install versioned PostgreSQL binaries.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// The `/usr/lib/postgresql/<version>/bin` directories, highest version first.
pub(crate) fn versioned_bin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.split('.').next()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.is_dir().then_some((version, bin))
        })
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    dirs.into_iter().map(|(_, dir)| dir).collect()
}

/// Environment variable naming the one directory to take PostgreSQL
/// programs from, instead of searching.
pub(crate) const BIN_ENV: &str = "MXSTATE_PG_BIN";

/// The directory set by [`BIN_ENV`], if any.
pub(crate) fn bin_override() -> Option<PathBuf> {
    std::env::var_os(BIN_ENV).map(PathBuf::from)
}

/// Looks a PostgreSQL program up in `$MXSTATE_PG_BIN` alone when set, else
/// in `PATH`, then in the versioned directories. On failure returns a
/// description of where it looked.
pub(crate) fn find_program(program: &str) -> Result<PathBuf, String> {
    let (dirs, searched) = match bin_override() {
        Some(dir) => {
            let searched = format!("${BIN_ENV}={}", dir.display());
            (vec![dir], searched)
        }
        None => {
            let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect())
                .unwrap_or_default();
            dirs.extend(versioned_bin_dirs());
            (dirs, format!("PATH and {DEBIAN_ROOT}/*/bin"))
        }
    };
    dirs.iter()
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or(searched)
}

/// Looks a system program (not a PostgreSQL one) up in `PATH`.
pub(crate) fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

/// Whether `path` is a regular file with an execute bit.
pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
