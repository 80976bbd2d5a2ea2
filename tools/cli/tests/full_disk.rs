//! A full disk: `mxstate import` of the real fixture into small tmpfs
//! filesystems the test mounts (inside `unshare --user --map-root-user
//! --mount`, or `unshare --mount` as root), sized to fill up at different
//! points of the import. Each import must fail with exit status 1 and a
//! clear "no space left on device" message (no panic); opening the
//! database on the still-full disk must either work or fail the same clean
//! way; once the filesystem is grown (`mount -o remount,size=...`) the
//! database opens, `mxstate check` finds it clean, the rerun import resumes
//! (or finds the import complete) and `mxstate verify` against the dump
//! passes. At least one size must fill up in the middle of the import (an
//! unfinished import the rerun resumes). Without a way to mount, the test
//! fails and says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{fixture, s};

const TEST: &str = "an_import_on_a_full_disk_fails_cleanly_and_resumes";
/// Set in the process that runs the scenario, to the directory to mount in.
const INNER: &str = "MXSTATE_FULL_DISK_DIR";
/// Filesystem sizes (KiB). The finished fixture database takes ~400 KiB
/// with RocksDB's own files; the import also needs its scratch sort buffer
/// next to the database, so these fill up from the first write to the
/// final compaction.
const SIZES_KIB: [u32; 5] = [300, 380, 440, 500, 600];
const GROWN_KIB: u32 = 8192;

#[test]
fn an_import_on_a_full_disk_fails_cleanly_and_resumes() {
    if let Some(dir) = std::env::var_os(INNER) {
        scenario(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut why = Vec::new();
    for prefix in [&["--user", "--map-root-user", "--mount"][..], &["--mount"][..]] {
        let shown = format!("unshare {}", prefix.join(" "));
        let out = Command::new("unshare")
            .args(prefix)
            .arg("--")
            .arg(&exe)
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(INNER, dir.path())
            .output();
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                why.push(format!("{shown}: {e}"));
                continue;
            }
        };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if text.contains("SCENARIO DONE") && out.status.success() {
            println!("{text}");
            return;
        }
        assert!(
            !text.contains("SCENARIO STARTED") || text.contains("CANNOT MOUNT"),
            "the full-disk scenario failed (inside {shown}):\n{text}"
        );
        why.push(format!("{shown}: {}", text.trim()));
    }
    panic!(
        "cannot run the full-disk test: it needs to mount a small tmpfs, inside \
         `unshare --user --map-root-user --mount` (unprivileged user namespaces) or, as root, \
         `unshare --mount`; both failed:\n{}",
        why.join("\n")
    );
}

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn mxstate(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_mxstate"), args)
}

/// Requires a clean failure for a full disk: exit 1, one message saying so.
fn full_disk_failure(what: &str, o: &Output) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{what}: {}", text(o));
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{what}: {err}"
    );
    assert!(
        err.starts_with("mxstate: no space left on device: free some space"),
        "{what}: the message does not say the disk is full: {err}"
    );
}

/// Runs inside the mount namespace: the scenario at every size.
fn scenario(dir: &Path) {
    println!("SCENARIO STARTED");
    let source = fixture();
    let mut mid_import = 0;
    let mut failed = 0;
    for kib in SIZES_KIB {
        let mnt = dir.join(format!("fs-{kib}k"));
        std::fs::create_dir_all(&mnt).unwrap();
        let m = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs", s(&mnt)])
            .output();
        match m {
            Ok(m) if m.status.success() => {}
            Ok(m) => {
                println!("CANNOT MOUNT: {}", text(&m));
                panic!("cannot mount a tmpfs here");
            }
            Err(e) => {
                println!("CANNOT MOUNT: mount: {e}");
                panic!("cannot mount a tmpfs here");
            }
        }
        let db: PathBuf = mnt.join("db");
        let what = format!("import into {kib} KiB");
        let first = mxstate(&["import", "--quiet", "--db", s(&db), s(&source)]);
        if first.status.success() {
            println!("{kib:>4} KiB: the import completed (the filesystem is big enough)");
            umount(&mnt);
            continue;
        }
        failed += 1;
        full_disk_failure(&what, &first);
        let first_err = String::from_utf8_lossy(&first.stderr).trim().to_owned();
        // On the still-full disk: opening works, or fails just as cleanly.
        let stats = mxstate(&["stats", "--db", s(&db)]);
        let stats_err = String::from_utf8_lossy(&stats.stderr).to_string();
        let full_open = if stats.status.success() || stats_err.contains("did not complete") {
            "opens"
        } else {
            full_disk_failure(&format!("{what}: stats on the full disk"), &stats);
            "cannot open (no space)"
        };
        let grow = run(
            "mount",
            &["-o", &format!("remount,size={GROWN_KIB}k"), "tmpfs", s(&mnt)],
        );
        assert!(grow.status.success(), "{what}: growing the filesystem: {}", text(&grow));
        // The database opens and holds no damage.
        let check = mxstate(&["check", "--db", s(&db)]);
        assert!(check.status.success(), "{what}: check after growing: {}", text(&check));
        let check_out = String::from_utf8_lossy(&check.stdout).to_string();
        assert!(check_out.contains("clean"), "{what}: {check_out}");
        let unfinished = check_out.contains("did not finish");
        // The rerun resumes and completes.
        let again = mxstate(&["import", "--db", s(&db), s(&source)]);
        assert!(again.status.success(), "{what}: the rerun: {}", text(&again));
        let again_all = text(&again);
        let resumed = again_all.contains("resuming");
        assert_eq!(
            resumed, unfinished,
            "{what}: the rerun resumes exactly an unfinished import: {again_all}"
        );
        if !resumed {
            assert!(again_all.contains("already complete"), "{what}: {again_all}");
        } else {
            mid_import += 1;
        }
        let verify = mxstate(&["verify", "--quiet", "--db", s(&db), s(&source)]);
        assert!(verify.status.success(), "{what}: verify: {}", text(&verify));
        let v = String::from_utf8_lossy(&verify.stdout).to_string();
        assert!(v.contains("checked 1198 of 1198 groups: 0 mismatches"), "{what}: {v}");
        let check = mxstate(&["check", "--db", s(&db)]);
        assert!(
            check.status.success(),
            "{what}: check after the rerun: {}",
            text(&check)
        );
        println!(
            "{kib:>4} KiB: the import failed ({}); on the full disk the database {full_open}; grown to {GROWN_KIB} \
             KiB: check clean, rerun {}, verify 0 mismatches",
            first_err.split(". ").last().unwrap_or(&first_err),
            if resumed {
                "resumed the unfinished import"
            } else {
                "found the import complete"
            },
        );
        umount(&mnt);
    }
    assert!(failed > 0, "no size filled up: the sizes {SIZES_KIB:?} need adjusting");
    assert!(
        mid_import > 0,
        "no size filled up in the middle of the import (sizes {SIZES_KIB:?}): adjust them"
    );
    println!("SCENARIO DONE");
}

fn umount(mnt: &Path) {
    let u = run("umount", &[s(mnt)]);
    assert!(u.status.success(), "umount {}: {}", mnt.display(), text(&u));
}
