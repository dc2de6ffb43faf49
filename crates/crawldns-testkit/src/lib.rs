//! Test support shared by the crawldns crates' tests and examples, instead
//! of `#[path]` includes. A dev-dependency only (`publish = false`).
//!
//! - [`fault_matrix`]: the scenarios of the fault matrix (RELIABILITY.md),
//!   one file per mechanism.
//! - [`hostile`]: a UDP server answering with the right header and question,
//!   then junk.
//! - [`hostile_tcp`]: a server whose UDP answers are truncated and whose
//!   TCP side misbehaves.
//! - [`spoof`]: an attacker on loopback (raw-socket spoofer and query
//!   sniffer), for the forgery tests; needs root.
//! - [`cli`]: running the `crawldns` binary as a child process against a
//!   testbed started in the test process.

pub mod cli;
pub mod fault_matrix;
pub mod hostile;
pub mod hostile_tcp;
pub mod spoof;
