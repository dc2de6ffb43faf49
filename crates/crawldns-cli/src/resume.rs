//! `-o FILE`, `--resume` and `--grace-ms`, shared by `resolve` and
//! `fetch`: where the JSON lines go, and carrying on a run that was
//! stopped.
//!
//! With `--resume`, the records already in FILE are read first: each
//! names the input it was made for (its key: the URL for `fetch`, the name
//! and type for `resolve`), and each input is skipped as many times as it
//! is recorded, so a list with repeated entries still gets every entry
//! done exactly once. A last line without its newline (a run killed
//! mid-write) is cut off and its input done again. New records are
//! appended.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::output::{Output, Progress};
use crate::shutdown::{Shutdown, DEFAULT_GRACE};

/// Output and stop options.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Output and stopping")]
pub struct RunArgs {
    /// Write the JSON lines to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Skip every input already recorded in the -o FILE and append the
    /// rest (for a run that was stopped or crashed).
    #[arg(long, requires = "output")]
    pub resume: bool,

    /// After SIGINT or SIGTERM, how long work in flight may take to finish,
    /// in milliseconds (a second signal stops at once). Then every finished
    /// record is written, the summary printed, and the exit code is 130.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_GRACE.as_millis() as u64)]
    pub grace_ms: u64,
}

impl RunArgs {
    /// Installs the signal handlers.
    pub fn shutdown(&self) -> Result<Shutdown> {
        Shutdown::install(Duration::from_millis(self.grace_ms))
    }

    /// Opens the output (stdout, or FILE created or resumed) and reads what
    /// FILE already holds when resuming; `key` names the input of a record.
    pub fn open(
        &self,
        progress: Progress,
        key: fn(&serde_json::Value) -> Option<String>,
    ) -> Result<(Output, Done)> {
        let Some(path) = &self.output else {
            return Ok((Output::stdout(progress), Done::default()));
        };
        if !self.resume {
            return Ok((Output::file(path, false, progress)?, Done::default()));
        }
        let done = read_done(path, key)?;
        Ok((Output::file(path, true, progress)?, done))
    }
}

/// Inputs already recorded, with how many times each.
#[derive(Debug, Default)]
pub struct Done {
    counts: HashMap<String, u32>,
    /// Records found in the file.
    pub recorded: u64,
    /// Inputs skipped so far.
    pub skipped: u64,
}

impl Done {
    /// Whether no input is left to skip (always so without --resume): a
    /// caller can then skip making keys.
    pub fn is_empty(&self) -> bool {
        self.recorded == self.skipped
    }

    /// True (and counted) if `key` is recorded and not yet skipped as often
    /// as it is recorded.
    pub fn take(&mut self, key: &str) -> bool {
        match self.counts.get_mut(key) {
            Some(n) if *n > 0 => {
                *n -= 1;
                self.skipped += 1;
                true
            }
            _ => false,
        }
    }
}

/// Reads the records of `path` (missing: none), cutting off a partial last
/// line.
fn read_done(path: &Path, key: fn(&serde_json::Value) -> Option<String>) -> Result<Done> {
    let mut done = Done::default();
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(done),
        Err(e) => return Err(e).with_context(|| format!("cannot resume from {}", path.display())),
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut complete = 0u64;
    let mut number = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot resume from {}", path.display()))?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.last() != Some(&b'\n') {
            eprintln!(
                "{}: line {number} is incomplete (the run was cut off mid-write); it is dropped and its input done again",
                path.display()
            );
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(complete))
                .with_context(|| {
                    format!("cannot cut the partial last line of {}", path.display())
                })?;
            break;
        }
        complete += n as u64;
        let Some(name) = serde_json::from_slice::<serde_json::Value>(&line)
            .ok()
            .as_ref()
            .and_then(key)
        else {
            bail!(
                "cannot resume from {}: line {number} is not a record of this command",
                path.display()
            );
        };
        *done.counts.entry(name).or_default() += 1;
        done.recorded += 1;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_key(v: &serde_json::Value) -> Option<String> {
        v.get("url")?.as_str().map(str::to_owned)
    }

    #[test]
    fn repeated_inputs_are_skipped_as_often_as_recorded_and_a_cut_line_is_dropped() {
        let path = std::env::temp_dir().join(format!("crawldns-resume-{}", std::process::id()));
        std::fs::write(
            &path,
            "{\"url\":\"a\"}\n{\"url\":\"b\"}\n{\"url\":\"a\"}\n{\"url\":\"c\"",
        )
        .unwrap();
        let mut done = read_done(&path, url_key).unwrap();
        assert_eq!(done.recorded, 3);
        assert!(done.take("a") && done.take("a") && !done.take("a"));
        assert!(done.take("b") && !done.take("b"));
        assert!(!done.take("c"), "the cut-off record does not count");
        assert_eq!(done.skipped, 3);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"url\":\"a\"}\n{\"url\":\"b\"}\n{\"url\":\"a\"}\n"
        );
        std::fs::write(&path, "{\"url\":\"a\"}\nnot json\n").unwrap();
        let err = read_done(&path, url_key).unwrap_err().to_string();
        assert!(err.contains("line 2 is not a record"), "{err}");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(read_done(&path, url_key).unwrap().recorded, 0);
    }
}
