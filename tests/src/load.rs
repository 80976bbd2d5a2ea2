//! A load of many clients on one store, every answer checked against what
//! the writers acknowledged: writers extend chains in their own rooms and
//! map events, readers ask for full states, one key, one type, all but one
//! type, event groups and deltas of acknowledged groups (a group's state
//! never changes once stored). Latencies per request shape.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mxstate_api::{EventId, GroupId, RoomId, StateFilter, StateKey, StateMap, StateStore};

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub clients: usize,
    /// Of the clients, how many write.
    pub writers: usize,
    pub duration: Duration,
    pub seed: u64,
}

/// Figures of one request shape.
#[derive(Debug, Clone)]
pub struct ShapeFigures {
    pub name: &'static str,
    pub requests: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

/// What a load run measured and found.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub requests: u64,
    pub secs: f64,
    pub shapes: Vec<ShapeFigures>,
    /// Answers compared with the model.
    pub checked: u64,
    /// Wrong answers and errors (the first few).
    pub failures: Vec<String>,
    pub failures_total: u64,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} requests in {:.1} s: {:.0} requests/s; {} answers checked, {} wrong or failed",
            self.requests,
            self.secs,
            self.requests as f64 / self.secs,
            self.checked,
            self.failures_total
        )?;
        writeln!(f, "| shape | requests | p50 µs | p99 µs |")?;
        writeln!(f, "|---|---:|---:|---:|")?;
        for s in &self.shapes {
            writeln!(f, "| {} | {} | {} | {} |", s.name, s.requests, s.p50_us, s.p99_us)?;
        }
        Ok(())
    }
}

/// A splitmix64 generator: deterministic per seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// An acknowledged group: its state, and an event mapped to it.
#[derive(Clone)]
struct Known {
    group: GroupId,
    state: Arc<StateMap>,
    event: Option<EventId>,
}

const RING: usize = 4096;
const MEMBERS: u64 = 64;
const SHAPES: [&str; 7] = [
    "store",
    "full",
    "one_key",
    "one_type",
    "all_but_members",
    "event_group",
    "delta",
];

#[derive(Default)]
struct Tally {
    lat: BTreeMap<&'static str, Vec<u32>>,
    checked: u64,
    failures: Vec<String>,
    failures_total: u64,
}

impl Tally {
    fn time(&mut self, shape: &'static str, t: Instant) {
        let us = u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX);
        self.lat.entry(shape).or_default().push(us);
    }
    fn fail(&mut self, what: String) {
        self.failures_total += 1;
        if self.failures.len() < 10 {
            self.failures.push(what);
        }
    }
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        self.checked += 1;
        if !ok {
            self.fail(what());
        }
    }
}

fn member(n: u64) -> StateKey {
    StateKey::new("m.room.member", format!("@u{n}:load")).expect("a valid key")
}

fn event(w: usize, n: u64) -> EventId {
    EventId::parse(format!("$w{w}e{n}")).expect("a valid event id")
}

