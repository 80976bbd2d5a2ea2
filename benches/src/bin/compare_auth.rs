//! mxstate's auth index against Synapse's chain cover index on PostgreSQL,
//! on one machine, in one run, on the same synthetic room:
//!
//! ```sh
//! cargo run --release -p mxstate-benches --bin compare_auth -- --members 10000 [--seed 1] [--repeat 5] [--work-dir DIR] [--backend rocksdb|postgres]
//! ```
//!
//! 1. Writes the room's `event_auth` rows and Synapse's chain cover
//!    (`event_auth_chains`, `event_auth_chain_links`), computed as Synapse
//!    computes it (`mxstate_synth::write_auth_dump`).
//! 2. Loads them into a private PostgreSQL cluster with Synapse's DDL and
//!    indexes, then `VACUUM ANALYZE`; disk is `pg_total_relation_size` of
//!    the three tables.
//! 3. Imports `event_auth` with `mxstate_synapse_import::Importer`, compacts;
//!    disk is the `auth` column family.
//! 4. Asks both the same questions, checks that the answers are equal
//!    (abort on a difference), then times `--repeat` runs of each side:
//!    - the auth chain of the room's full state (what a join sends);
//!    - the auth chain difference of the full state and the state 1, 100
//!      and 10,000 membership events earlier (each of those users'
//!      membership taken back to the event before, or removed);
//!    - state res v2.1's conflicted subgraph, with that difference, of the
//!      conflict between the full state and the state 50 membership events
//!      earlier (about 100 conflicted events).
//!
//!    Synapse's side runs its own SQL with its Python glue ported to Rust
//!    (`compare::pg_auth`); mxstate's side is `Engine::auth_chain_unordered`
//!    and `Engine::auth_chain_difference_of` on parsed event ids.
//! 5. Prints a markdown table.

// Shared with the other comparison binary, which uses other parts of it.
#[allow(dead_code)]
#[path = "../compare/mod.rs"]
mod compare;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use mxstate_engine::{Engine, EventId, RoomId};
use mxstate_synapse_dump::Include;
use mxstate_synth::{write_auth_dump, Generator, SynthOptions, MEMBER};

use compare::mx;
use compare::pg::Pg;
use compare::pg_auth::{self, Difference};
use compare::report::{bytes, count, date, dur, machine, ratio, Table, Timings};
use compare::{Log, Res};

/// mxstate's auth index against Synapse's chain cover, same data, same machine.
#[derive(Parser, Debug)]
#[command(name = "compare_auth")]
struct Args {
    /// Joined members of the generated room (state events: twice as many).
    #[arg(long)]
    members: u32,
    /// Seed of the generated history.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Timed runs of each question, each side (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Directory for the dump and the mxstate database (kept); default a
    /// temporary directory under /var/tmp (removed).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Where mxstate keeps its records: `rocksdb` or `postgres` (a database
    /// of the same PostgreSQL server as Synapse's tables).
    #[arg(long, default_value = "rocksdb", value_parser = ["rocksdb", "postgres"])]
    backend: String,
}

impl Args {
    /// The command line that reproduces this run.
    fn command(&self) -> String {
        let mut c = format!(
            "cargo run --release -p mxstate-benches --bin compare_auth -- --members {} --seed {} --repeat {}",
            self.members, self.seed, self.repeat
        );
        if let Some(d) = &self.work_dir {
            c.push_str(&format!(" --work-dir {}", d.display()));
        }
        if self.backend != "rocksdb" {
            c.push_str(&format!(" --backend {}", self.backend));
        }
        c
    }
}

fn main() {
    let args = Args::parse();
    compare::exit_on_error("compare_auth", run(&args));
}

/// What the generator says of the room: enough to build the questions.
struct Room {
    id: String,
    /// Every state event's chain cover position.
    position: HashMap<String, (i64, i64)>,
    at: HashMap<(i64, i64), String>,
    /// State events in creation order.
    order: HashMap<String, u64>,
    /// The room's final state: `(is a membership, event id)`.
    state: Vec<(bool, String)>,
}

