#![no_main]

// The body lives in targets/, shared with tests/fuzz_corpus_replay.rs.
#[path = "../targets/unpack_layer.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
