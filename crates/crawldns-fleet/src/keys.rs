//! The names of the fleet's Redis keys, all under one namespace.
//!
//! | key | type | holds |
//! |-----|------|-------|
//! | `NS:meta` | hash | `partitions`, `enqueued` (URLs ever enqueued), `enqueuers` (running) |
//! | `NS:seq` | string | the last URL id handed out |
//! | `NS:p:<i>` | stream | partition `i`'s URLs (`id`, `url`), consumer group `crawl` |
//! | `NS:leases` | hash | partition → `EXPIRES_MS OWNER` |
//! | `NS:workers` | hash | worker id → its stats (JSON) |
//! | `NS:results` | stream | results (`id`, `worker`, `class`, `line`) until collected |

/// The consumer group of every partition stream.
pub const GROUP: &str = "crawl";

/// Key names under a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    ns: String,
}

impl Keys {
    /// Keys under `namespace` (e.g. `crawldns`).
    pub fn new(namespace: &str) -> Self {
        Self {
            ns: namespace.to_owned(),
        }
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// Settings and counters.
    pub fn meta(&self) -> String {
        format!("{}:meta", self.ns)
    }

    /// The URL id counter.
    pub fn seq(&self) -> String {
        format!("{}:seq", self.ns)
    }

    /// Partition `p`'s stream.
    pub fn partition(&self, p: u32) -> String {
        format!("{}:p:{p}", self.ns)
    }

    /// The lease table.
    pub fn leases(&self) -> String {
        format!("{}:leases", self.ns)
    }

    /// Worker stats.
    pub fn workers(&self) -> String {
        format!("{}:workers", self.ns)
    }

    /// The result stream.
    pub fn results(&self) -> String {
        format!("{}:results", self.ns)
    }
}
