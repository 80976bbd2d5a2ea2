//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// mxstate: compressed room-state storage for Matrix homeservers.
#[derive(Parser, Debug)]
#[command(name = "mxstate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build a sample history, store it, print figures and timed reads.
    Demo(DemoArgs),
    /// Print figures about a database.
    Stats(StatsArgs),
    /// Print the state of groups or events.
    State(StateArgs),
    /// Import Synapse's state tables (and event_auth) from a pg_dump or a live database.
    Import(ImportArgs),
    /// Serve a database to many processes (one owner, many clients).
    Serve(ServeArgs),
    /// Check every record and index of a database for damage (exit 1 on damage).
    Check(CheckArgs),
    /// Compare a database with its Synapse source: every group's state, and a
    /// sample of auth chains and auth chain differences.
    Verify(VerifyArgs),
    /// Print the auth chain of events (Synapse's get_auth_chain_ids).
    ///
    /// The events reachable from the given ones by one or more auth edges,
    /// sorted. The room is the one whose auth index holds the given events
    /// (found by a scan of the index). Given events it does not hold (never
    /// added: e.g. a room's create event, which has no auth events) add
    /// nothing and are named on stderr; at least one must be held, and all
    /// those held must be in one room (else exit 1).
    AuthChain(AuthChainArgs),
    /// Print the auth chain difference of state sets.
    ///
    /// The events in the full auth chain (the set's own events included) of
    /// some of the sets but not all, sorted. The room is found as for
    /// auth-chain; an event the index does not hold is its own full chain.
    AuthDifference(AuthDifferenceArgs),
    /// Write the database as Synapse's state tables (SQL with COPY blocks).
    Export(ExportArgs),
    /// Write a synthetic Synapse-shaped dump.
    Synth(SynthArgs),
}

/// Where Synapse's rows come from.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct SourceArgs {
    /// A plain or custom-format pg_dump (.sql, .sql.gz, .sql.zst, -Fc), or - for stdin.
    pub file: Option<PathBuf>,
    /// A live Synapse database, e.g. postgresql://user@host/synapse (read-only).
    #[arg(long)]
    pub postgres: Option<String>,
}

/// The database to read: a directory, or a running `mxstate serve`.
#[derive(Args, Debug)]
#[group(skip)]
pub struct TargetArgs {
    /// Database directory, or a PostgreSQL database (`postgresql://...`).
    #[arg(long, required_unless_present = "server", conflicts_with = "server")]
    pub db: Option<PathBuf>,
    /// A running `mxstate serve` (`unix:PATH` or `tcp:HOST:PORT`), read
    /// while it serves.
    #[arg(long)]
    pub server: Option<String>,
    /// With --server: a file holding the service's shared secret.
    #[arg(long, requires = "server")]
    pub secret_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Database directory, or a PostgreSQL database (`postgresql://...`);
    /// created if missing.
    #[arg(long)]
    pub db: PathBuf,
    #[command(flatten)]
    pub source: SourceArgs,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Check about N groups spread over the source instead of all (the
    /// auth chains compared are a sample of their own: at most about 2000
    /// events, and the differences of about 200 rooms).
    #[arg(long)]
    pub sample: Option<u64>,
    /// Print the report as JSON (how many groups, auth chains and auth
    /// chain differences were compared, and the first mismatches).
    #[arg(long)]
    pub json: bool,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct AuthChainArgs {
    /// Database directory, or a PostgreSQL database (`postgresql://...`).
    #[arg(long)]
    pub db: PathBuf,
    /// An event id (repeatable).
    #[arg(long = "event", required = true)]
    pub events: Vec<String>,
    /// Include the given events themselves (as Synapse's include_given).
    #[arg(long)]
    pub include_given: bool,
    /// Print `{"auth_chain": [...]}` instead of one event id per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct AuthDifferenceArgs {
    /// Database directory, or a PostgreSQL database (`postgresql://...`).
    #[arg(long)]
    pub db: PathBuf,
    /// A state set: event ids separated by commas (give two or more sets).
    #[arg(long = "set", required = true)]
    pub sets: Vec<String>,
    /// Print `{"auth_difference": [...]}` instead of one event id per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Database directory, or a PostgreSQL database (`postgresql://...`).
    #[arg(long)]
    pub db: PathBuf,
    /// Output SQL file, or - for stdout.
    #[arg(long)]
    pub out: PathBuf,
    /// Leave out `event_to_state_groups` (it lives in Synapse's main
    /// database, which keeps its rows when Synapse runs on mxstate).
    #[arg(long)]
    pub without_event_mappings: bool,
}

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Output SQL file, or - for stdout.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of rooms (room 0 is the biggest).
    #[arg(long, default_value_t = 1)]
    pub rooms: u32,
    /// Members of the biggest room.
    #[arg(long, default_value_t = 1000)]
    pub members: u32,
    /// State events of the biggest room (0: twice the members).
    #[arg(long, default_value_t = 0)]
    pub state_events: u64,
    /// Seed: the same seed gives the same file.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Mean non-state events per state event.
    #[arg(long, default_value_t = 4)]
    pub messages: u32,
    /// A fork and merge every N state events (0: none).
    #[arg(long, default_value_t = 50)]
    pub fork_every: u32,
    /// Also write each state event's auth events (`event_auth`) and
    /// Synapse's chain cover index over them (`event_auth_chains`,
    /// `event_auth_chain_links`), computed as Synapse computes it.
    #[arg(long)]
    pub auth: bool,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Database directory (default: a temporary directory, removed after).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Members of the big sample room.
    #[arg(long, default_value_t = 5000)]
    pub members: u32,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Database directory, or a PostgreSQL database (`postgresql://...`);
    /// created if missing.
    #[arg(long)]
    pub db: PathBuf,
    /// `unix:PATH` (access by file permissions) or `tcp:HOST:PORT`
    /// (loopback unless --secret-file is given).
    #[arg(long)]
    pub listen: String,
    /// A file holding the shared secret clients must prove (16 bytes or more).
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// Largest request or answer, in MiB.
    #[arg(long, default_value_t = 64)]
    pub max_frame_mb: u32,
    /// Most clients connected at once.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Database directory, or a PostgreSQL database (`postgresql://...`).
    #[arg(long)]
    pub db: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StateArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// A state group (repeatable).
    #[arg(long = "group")]
    pub groups: Vec<u64>,
    /// An event id: the state at that event's group (repeatable).
    #[arg(long = "event")]
    pub events: Vec<String>,
    /// `TYPE` (all state keys) or `TYPE,STATE_KEY` (repeatable); default: everything.
    #[arg(long = "type")]
    pub types: Vec<String>,
    /// With --type: include every type not listed.
    #[arg(long)]
    pub include_others: bool,
    /// One JSON line per group.
    #[arg(long)]
    pub json: bool,
}