fn room(opts: &SynthOptions) -> Res<Room> {
    let mut g = Generator::new(opts)?;
    let mut room = Room {
        id: String::new(),
        position: HashMap::new(),
        at: HashMap::new(),
        order: HashMap::new(),
        state: Vec::new(),
    };
    let mut n = 0u64;
    while let Some(group) = g.next_group() {
        if let Some(pos) = group.auth_chain_position() {
            room.position.insert(group.event_id().to_owned(), pos);
            room.at.insert(pos, group.event_id().to_owned());
            room.order.insert(group.event_id().to_owned(), n);
            n += 1;
        }
        if group.is_last_in_room() {
            room.id = group.room_id().to_owned();
            room.state = group
                .state()
                .map(|r| (r.event_type == MEMBER, r.event_id.to_owned()))
                .collect();
        }
    }
    Ok(room)
}

impl Room {
    /// The final state's event ids.
    fn full(&self) -> Vec<String> {
        self.state.iter().map(|(_, e)| e.clone()).collect()
    }

    /// The final state with its `k` latest membership events taken back:
    /// each replaced by the event before it on its chain (the same user's
    /// previous membership), or removed when it starts its chain. Returns
    /// the state and how many were taken back.
    fn earlier(&self, k: usize) -> (Vec<String>, usize) {
        let mut members: Vec<&String> = self.state.iter().filter(|(m, _)| *m).map(|(_, e)| e).collect();
        members.sort_by_key(|e| std::cmp::Reverse(self.order.get(*e).copied().unwrap_or(0)));
        let back: HashSet<&String> = members.into_iter().take(k).collect();
        let n = back.len();
        let mut out = Vec::with_capacity(self.state.len());
        for (_, e) in &self.state {
            if !back.contains(e) {
                out.push(e.clone());
                continue;
            }
            let before = self
                .position
                .get(e)
                .filter(|(_, seq)| *seq > 1)
                .and_then(|(chain, seq)| self.at.get(&(*chain, seq - 1)));
            if let Some(b) = before {
                out.push(b.clone());
            }
        }
        (out, n)
    }
}

fn parse(ids: &[String]) -> Res<Vec<EventId>> {
    Ok(ids.iter().map(EventId::parse).collect::<Result<_, _>>()?)
}

fn strings<'a>(ids: impl IntoIterator<Item = &'a EventId>) -> HashSet<String> {
    ids.into_iter().map(|e| e.as_str().to_owned()).collect()
}

/// The first few events in one answer and not the other, for the error.
fn mismatch(what: &str, pg: &HashSet<String>, mx: &HashSet<String>) -> String {
    let only_pg: Vec<&String> = pg.difference(mx).take(3).collect();
    let only_mx: Vec<&String> = mx.difference(pg).take(3).collect();
    format!(
        "{what}: PostgreSQL returned {} events, mxstate {}; only PostgreSQL: {only_pg:?}; only mxstate: {only_mx:?}",
        pg.len(),
        mx.len()
    )
}

/// One question, both sides: the answers checked equal, then timed.
struct Question {
    label: String,
    pg: Timings,
    mx: Timings,
    answer: usize,
}

impl Question {
    /// The medians on stderr (`note` after mxstate's).
    fn say(&self, log: &Log, note: &str) {
        log.say(&format!(
            "{}: PostgreSQL {}, mxstate {}{note}; {} events, equal",
            self.label,
            dur(self.pg.median()),
            dur(self.mx.median()),
            self.answer
        ));
    }
}

/// mxstate's difference, as Synapse's `StateDifference`.
fn mx_difference(
    engine: &Engine,
    room: &RoomId,
    sets: &[Vec<EventId>],
    conflicted: Option<&Vec<EventId>>,
) -> Res<(Duration, Difference)> {
    let none: Vec<EventId> = Vec::new();
    let t = Instant::now();
    let d = engine.auth_chain_difference_of(room, sets, conflicted.map(|c| (c, &none)))?;
    let elapsed = t.elapsed();
    Ok((
        elapsed,
        Difference {
            auth_difference: strings(&d.auth_difference),
            conflicted_subgraph: d.conflicted_subgraph.as_ref().map(strings),
        },
    ))
}

