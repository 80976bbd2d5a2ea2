//! Fuzz target `dump_copy`: see `mxstate_fuzz_targets::dump_copy`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mxstate_fuzz_targets::dump_copy(data));
