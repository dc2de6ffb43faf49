//! Operating-system helpers shared by the crawldns crates, written once.
//!
//! - [`sockbuf`]: UDP receive buffers sized for bursts, and the kernel's
//!   per-socket tables (`/proc/net/udp{,6}`: drops, local ports, inodes).
//! - [`rlimit`]: the open-file limit.
//! - [`process`]: samplers of this process (open descriptors, resident memory,
//!   socket inodes).
//! - [`gai`]: glibc `getaddrinfo`, one call, and a fixed pool of threads that
//!   makes those calls (the "system path" crawldns is compared with).
//! - [`bounded`]: a tokio `JoinSet` that holds at most N tasks at once.
//!
//! It depends on nothing of the resolver, so the testbed can use it too.

pub mod bounded;
pub mod gai;
pub mod process;
pub mod rlimit;
pub mod sockbuf;
