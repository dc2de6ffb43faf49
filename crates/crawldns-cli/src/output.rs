//! Where results go: stdout, one line per result, and the progress bar on
//! stderr.
//!
//! Results are buffered when stdout is a file or a pipe and written line by
//! line when it is a terminal. A failed write (a closed pipe, a full disk)
//! is an error the command reports and exits non-zero on, never ignored; the
//! final [`Output::finish`] flushes and reports the same way.

use std::io::{self, BufWriter, IsTerminal, Stdout, Write};
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Results on stdout.
pub struct Output {
    out: BufWriter<Stdout>,
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
            out: BufWriter::with_capacity(64 * 1024, stdout),
            line_buffered,
            progress,
        }
    }

    /// Writes one line (a newline is added).
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        let out = &mut self.out;
        let line_buffered = self.line_buffered;
        let mut write = || -> io::Result<()> {
            out.write_all(text.as_bytes())?;
            out.write_all(b"\n")?;
            if line_buffered {
                out.flush()?;
            }
            Ok(())
        };
        match &self.progress.bar {
            // Both on one terminal: take the bar away while the line goes out.
            Some(bar) if line_buffered => bar.suspend(write),
            _ => write(),
        }
    }

    /// The progress bar.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Flushes stdout and clears the progress bar.
    pub fn finish(&mut self) -> Result<()> {
        self.progress.finish();
        self.out.flush().context("cannot write to stdout")
    }
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
