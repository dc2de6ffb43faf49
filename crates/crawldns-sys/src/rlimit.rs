//! The process's open-file limit (`RLIMIT_NOFILE`).

use std::io;

/// The soft open-file limit before and after [`raise_fd_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit found.
    pub before: u64,
    /// The soft limit now (the hard limit when raising worked).
    pub now: u64,
}

/// Raises the soft open-file limit to the hard one: a testbed farm holds one
/// listener per host, a resolver with a socket per query one per lookup in
/// flight. An error only means that many sockets may hit the limit.
pub fn raise_fd_limit() -> io::Result<FdLimit> {
    let limit = get()?;
    let before = limit.rlim_cur;
    if limit.rlim_cur >= limit.rlim_max {
        return Ok(FdLimit {
            before,
            now: before,
        });
    }
    let raised = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads one rlimit through a pointer to a live value.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(FdLimit {
        before,
        now: raised.rlim_cur,
    })
}

/// The soft open-file limit; `None` where it cannot be read.
pub fn open_file_limit() -> Option<u64> {
    get().ok().map(|l| l.rlim_cur)
}

fn get() -> io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a pointer to a live value.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_reaches_the_hard_limit() {
        let raised = raise_fd_limit().unwrap();
        assert!(raised.now >= raised.before);
        assert_eq!(open_file_limit(), Some(raised.now));
        assert_eq!(get().unwrap().rlim_max, raised.now);
    }
}
