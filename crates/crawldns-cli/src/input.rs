//! Reading the list a command works through: one entry a line, from a file
//! or stdin, read on a thread of its own and handed over as it comes, so a
//! long list streams instead of being loaded first.
//!
//! Surrounding whitespace is trimmed; empty lines and lines starting with
//! `#` are skipped. Line numbers count every line of the input, skipped ones
//! included, starting at 1, as an editor shows them.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tokio::sync::mpsc;

/// Entries buffered between the reading thread and the command.
const CHANNEL: usize = 4096;

/// One entry of the input.
#[derive(Debug)]
pub enum Entry {
    /// A line to work on.
    Line {
        /// Its line number (from 1).
        number: u64,
        /// Its text, trimmed.
        text: String,
    },
    /// A line that is not UTF-8 (reported as invalid, not worked on).
    NotUtf8 {
        /// Its line number.
        number: u64,
        /// Its text with invalid bytes replaced, trimmed, for messages.
        lossy: String,
    },
}

/// Where the list comes from: a path, or stdin for none or `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Source {
    /// `None` and `-` mean stdin.
    pub fn from_arg(arg: Option<&Path>) -> Self {
        match arg {
            None => Self::Stdin,
            Some(path) if path.as_os_str() == "-" => Self::Stdin,
            Some(path) => Self::File(path.to_path_buf()),
        }
    }

    /// How the source is named in messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Stdin => "stdin".to_owned(),
            Self::File(path) => path.display().to_string(),
        }
    }
}

/// An input being read.
pub struct Input {
    /// The entries, in input order. The channel closes at the end of the
    /// input, or after a read error (then [`Input::finish`] returns it).
    pub entries: mpsc::Receiver<Entry>,
    /// How many entries there are, when it was asked for and could be
    /// known in advance (a regular file).
    pub total: Option<u64>,
    reader: std::thread::JoinHandle<io::Result<()>>,
    source: Source,
}

impl Input {
    /// Opens `source` and starts reading it. A file that cannot be opened
    /// (missing, unreadable, a directory) is an error here, before anything
    /// else happens. With `count`, a regular file is read once first to
    /// count its entries (for a progress bar).
    pub fn open(source: Source, count: bool) -> Result<Self> {
        let (reader, total): (Box<dyn Read + Send>, Option<u64>) = match &source {
            Source::Stdin => {
                if io::stdin().is_terminal() {
                    eprintln!("reading from stdin, one entry per line (Ctrl-D ends the list)");
                }
                (Box::new(io::stdin()), None)
            }
            Source::File(path) => {
                let file = open_file(path)?;
                let total = if count {
                    Some(
                        count_entries(open_file(path)?)
                            .with_context(|| format!("cannot read {}", path.display()))?,
                    )
                } else {
                    None
                };
                (Box::new(file), total)
            }
        };
        let (tx, entries) = mpsc::channel(CHANNEL);
        let reader = std::thread::Builder::new()
            .name("input".into())
            .spawn(move || read_entries(reader, &tx))
            .context("cannot start the input reader thread")?;
        Ok(Self {
            entries,
            total,
            reader,
            source,
        })
    }

    /// The entries, and what [`Reader::finish`] needs once they ran out.
    pub fn into_parts(self) -> (mpsc::Receiver<Entry>, Reader) {
        (
            self.entries,
            Reader {
                reader: self.reader,
                source: self.source,
            },
        )
    }
}

/// The thread reading an input.
pub struct Reader {
    reader: std::thread::JoinHandle<io::Result<()>>,
    source: Source,
}

impl Reader {
    /// After the entries ran out: the read error that ended them, if any.
    pub fn finish(self) -> Result<()> {
        let what = self.source.describe();
        match self.reader.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e).with_context(|| format!("cannot read {what}")),
            Err(_) => bail!("the thread reading {what} panicked"),
        }
    }
}

/// Opens a file for reading, refusing directories with a clear message.
fn open_file(path: &Path) -> Result<File> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        bail!("cannot read {}: it is a directory", path.display());
    }
    Ok(file)
}

/// What a raw line is: skipped, an entry, or not UTF-8.
fn classify(number: u64, raw: &[u8]) -> Option<Entry> {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    match std::str::from_utf8(raw) {
        Ok(text) => {
            let text = text.trim();
            if text.is_empty() || text.starts_with('#') {
                None
            } else {
                Some(Entry::Line {
                    number,
                    text: text.to_owned(),
                })
            }
        }
        Err(_) => Some(Entry::NotUtf8 {
            number,
            lossy: String::from_utf8_lossy(raw).trim().to_owned(),
        }),
    }
}

/// Reads lines and sends entries until the end, a read error, or the
/// receiver going away (the command stopped early).
fn read_entries(reader: Box<dyn Read + Send>, tx: &mpsc::Sender<Entry>) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        if let Some(entry) = classify(number, &line) {
            if tx.blocking_send(entry).is_err() {
                return Ok(());
            }
        }
    }
}

/// Counts the entries `classify` would yield.
fn count_entries(file: File) -> io::Result<u64> {
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut line = Vec::new();
    let mut count = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(count);
        }
        count += u64::from(classify(0, &line).is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_trimmed_and_comments_skipped() {
        assert!(classify(1, b"\n").is_none());
        assert!(classify(1, b"   \r\n").is_none());
        assert!(classify(1, b"# a comment\n").is_none());
        match classify(7, b"  h1.crawl.test \r\n") {
            Some(Entry::Line { number, text }) => {
                assert_eq!(number, 7);
                assert_eq!(text, "h1.crawl.test");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(3, b"caf\xe9.test\n"),
            Some(Entry::NotUtf8 { number: 3, .. })
        ));
    }

    #[test]
    fn stdin_is_none_or_dash() {
        assert_eq!(Source::from_arg(None), Source::Stdin);
        assert_eq!(Source::from_arg(Some(Path::new("-"))), Source::Stdin);
        assert_eq!(
            Source::from_arg(Some(Path::new("names.txt"))),
            Source::File("names.txt".into())
        );
    }
}
