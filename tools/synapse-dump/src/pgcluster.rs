//! [`PgCluster`]: a private, throw-away PostgreSQL server for tests and
//! benchmarks.
//!
//! The cluster lives in a temporary directory, listens on 127.0.0.1 on a
//! free port (plus a unix socket inside that directory), trusts every local
//! connection and runs with `fsync=off`. Binaries come from
//! `$MXSTATE_PG_BIN` when that is set, else `/usr/lib/postgresql/15/bin`,
//! the highest `/usr/lib/postgresql/<version>/bin`, or the directory of
//! `initdb` in `PATH`. As root, `initdb` and `pg_ctl` run as the `postgres`
//! user through
//! `runuser`, on directories given to that user. Dropping the cluster stops
//! the server (`pg_ctl stop -m immediate`) and removes the directory.

use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use tempfile::TempDir;

use crate::error::{tail_one_line, DumpError, Location};
use crate::pgtools::{bin_override, find_in_path, find_program, is_executable, versioned_bin_dirs, BIN_ENV};

/// The PostgreSQL major version preferred when several are installed.
const PREFERRED_BIN: &str = "/usr/lib/postgresql/15/bin";
/// How many ports to try if the chosen one is taken meanwhile.
const START_ATTEMPTS: usize = 4;

/// A running private PostgreSQL server; stopped and deleted on drop.
pub struct PgCluster {
    dir: TempDir,
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// `Some((uid, gid))` of `postgres` when running as root.
    owner: Option<(u32, u32)>,
}

impl std::fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCluster")
            .field("dir", &self.dir.path())
            .field("bin", &self.bin)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DumpError + '_ {
    move |source| DumpError::Io {
        at: Location::file(path.display().to_string()),
        source,
    }
}

impl PgCluster {
    /// Creates, starts and waits for a new cluster.
    pub fn start() -> Result<PgCluster, DumpError> {
        let bin = find_bin_dir()?;
        let tmp = if Path::new("/tmp").is_dir() {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("mxstate-pg-")
            .tempdir_in(&tmp)
            .map_err(io_error(&tmp))?;
        let root = dir.path().to_path_buf();
        let meta = std::fs::metadata(&root).map_err(io_error(&root))?;
        let owner = if meta.uid() == 0 { Some(postgres_user()?) } else { None };
        // Let the postgres user through the directory.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).map_err(io_error(&root))?;
        let mut cluster = PgCluster {
            data: root.join("data"),
            dir,
            bin,
            port: 0,
            owner,
        };
        cluster.init()?;
        cluster.launch()?;
        Ok(cluster)
    }

    /// Runs `initdb` on a fresh data directory.
    fn init(&self) -> Result<(), DumpError> {
        for dir in [&self.data, &self.socket_dir()] {
            std::fs::create_dir(dir).map_err(io_error(dir))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_error(dir))?;
        }
        let log = self.log_file();
        std::fs::write(&log, b"").map_err(io_error(&log))?;
        if let Some((uid, gid)) = self.owner {
            for path in [&self.data, &self.socket_dir(), &log] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io_error(path))?;
            }
        }
        let mut initdb = self.server_command("initdb");
        initdb.arg("-D").arg(&self.data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        run(initdb, "initdb").map(drop)
    }

    /// Starts the server on a free port, retrying if the port got taken.
    fn launch(&mut self) -> Result<(), DumpError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.port = free_port()?;
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k '{}' -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off",
                self.port,
                self.socket_dir().display()
            );
            let mut pg_ctl = self.server_command("pg_ctl");
            pg_ctl
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(self.log_file())
                .args(["-w", "-t", "60", "-s", "-o", &options, "start"]);
            match run(pg_ctl, "pg_ctl start") {
                Ok(_) => return self.wait_ready(),
                Err(_) if attempt < START_ATTEMPTS => continue,
                Err(DumpError::Command { command, status, .. }) => {
                    // pg_ctl says little; the server log says why.
                    let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
                    return Err(DumpError::Command {
                        command,
                        status,
                        stderr: tail_one_line(&log, 600),
                    });
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Retries connecting until the server answers (pg_ctl -w already waited).
    fn wait_ready(&self) -> Result<(), DumpError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.connect("postgres") {
                Ok(_) => return Ok(()),
                Err(err) if Instant::now() > deadline => return Err(err),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// A command for a server program, run as `postgres` when we are root.
    fn server_command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = match self.owner {
            Some(_) => {
                let mut c = Command::new(runuser());
                c.args(["-u", "postgres", "--"]).arg(path);
                c
            }
            None => Command::new(path),
        };
        command.current_dir(self.dir.path()).stdin(Stdio::null());
        command
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The TCP port the server listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the PostgreSQL binaries used.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// `postgresql://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// `postgresql://postgres@127.0.0.1:PORT/<db>` (`db` used as is).
    pub fn url_for(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A client program of this installation (`psql`, `pg_dump`, ...) with
    /// `PGHOST`, `PGPORT` and `PGUSER` pointing at this cluster.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", "postgres")
            .env_remove("PGPASSWORD")
            .env_remove("PGDATABASE")
            .env_remove("PGSERVICE")
            .stdin(Stdio::null());
        command
    }

    /// Connects to database `db` as `postgres`.
    pub fn connect(&self, db: &str) -> Result<Client, DumpError> {
        postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname(db)
            .connect(NoTls)
            .map_err(|source| DumpError::Postgres {
                at: Location::file(self.url_for(db)),
                context: "connecting".into(),
                source,
            })
    }

    /// Creates database `name` (UTF8, C collation, as Synapse requires).
    pub fn create_database(&self, name: &str) -> Result<(), DumpError> {
        let mut client = self.connect("postgres")?;
        let sql = format!(
            "CREATE DATABASE \"{}\" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'",
            name.replace('"', "\"\"")
        );
        client.batch_execute(&sql).map_err(|source| DumpError::Postgres {
            at: Location::file(self.url()),
            context: format!("creating database {name}"),
            source,
        })
    }

    /// Runs `psql -v ON_ERROR_STOP=1 -q -f <path>` on database `db`.
    pub fn psql_file(&self, db: &str, path: &Path) -> Result<(), DumpError> {
        let mut psql = self.command("psql");
        psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f"])
            .arg(path);
        run(psql, &format!("psql -f {}", path.display())).map(drop)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.port != 0 {
            let mut pg_ctl = self.server_command("pg_ctl");
            pg_ctl
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "-s", "stop"]);
            // Nothing to do on failure: the directory goes away regardless.
            let _ = run(pg_ctl, "pg_ctl stop");
        }
    }
}

