//! The network namespace in which `crawldns demo` runs the system path, so
//! that glibc's `getaddrinfo` asks the testbed and nothing else. The
//! mechanism is [`crawldns_testbed::netns`]; this adds the demo's naming and
//! how its child is started and recognised.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context, Result};
use crawldns_testbed::netns::GlibcNamespace;

/// Prefix of the namespaces' names (`crawldns-demo-<pid>`).
const PREFIX: &str = "crawldns-demo-";

/// Set in the child's environment to its namespace's name.
pub const ENV: &str = "CRAWLDNS_DEMO_NETNS";

/// Where glibc is pointed inside the namespace.
pub const SERVER: SocketAddr = crawldns_testbed::netns::GLIBC_SERVER;

pub use crawldns_testbed::netns::unavailable;

/// The demo's namespace; removed on drop.
#[derive(Debug)]
pub struct Namespace {
    inner: GlibcNamespace,
}

impl Namespace {
    /// Creates `crawldns-demo-<pid>`, after removing leftovers of earlier
    /// runs whose process is gone.
    pub fn create() -> Result<Self> {
        Ok(Self {
            inner: GlibcNamespace::create(PREFIX)?,
        })
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// `ip netns exec NAME PROGRAM ARGS`, with [`ENV`] set for the child.
    pub fn command(&self, program: &Path, args: &[String]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("ip");
        command
            .args(self.inner.exec_args())
            .arg(program)
            .args(args)
            .env(ENV, self.inner.name());
        command
    }
}

/// Refuses unless this process is the demo's child inside its namespace,
/// where the system resolver cannot reach anything but the testbed.
pub fn check_isolated() -> Result<()> {
    let Ok(name) = std::env::var(ENV) else {
        bail!("this command only runs inside `crawldns demo`'s network namespace");
    };
    if !name.starts_with(PREFIX) {
        bail!("unexpected namespace name {name:?}");
    }
    crawldns_testbed::netns::check_isolated()
        .map_err(anyhow::Error::msg)
        .context("not inside the demo's namespace")
}
