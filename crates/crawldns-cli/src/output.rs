//! Where results go: stdout or a file (`-o FILE`), one line per result, and
//! the progress bar on stderr.
//!
//! Results are buffered when the output is a file or a pipe and written
//! line by line when it is a terminal. A failed write (a closed pipe, a
//! full disk) is an error the command reports and exits non-zero on, never
//! ignored; the final [`Output::finish`] flushes and reports the same way.
//! Only whole lines reach the output: when a write to a file fails, the
//! file is cut back to its last complete line, so every record in it stays
//! readable (and `--resume` carries on from there).

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Bytes buffered before a write.
const BUFFER: usize = 64 * 1024;

enum Target {
    Stdout(io::Stdout),
    /// A file and the length of its complete lines.
    File {
        file: File,
        committed: u64,
    },
}

/// Results on stdout or in a file.
pub struct Output {
    target: Target,
    /// What to call the target in messages: `stdout` or the path.
    name: String,
    buf: Vec<u8>,
    /// Flush after every line (stdout is a terminal).
    line_buffered: bool,
    progress: Progress,
}

impl Output {
    /// Writes to stdout, drawing `progress` around the lines.
    pub fn stdout(progress: Progress) -> Self {
        let stdout = io::stdout();
        let line_buffered = stdout.is_terminal();
        Self {
            target: Target::Stdout(stdout),
            name: "stdout".to_owned(),
            buf: Vec::with_capacity(BUFFER),
            line_buffered,
            progress,
        }
    }

    /// Writes to `path`: appended to (its complete lines kept) or created
    /// afresh. Fails at once if the file cannot be opened for writing.
    pub fn file(path: &Path, append: bool, progress: Progress) -> Result<Self> {
        let mut options = File::options();
        if append {
            options.append(true).create(true);
        } else {
            options.write(true).create(true).truncate(true);
        }
        let file = options
            .open(path)
            .with_context(|| format!("cannot write to {}", path.display()))?;
        let committed = file
            .metadata()
            .with_context(|| format!("cannot write to {}", path.display()))?
            .len();
        Ok(Self {
            target: Target::File { file, committed },
            name: path.display().to_string(),
            buf: Vec::with_capacity(BUFFER),
            line_buffered: false,
            progress,
        })
    }

    /// `stdout` or the file's path, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes one line (a newline is added).
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        self.buf.extend_from_slice(text.as_bytes());
        self.end_line()
    }

    /// Writes `value` as one line of JSON, encoded straight into the
    /// buffer (no string of its own). A value that cannot be encoded is an
    /// error and leaves nothing behind.
    pub fn json_line(&mut self, value: &impl serde::Serialize) -> Result<()> {
        let start = self.buf.len();
        if let Err(err) = serde_json::to_writer(&mut self.buf, value) {
            self.buf.truncate(start);
            return Err(err).context("cannot encode a record");
        }
        self.end_line()
            .with_context(|| format!("cannot write to {}", self.name))
    }

    /// Ends the line just buffered, and writes out what is buffered when
    /// it is due.
    fn end_line(&mut self) -> io::Result<()> {
        self.buf.push(b'\n');
        if self.line_buffered || self.buf.len() >= BUFFER {
            self.flush_lines()?;
        }
        Ok(())
    }

    /// Writes the buffered lines out now (a no-op when none are).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.flush_lines()
    }

    /// Writes the buffered lines out; on failure cuts a file back to its
    /// last complete line.
    fn flush_lines(&mut self) -> io::Result<()> {
        let buf = std::mem::take(&mut self.buf);
        let bar = self.progress.bar.clone();
        let line_buffered = self.line_buffered;
        let target = &mut self.target;
        let mut write = || -> io::Result<()> {
            match target {
                Target::Stdout(out) => {
                    out.write_all(&buf)?;
                    out.flush()
                }
                Target::File { file, committed } => write_whole_lines(file, committed, &buf),
            }
        };
        let written = match &bar {
            // Both on one terminal: take the bar away while the lines go out.
            Some(bar) if line_buffered => bar.suspend(write),
            _ => write(),
        };
        self.buf = buf;
        self.buf.clear();
        written
    }

    /// The progress bar.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Writes what is buffered and clears the progress bar.
    pub fn finish(&mut self) -> Result<()> {
        self.progress.finish();
        let name = self.name.clone();
        self.flush_lines()
            .with_context(|| format!("cannot write to {name}"))?;
        if let Target::File { file, .. } = &mut self.target {
            // Only a regular file can be synced: `-o /dev/null` (a device)
            // says EINVAL, and there is nothing to keep.
            if file.metadata().is_ok_and(|m| m.is_file()) {
                file.sync_data()
                    .with_context(|| format!("cannot write to {name}"))?;
            }
        }
        Ok(())
    }
}

/// Writes `buf` (whole lines) at the end of `file`, whose first
/// `committed` bytes are whole lines. When a write fails part-way, the
/// file is cut back to the last whole line written, which stays committed.
fn write_whole_lines(file: &mut File, committed: &mut u64, buf: &[u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let error = match file.write(&buf[done..]) {
            Ok(0) => io::Error::from(io::ErrorKind::WriteZero),
            Ok(n) => {
                done += n;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => e,
        };
        let whole = buf[..done]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |at| at + 1);
        *committed += whole as u64;
        let _ = file.set_len(*committed);
        return Err(error);
    }
    *committed += buf.len() as u64;
    Ok(())
}

/// A progress bar on stderr, drawn only when stderr is a terminal; a no-op
/// otherwise (and in tests).
#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar for `total` items (a spinner with a count when unknown), if
    /// stderr is a terminal.
    pub fn new(total: Option<u64>, what: &str) -> Self {
        if !io::stderr().is_terminal() {
            return Self::hidden();
        }
        let bar = match total {
            Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(&format!(
                        "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {what} ({{per_sec}}, eta {{eta}})"
                    ))
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner}} [{{elapsed_precise}}] {{pos}} {what} ({{per_sec}})"
                ))
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.enable_steady_tick(Duration::from_millis(120));
        Self { bar: Some(bar) }
    }

    /// No bar.
    pub fn hidden() -> Self {
        Self { bar: None }
    }

    /// One more item done.
    pub fn inc(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Prints a message on stderr without tearing the bar.
    pub fn eprintln(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `--format` of `resolve` and `fetch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line, with the input `line` number: for
    /// resolve: name, type, addresses, ttl, rcode, error, ms (and
    /// target/chain for CNAMEs, message for errors); for fetch: url,
    /// final_url, status, bytes, ms, error.
    Json,
    /// One line per result: resolve NAME TYPE RESULT ttl=TTL TIME; fetch
    /// URL STATUS BYTES ttfb=TIME total=TIME (or error=CLASS).
    Text,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_that_cannot_be_encoded_leaves_the_lines_before_it_whole() {
        let dir = std::env::temp_dir().join(format!("crawldns-output-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.jsonl");
        let mut out = Output::file(&path, false, Progress::hidden()).unwrap();
        out.json_line(&serde_json::json!({"line": 1})).unwrap();
        // A map whose keys are not strings has no JSON form; serde_json
        // finds out after writing the opening brace.
        let unencodable: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let err = out.json_line(&unencodable).unwrap_err();
        assert!(
            format!("{err:#}").starts_with("cannot encode a record: "),
            "{err:#}"
        );
        out.json_line(&serde_json::json!({"line": 2})).unwrap();
        out.finish().unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(written, "{\"line\":1}\n{\"line\":2}\n");
    }
}