/// Runs the load: `make` gives each client its own store (connection).
pub async fn run_load(make: impl Fn() -> Arc<dyn StateStore>, cfg: &LoadConfig) -> LoadReport {
    let ring: Arc<Mutex<Vec<Known>>> = Arc::default();
    let deadline = Instant::now() + cfg.duration;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..cfg.clients {
        let store = make();
        let ring = ring.clone();
        let writer = c < cfg.writers.max(1);
        let mut rng = Rng(cfg.seed ^ (c as u64).wrapping_mul(0x1234_5678_9abc_def1));
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            if writer {
                write_loop(&*store, c, &ring, deadline, &mut t).await;
            } else {
                read_loop(&*store, &ring, deadline, &mut rng, &mut t).await;
            }
            t
        }));
    }
    let mut all = Tally::default();
    for task in tasks {
        match task.await {
            Ok(t) => {
                for (k, v) in t.lat {
                    all.lat.entry(k).or_default().extend(v);
                }
                all.checked += t.checked;
                all.failures_total += t.failures_total;
                for f in t.failures {
                    if all.failures.len() < 10 {
                        all.failures.push(f);
                    }
                }
            }
            Err(e) => all.fail(format!("client task failed: {e}")),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let mut shapes = Vec::new();
    let mut requests = 0;
    for name in SHAPES {
        let mut v = all.lat.remove(name).unwrap_or_default();
        v.sort_unstable();
        let q = |p: f64| {
            v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
                .copied()
        };
        requests += v.len() as u64;
        shapes.push(ShapeFigures {
            name,
            requests: v.len() as u64,
            p50_us: u64::from(q(0.5).unwrap_or(0)),
            p99_us: u64::from(q(0.99).unwrap_or(0)),
        });
    }
    LoadReport {
        requests,
        secs,
        shapes,
        checked: all.checked,
        failures: all.failures,
        failures_total: all.failures_total,
    }
}

async fn write_loop(store: &dyn StateStore, w: usize, ring: &Mutex<Vec<Known>>, deadline: Instant, t: &mut Tally) {
    let room = RoomId::parse(format!("!load{w}:x")).expect("a valid room id");
    let mut state: StateMap = [
        (StateKey::new("m.room.create", "").expect("key"), event(w, 0)),
        (StateKey::new("m.room.power_levels", "").expect("key"), event(w, 1)),
    ]
    .into_iter()
    .collect();
    let t0 = Instant::now();
    let mut prev = match store
        .store_state_group(event(w, 1), room.clone(), None, None, state.clone())
        .await
    {
        Ok(g) => g,
        Err(e) => return t.fail(format!("writer {w}: root: {e}")),
    };
    t.time("store", t0);
    let mut n = 2u64;
    while Instant::now() < deadline {
        let key = member(n % MEMBERS);
        let ev = event(w, n);
        let t0 = Instant::now();
        let stored = store
            .store_state_group(
                ev.clone(),
                room.clone(),
                Some(prev),
                Some([(key.clone(), Some(ev.clone()))].into()),
                StateMap::default(),
            )
            .await;
        t.time("store", t0);
        let g = match stored {
            Ok(g) => g,
            Err(e) => {
                t.fail(format!("writer {w}: store: {e}"));
                continue;
            }
        };
        state.insert(key, ev.clone());
        let mapped = if n.is_multiple_of(4) {
            match store.set_state_groups_for_events(vec![(ev.clone(), g)]).await {
                Ok(()) => Some(ev),
                Err(e) => {
                    t.fail(format!("writer {w}: map: {e}"));
                    None
                }
            }
        } else {
            None
        };
        let known = Known {
            group: g,
            state: Arc::new(state.clone()),
            event: mapped,
        };
        if let Ok(mut r) = ring.lock() {
            if r.len() < RING {
                r.push(known);
            } else {
                let i = (n as usize).wrapping_mul(2_654_435_761) % RING;
                if let Some(slot) = r.get_mut(i) {
                    *slot = known;
                }
            }
        }
        prev = g;
        n += 1;
    }
}

async fn read_loop(store: &dyn StateStore, ring: &Mutex<Vec<Known>>, deadline: Instant, rng: &mut Rng, t: &mut Tally) {
    while Instant::now() < deadline {
        let pick = ring.lock().ok().and_then(|r| {
            let n = r.len() as u64;
            (n > 0).then(|| r.get(rng.below(n) as usize).cloned()).flatten()
        });
        let Some(k) = pick else {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        let g = k.group;
        let shape = rng.below(6);
        let t0 = Instant::now();
        match shape {
            0 => {
                let r = store.state_for_groups(vec![g], StateFilter::all()).await;
                t.time("full", t0);
                match r {
                    Ok(m) => t.check(m.get(&g) == Some(&*k.state), || format!("full state of {g} differs")),
                    Err(e) => t.fail(format!("full {g}: {e}")),
                }
            }
            1 => {
                let key = member(rng.below(MEMBERS));
                let f = StateFilter::from_types([(key.event_type(), Some(key.state_key()))]);
                let r = store.state_for_groups(vec![g], f).await;
                t.time("one_key", t0);
                let want: StateMap = k
                    .state
                    .get(&key)
                    .map(|e| (key.clone(), e.clone()))
                    .into_iter()
                    .collect();
                match r {
                    Ok(m) => t.check(m.get(&g) == Some(&want), || format!("one key of {g} differs")),
                    Err(e) => t.fail(format!("one key {g}: {e}")),
                }
            }
            2 => {
                let f = StateFilter::from_types([("m.room.member", None)]);
                let r = store.state_for_groups(vec![g], f).await;
                t.time("one_type", t0);
                let want: StateMap = k
                    .state
                    .iter()
                    .filter(|(s, _)| s.event_type() == "m.room.member")
                    .map(|(s, e)| (s.clone(), e.clone()))
                    .collect();
                match r {
                    Ok(m) => t.check(m.get(&g) == Some(&want), || format!("members of {g} differ")),
                    Err(e) => t.fail(format!("one type {g}: {e}")),
                }
            }
            3 => {
                let r = store
                    .state_for_groups(vec![g], StateFilter::all_except_types(["m.room.member"]))
                    .await;
                t.time("all_but_members", t0);
                let want: StateMap = k
                    .state
                    .iter()
                    .filter(|(s, _)| s.event_type() != "m.room.member")
                    .map(|(s, e)| (s.clone(), e.clone()))
                    .collect();
                match r {
                    Ok(m) => t.check(m.get(&g) == Some(&want), || format!("non-members of {g} differ")),
                    Err(e) => t.fail(format!("all but members {g}: {e}")),
                }
            }
            4 => {
                let Some(ev) = k.event else { continue };
                let r = store.state_groups_for_events(vec![ev.clone()]).await;
                t.time("event_group", t0);
                match r {
                    Ok(m) => t.check(m.get(&ev) == Some(&g), || format!("event {ev} maps elsewhere")),
                    Err(e) => t.fail(format!("event group {ev}: {e}")),
                }
            }
            _ => {
                let r = store.state_group_delta(g).await;
                t.time("delta", t0);
                match r {
                    Ok(d) => t.check(d.is_some_and(|d| d.delta.len() == 1), || {
                        format!("delta of {g} differs")
                    }),
                    Err(e) => t.fail(format!("delta {g}: {e}")),
                }
            }
        }
    }
}