/// Runs a command to completion; a non-zero exit becomes [`DumpError::Command`].
fn run(mut command: Command, label: &str) -> Result<Output, DumpError> {
    let failed = |status: String, stderr: String| DumpError::Command {
        command: label.to_owned(),
        status,
        stderr,
    };
    let output = command
        .output()
        .map_err(|err| failed("could not start".into(), err.to_string()))?;
    if output.status.success() {
        Ok(output)
    } else {
        let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
        if text.trim().is_empty() {
            text = String::from_utf8_lossy(&output.stdout).into_owned();
        }
        Err(failed(output.status.to_string(), tail_one_line(&text, 600)))
    }
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> Result<u16, DumpError> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|source| DumpError::Io {
        at: Location::file("127.0.0.1:0"),
        source,
    })?;
    let port = listener
        .local_addr()
        .map_err(|source| DumpError::Io {
            at: Location::file("127.0.0.1:0"),
            source,
        })?
        .port();
    Ok(port)
}

/// The directory with `initdb`, `pg_ctl`, `psql` and `pg_dump`.
fn find_bin_dir() -> Result<PathBuf, DumpError> {
    let has_server = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres", "psql"]
            .iter()
            .all(|p| is_executable(&dir.join(p)))
    };
    let (candidates, searched) = match bin_override() {
        Some(dir) => {
            let searched = format!("${BIN_ENV}={}", dir.display());
            (vec![dir], searched)
        }
        None => {
            let mut dirs = vec![PathBuf::from(PREFERRED_BIN)];
            dirs.extend(versioned_bin_dirs());
            dirs.extend(
                find_program("initdb")
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf)),
            );
            (dirs, format!("{PREFERRED_BIN}, /usr/lib/postgresql/*/bin, PATH"))
        }
    };
    candidates
        .into_iter()
        .find(|dir| has_server(dir))
        .ok_or(DumpError::PgBinariesNotFound {
            program: "initdb",
            searched: format!("{searched}; install e.g. Debian's postgresql-15"),
        })
}

/// `runuser`, wherever it is.
fn runuser() -> PathBuf {
    find_in_path("runuser").unwrap_or_else(|| PathBuf::from("/usr/sbin/runuser"))
}

/// The uid and gid of the `postgres` user, from `/etc/passwd`.
fn postgres_user() -> Result<(u32, u32), DumpError> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(io_error(Path::new("/etc/passwd")))?;
    passwd
        .lines()
        .find_map(|line| {
            let mut parts = line.split(':');
            if parts.next()? != "postgres" {
                return None;
            }
            let uid = parts.nth(1)?.parse().ok()?;
            let gid = parts.next()?.parse().ok()?;
            Some((uid, gid))
        })
        .ok_or(DumpError::PgBinariesNotFound {
            program: "postgres user",
            searched: "/etc/passwd (initdb refuses to run as root; a `postgres` user is needed)".into(),
        })
}
