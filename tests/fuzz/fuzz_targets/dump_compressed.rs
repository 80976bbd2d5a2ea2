//! Fuzz target `dump_compressed`: see `mxstate_fuzz_targets::dump_compressed`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mxstate_fuzz_targets::dump_compressed(data));
