//! `crawldns`: DNS resolution and fetching for high-throughput crawlers.
//!
//! One module per subcommand (`resolve_cmd`, `fetch_cmd`, `fleet_cmd`, `testbed_cmd`,
//! `demo`, a folder: scenario, testbed, crawl, system path, report, plot),
//! plus what they share: `dns_args` (nameserver options), `input` (reading
//! a list), `output` (stdout and the progress bar), `stats` (hdrhistogram
//! percentiles), `metrics_http` (`--metrics-addr`), `netns` (for the demo). `main` parses the command line, sets
//! up logging and the Tokio runtime, runs the subcommand and turns its
//! outcome into an exit code (see [`EXIT_CODES`]).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod demo;
mod dns_args;
mod fetch_cmd;
mod fetch_tally;
mod fleet_cmd;
mod input;
mod metrics_http;
mod netns;
mod output;
mod rate;
mod records_json;
mod resolve_cmd;
mod resume;
mod shutdown;
mod stats;
mod testbed_cmd;

/// The exit codes, as `--help` shows them.
const EXIT_CODES: &str = "\
Exit codes:
  0  done, and every name resolved / every URL fetched without error
  1  stopped by an error: unreadable input, failed write to stdout, a
     resolver or server that could not start (the message says which)
  2  bad command line (unknown option, invalid value, no nameserver)
  3  done, but some names or URLs failed or some input lines were invalid
     (each is in the output; invalid lines are reported with their numbers)
  130  stopped by SIGINT or SIGTERM; every finished record was written
     (`-o FILE --resume` does the rest)";

/// How a command that ran to its end went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything succeeded: exit 0.
    Success,
    /// The run completed but some items failed: exit 3.
    SomeFailed,
    /// Stopped by SIGINT or SIGTERM, finished records written: exit 130.
    Interrupted,
}

/// An error in how the command was called: exit code 2, like clap's own.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// DNS resolution and fetching for high-throughput crawlers.
///
/// Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) to see more than
/// warnings.
#[derive(Debug, Parser)]
#[command(name = "crawldns", version, about, long_about = None, after_help = EXIT_CODES)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands, one module each.
#[derive(Debug, Subcommand)]
enum Command {
    /// Resolve a list of names (one per line, from FILE or stdin) with the
    /// crawldns resolver: JSON lines out, a summary on stderr.
    #[command(after_help = EXIT_CODES)]
    Resolve(resolve_cmd::ResolveArgs),

    /// Fetch a list of URLs (one per line, from FILE or stdin) under
    /// connection limits: one JSON record per URL, a summary on stderr.
    #[command(after_help = EXIT_CODES)]
    Fetch(fetch_cmd::FetchArgs),

    /// Compare the system resolver path with crawldns on a local testbed:
    /// crawl the same URLs twice, print a side-by-side table, write a plot.
    Demo(demo::DemoArgs),

    /// The demo's system-path crawl, run by `crawldns demo` inside its
    /// network namespace; prints its results as JSON.
    #[command(hide = true)]
    DemoSystemPath(demo::SystemPathArgs),

    /// Crawl with many workers sharing one frontier on Redis Streams:
    /// enqueue, work, status, collect.
    Fleet(fleet_cmd::FleetArgs),

    /// Run the local testbed: an authoritative DNS server for the synthetic
    /// zone crawl.test and an HTTP host farm on 127.x.y.z, until Ctrl-C.
    Testbed(testbed_cmd::TestbedArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    // Resolving is I/O: one thread does hundreds of thousands of lookups a
    // second, and a thread per CPU would spend more on waking each other
    // than on DNS (BENCHMARKS.md, "The CLI's cost"). Fetching decodes,
    // decompresses and encrypts: it gets a thread per CPU.
    let mut builder = match cli.command {
        Command::Resolve(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Resolve(args) => resolve_cmd::run(args).await,
            Command::Fetch(args) => fetch_cmd::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::DemoSystemPath(args) => demo::run_system_path(args).await,
            Command::Fleet(args) => fleet_cmd::run(args).await,
            Command::Testbed(args) => testbed_cmd::run(args).await.map(|()| Outcome::Success),
        }
    });
    // Tasks still running (e.g. a lingering background refresh) must not
    // hold the exit up.
    runtime.shutdown_background();
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::SomeFailed) => ExitCode::from(3),
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(e) => {
            eprintln!("error: {}", render_error(&e));
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings and errors).
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: logs sent to a file or a pipe
        // stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The error and its causes on one line, `outer: inner: …`, leaving out a
/// cause whose text the line already holds (library errors often repeat
/// their source in their own message).
pub fn render_error(error: &anyhow::Error) -> String {
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
