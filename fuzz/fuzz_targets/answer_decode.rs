//! Answer decoding: bytes → `wire::judge` → `answer::read`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = crawldns_fuzz::answer_decode(data);
});
