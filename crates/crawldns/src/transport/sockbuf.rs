//! UDP receive buffers sized for bursts, and the kernel's per-socket drop
//! count: written once in `crawldns-sys` (the testbed uses them too).

pub use crawldns_sys::sockbuf::{size_recv_buffer, udp_drops};
