//! Point reads of the PostgreSQL backend, one call each, timed from the
//! client: `cargo run --release -p mxstate-benches --bin pg_reads -- URL`
//! on a database imported with `mxstate import --db URL DUMP`. For 200
//! keys of `event_groups` and of `strings` (present, then absent: each key
//! with a byte appended), the median of `get` and of a one-key
//! `multi_get`; then of `multi_get_families` with one absent key in each
//! of the two families (what a single store reads on PostgreSQL).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use mxstate_engine::kv::{Cf, KvStore};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed().as_secs_f64() * 1e6)
}

/// Every 20th of the family's first 4,000 keys.
fn sample_keys(kv: &dyn KvStore, cf: Cf) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    kv.scan_prefix(cf, &[], &mut |k, _| {
        keys.push(k.to_vec());
        Ok(keys.len() < 4000)
    })
    .unwrap();
    keys.into_iter().step_by(20).collect()
}

fn absent(keys: &[Vec<u8>]) -> Vec<Vec<u8>> {
    keys.iter()
        .map(|k| {
            let mut k = k.clone();
            k.push(0xff);
            k
        })
        .collect()
}

fn main() {
    let url = std::env::args()
        .nth(1)
        .expect("URL of an mxstate database on PostgreSQL");
    let kv = mxstate_postgres::PgKv::connect(&url, false, &mxstate_postgres::PgConfig::default()).unwrap();
    for cf in [Cf::EventGroups, Cf::Strings] {
        let present = sample_keys(&kv, cf);
        let missing = absent(&present);
        for (name, keys) in [("present", &present), ("absent", &missing)] {
            let (mut gets, mut multis) = (Vec::new(), Vec::new());
            for k in keys {
                let (a, t) = timed(|| kv.get(cf, k).unwrap());
                gets.push(t);
                let (b, t) = timed(|| kv.multi_get(cf, std::slice::from_ref(k)).unwrap());
                multis.push(t);
                assert_eq!(Some(&a), b.first(), "get and multi_get disagree");
            }
            println!(
                "{cf:?}, {name} ({} keys): get median {:.1} µs, one-key multi_get median {:.1} µs",
                keys.len(),
                median(gets),
                median(multis)
            );
        }
    }
    let (groups, strings) = (
        absent(&sample_keys(&kv, Cf::EventGroups)),
        absent(&sample_keys(&kv, Cf::Strings)),
    );
    let times: Vec<f64> = groups
        .iter()
        .zip(&strings)
        .map(|(g, s)| {
            let wanted = [(Cf::EventGroups, vec![g.clone()]), (Cf::Strings, vec![s.clone()])];
            timed(|| kv.multi_get_families(&wanted).unwrap()).1
        })
        .collect();
    println!(
        "multi_get_families, one absent key in each of two families ({} calls): median {:.1} µs",
        times.len(),
        median(times)
    );
}
