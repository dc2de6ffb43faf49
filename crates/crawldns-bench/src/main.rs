//! `crawldns-bench`: see the library's documentation.

fn main() -> anyhow::Result<()> {
    crawldns_bench::cli::main()
}
