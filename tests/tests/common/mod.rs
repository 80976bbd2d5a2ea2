//! Helpers shared by the property tests of this directory.

use proptest::prelude::ProptestConfig;
use proptest::test_runner::RngSeed;

/// Proptest settings: `cases` cases (unless `PROPTEST_CASES` says) from the
/// fixed `seed` (unless `PROPTEST_RNG_SEED` names one); no regression files
/// (the seed replays a failure).
pub fn proptest_config(cases: u32, seed: u64) -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    if c.rng_seed == RngSeed::Random {
        c.rng_seed = RngSeed::Fixed(seed);
    }
    c.failure_persistence = None;
    eprintln!(
        "proptest seed {}, {} cases (PROPTEST_RNG_SEED, PROPTEST_CASES)",
        c.rng_seed, c.cases
    );
    c
}
