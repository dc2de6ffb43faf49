//! Records the versions of the peers' crates (from the workspace's
//! Cargo.lock) and of rustc, for the report.

use std::path::Path;
use std::process::Command;

fn locked_version(lock: &str, name: &str) -> String {
    let needle = format!("name = \"{name}\"\n");
    lock.split("[[package]]")
        .find(|block| block.contains(&needle))
        .and_then(|block| {
            block
                .lines()
                .find_map(|l| l.strip_prefix("version = \""))
                .map(|v| v.trim_end_matches('"').to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let lock_path = Path::new(&manifest).join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock_path.display());
    let lock = std::fs::read_to_string(&lock_path).unwrap_or_default();
    for (env, name) in [
        ("BENCH_HICKORY_VERSION", "hickory-resolver"),
        ("BENCH_CARES_RESOLVER_VERSION", "c-ares-resolver"),
        ("BENCH_CARES_SYS_VERSION", "c-ares-sys"),
        ("BENCH_TOKIO_VERSION", "tokio"),
    ] {
        println!("cargo:rustc-env={env}={}", locked_version(&lock, name));
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BENCH_RUSTC_VERSION={version}");
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=BENCH_PROFILE={profile}");
    println!("cargo:rerun-if-env-changed=CRAWLDNS_BENCH_REV");
}
