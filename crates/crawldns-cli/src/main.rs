//! `crawldns`: DNS resolution and fetching for high-throughput crawlers.
//!
//! One module per subcommand (`testbed_cmd` for `crawldns testbed`); `main`
//! parses the command line, sets up logging and the Tokio runtime, runs the
//! subcommand and turns its error, if any, into a message and exit code 1.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod testbed_cmd;

/// DNS resolution and fetching for high-throughput crawlers.
///
/// Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) to see more than
/// warnings.
#[derive(Debug, Parser)]
#[command(name = "crawldns", version, about, long_about = None)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands, one module each.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the local testbed: an authoritative DNS server for the synthetic
    /// zone crawl.test and an HTTP host farm on 127.x.y.z, until Ctrl-C.
    Testbed(testbed_cmd::TestbedArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Testbed(args) => testbed_cmd::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", render_error(&e));
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings and errors).
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The error and its causes on one line, `outer: inner: …`, leaving out a
/// cause whose text the line already holds (library errors often repeat
/// their source in their own message).
fn render_error(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn repeated_causes_are_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "address in use");
        let error = anyhow::Error::new(io)
            .context("cannot bind 127.0.0.1:53: address in use")
            .context("starting the DNS server");
        assert_eq!(
            render_error(&error),
            "starting the DNS server: cannot bind 127.0.0.1:53: address in use"
        );
    }
}