fn run(args: &Args) -> Res<()> {
    let log = Log(Instant::now());
    if args.repeat == 0 {
        return Err("--repeat must be at least 1".into());
    }
    let machine = machine();
    let date = date();
    let (_tmp, work, db) = compare::work_dir(args.work_dir.as_ref(), "mxstate-compare-auth-")?;
    let dump = work.join(format!("synth-auth-m{}-s{}.sql", args.members, args.seed));

    // 1. The dump, and the room's questions.
    let opts = SynthOptions {
        rooms: 1,
        members: args.members,
        seed: args.seed,
        auth: true,
        ..Default::default()
    };
    log.say(&format!("writing the auth tables to {}", dump.display()));
    let t = Instant::now();
    let summary = write_auth_dump(&opts, BufWriter::new(File::create(&dump)?))?;
    log.say(&format!(
        "dump: {}, {} event_auth rows, {} chain positions, {} chain links ({})",
        bytes(summary.bytes_written),
        count(summary.auth_rows),
        count(summary.chain_positions),
        count(summary.chain_links),
        dur(t.elapsed())
    ));
    let room = room(&opts)?;
    let full = room.full();
    let members = room.state.iter().filter(|(m, _)| *m).count();
    log.say(&format!(
        "room {}: {} state events, full state {} events ({} memberships)",
        room.id,
        count(room.position.len() as u64),
        count(full.len() as u64),
        count(members as u64)
    ));

    // 2. PostgreSQL.
    log.say("starting PostgreSQL");
    let mut pg = Pg::start()?;
    let pg_version = pg.version()?;
    let pg_load = pg.load(&dump)?;
    let pg_vacuum = pg.vacuum_analyze()?;
    let pg_sizes = pg.sizes_of(&["event_auth", "event_auth_chains", "event_auth_chain_links"])?;
    let pg_total: u64 = pg_sizes.iter().map(|(_, b)| b).sum();
    let pg_cover: u64 = pg_sizes
        .iter()
        .filter(|(t, _)| *t != "event_auth")
        .map(|(_, b)| b)
        .sum();
    log.say(&format!(
        "{pg_version}: loaded in {}, VACUUM ANALYZE in {}; tables {}",
        dur(pg_load),
        dur(pg_vacuum),
        bytes(pg_total)
    ));

    // 3. mxstate.
    let db = mx::Db::for_backend(&args.backend, &pg, db)?;
    let (engine, import, mx_import) = mx::import(&db, &dump, &work, Include::StateAndAuth)?;
    let (mx_compact, stats) = mx::compact_and_stats(&engine)?;
    drop(engine);
    let mx_auth = mx::cf_bytes(&stats, "auth");
    let mx_total = stats.bytes_on_disk.ok_or("both backends know their size")?;
    log.say(&format!(
        "imported {} events' auth events in {}, compacted in {}; auth family {}, database {}",
        count(import.auth_events),
        dur(mx_import),
        dur(mx_compact),
        bytes(mx_auth),
        bytes(mx_total)
    ));
    let engine = mx::open(&db)?;
    let room_id = RoomId::parse(&room.id)?;

    // 4. The questions.
    let full_ids = parse(&full)?;
    let mut questions: Vec<Question> = Vec::new();

    // The auth chain of the full state; mxstate's first call loads the graph.
    let t = Instant::now();
    let cold = engine.auth_chain_unordered(&room_id, &full_ids, false)?;
    let mx_cold = t.elapsed();
    let (_, pg_answer) = pg_auth::auth_chain_ids(pg.client(), &full, false)?;
    let mx_answer = strings(&cold);
    if pg_answer != mx_answer {
        return Err(mismatch("auth chain of the full state", &pg_answer, &mx_answer).into());
    }
    let mut q = Question {
        label: format!("auth chain of the full state ({} events in)", count(full.len() as u64)),
        pg: Timings::default(),
        mx: Timings::default(),
        answer: pg_answer.len(),
    };
    for _ in 0..args.repeat {
        q.pg.push(pg_auth::auth_chain_ids(pg.client(), &full, false)?.0);
        let t = Instant::now();
        let r = engine.auth_chain_unordered(&room_id, &full_ids, false)?;
        q.mx.push(t.elapsed());
        drop(r);
    }
    q.say(&log, &format!(" (cold {})", dur(mx_cold)));
    questions.push(q);

    let mut conflict_size = 0usize;
    for (k, v21) in [(1usize, false), (100, false), (10_000, false), (50, true)] {
        let (other, taken) = room.earlier(k);
        let sets = vec![full.clone(), other];
        let sets_ids: Vec<Vec<EventId>> = sets.iter().map(|s| parse(s)).collect::<Res<_>>()?;
        let conflicted: Option<Vec<String>> = v21.then(|| {
            let a: HashSet<&String> = sets[0].iter().collect();
            let b: HashSet<&String> = sets[1].iter().collect();
            a.symmetric_difference(&b).map(|e| (*e).clone()).collect()
        });
        let conflicted_ids = conflicted.as_deref().map(parse).transpose()?;
        let (_, pg_answer) = pg_auth::auth_difference(pg.client(), &sets, conflicted.as_deref())?;
        let (_, mx_answer) = mx_difference(&engine, &room_id, &sets_ids, conflicted_ids.as_ref())?;
        if pg_answer.auth_difference != mx_answer.auth_difference {
            return Err(mismatch(
                &format!("auth difference, {taken} memberships"),
                &pg_answer.auth_difference,
                &mx_answer.auth_difference,
            )
            .into());
        }
        if let (Some(p), Some(m)) = (&pg_answer.conflicted_subgraph, &mx_answer.conflicted_subgraph) {
            if p != m {
                return Err(mismatch("conflicted subgraph", p, m).into());
            }
        }
        let label = match &conflicted {
            None => format!("auth difference, states {taken} membership events apart"),
            Some(c) => {
                conflict_size = c.len();
                format!(
                    "v2.1 auth difference and conflicted subgraph, {} conflicted events",
                    c.len()
                )
            }
        };
        let answer = pg_answer.auth_difference.len() + pg_answer.conflicted_subgraph.as_ref().map_or(0, HashSet::len);
        let mut q = Question {
            label,
            pg: Timings::default(),
            mx: Timings::default(),
            answer,
        };
        for _ in 0..args.repeat {
            q.pg.push(pg_auth::auth_difference(pg.client(), &sets, conflicted.as_deref())?.0);
            q.mx.push(mx_difference(&engine, &room_id, &sets_ids, conflicted_ids.as_ref())?.0);
        }
        q.say(&log, "");
        questions.push(q);
    }

    // 5. The report.
    let total = log.0.elapsed();
    let state_events = room.position.len() as u64;
    println!(
        "### Auth chains: {} members (compare_auth)\n",
        count(u64::from(args.members))
    );
    println!("command: `{}`  ", args.command());
    println!("machine: {machine}  ");
    println!("date: {date}; {pg_version}; total wall time {}  ", dur(total));
    println!(
        "room: {} state events, {} event_auth rows, {} chain links; full state {} events ({} memberships); v2.1 conflict {} events  ",
        count(state_events),
        count(summary.auth_rows),
        count(summary.chain_links),
        count(full.len() as u64),
        count(members as u64),
        conflict_size
    );
    println!(
        "every answer was checked equal on both sides; times are medians of {} runs; mxstate's first chain (graph load) took {}\n",
        args.repeat,
        dur(mx_cold)
    );
    let mut t = Table::default();
    for q in &questions {
        t.time(
            &format!("{}: {} events out", q.label, count(q.answer as u64)),
            q.pg.median(),
            q.mx.median(),
        );
    }
    t.size(
        "disk: event_auth + chain cover tables / `auth` family",
        pg_total,
        mx_auth,
    );
    t.size("disk: chain cover tables alone / `auth` family", pg_cover, mx_auth);
    t.text(
        "bytes per state event",
        format!("{:.1}", pg_total as f64 / state_events.max(1) as f64),
        format!("{:.1}", mx_auth as f64 / state_events.max(1) as f64),
        ratio(pg_total as f64, mx_auth as f64),
    );
    print!("{}", t.render());
    Ok(())
}
