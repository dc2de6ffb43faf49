//! A kernel setting raised for the length of a workload, and put back.
//!
//! knotd has no setting for its sockets' receive buffers, so they get
//! `net.core.rmem_default` (208 KiB on a stock kernel): at W1's rates the
//! kernel drops queries on its full buffer, and each drop costs the peer
//! that sent it a whole timeout. Raising the default while Knot opens its
//! sockets (as root) removes that noise from every peer alike.

use std::fs;
use std::path::{Path, PathBuf};

/// `net.core.rmem_default`.
pub const RMEM_DEFAULT: &str = "/proc/sys/net/core/rmem_default";

/// A numeric sysctl raised to at least some value; the old value is written
/// back on drop. (If the process is killed first, the raised value stays:
/// put it back with `sysctl -w`.)
#[derive(Debug)]
pub struct Raised {
    path: PathBuf,
    previous: u64,
    now: u64,
}

impl Raised {
    /// Raises the setting at `path` to `at_least`, unless it already is.
    /// `Ok(None)` when nothing needed changing; an error (with the reason)
    /// when it could not be read or written, e.g. without root.
    pub fn at_least(path: &Path, at_least: u64) -> Result<Option<Self>, String> {
        let previous = read(path)?;
        if previous >= at_least {
            return Ok(None);
        }
        fs::write(path, at_least.to_string())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(Some(Self {
            path: path.to_path_buf(),
            previous,
            now: read(path)?,
        }))
    }

    /// The value before.
    pub fn previous(&self) -> u64 {
        self.previous
    }

    /// The value while raised.
    pub fn now(&self) -> u64 {
        self.now
    }
}

impl Drop for Raised {
    fn drop(&mut self) {
        if let Err(e) = fs::write(&self.path, self.previous.to_string()) {
            eprintln!(
                "could not put {} back to {}: {e}",
                self.path.display(),
                self.previous
            );
        }
    }
}

fn read(path: &Path) -> Result<u64, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.trim()
        .parse()
        .map_err(|e| format!("{} holds {text:?}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_and_restores_a_value_and_leaves_a_higher_one() {
        let path = std::env::temp_dir().join(format!("crawldns-sysctl-{}", std::process::id()));
        fs::write(&path, "212992\n").unwrap();
        {
            let raised = Raised::at_least(&path, 8 << 20).unwrap().expect("raised");
            assert_eq!((raised.previous(), raised.now()), (212_992, 8 << 20));
            assert_eq!(read(&path).unwrap(), 8 << 20);
        }
        assert_eq!(read(&path).unwrap(), 212_992, "put back on drop");
        assert!(Raised::at_least(&path, 4096).unwrap().is_none());
        assert_eq!(read(&path).unwrap(), 212_992);
        fs::write(&path, "many").unwrap();
        assert!(Raised::at_least(&path, 4096).unwrap_err().contains("many"));
        fs::remove_file(&path).unwrap();
        assert!(Raised::at_least(&path, 4096).is_err());
    }
}
