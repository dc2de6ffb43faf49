//! From answer to cache: decoded answers stored in a `cache::Cache` the way
//! the resolver stores them, and read back.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    crawldns_fuzz::answer_to_cache(data);
});
