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

/// Entries per batch handed from the reading thread to the command: one
/// wake-up of either side per batch, not per line (a line at a time, the
/// reader and the command woke each other for every entry once the
/// channel was full).
const BATCH: usize = 256;

/// Batches buffered between the reading thread and the command.
const CHANNEL: usize = 16;

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

/// The entries of an input, in input order, as the reading thread hands
/// them over.
pub struct Entries {
    batches: mpsc::Receiver<Vec<Entry>>,
    batch: std::vec::IntoIter<Entry>,
}

impl Entries {
    /// The next entry; `None` at the end of the input, or after a read
    /// error (then [`Reader::finish`] returns it). Cancel-safe: nothing is
    /// lost when the future is dropped before it completes.
    pub async fn recv(&mut self) -> Option<Entry> {
        loop {
            if let Some(entry) = self.batch.next() {
                return Some(entry);
            }
            // The only await: a batch received is stored before returning.
            self.batch = self.batches.recv().await?.into_iter();
        }
    }
}

/// An input being read.
pub struct Input {
    /// The entries, in input order.
    pub entries: Entries,
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
        let (tx, batches) = mpsc::channel(CHANNEL);
        let entries = Entries {
            batches,
            batch: Vec::new().into_iter(),
        };
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
    pub fn into_parts(self) -> (Entries, Reader) {
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

/// Reads lines and sends entries, in batches, until the end, a read error,
/// or the receiver going away (the command stopped early). A batch goes
/// when it is full or when the next line would need another read, so that
/// lines typed or piped slowly are not held back.
fn read_entries(reader: Box<dyn Read + Send>, tx: &mpsc::Sender<Vec<Entry>>) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut batch = Vec::with_capacity(BATCH);
    let send = |batch: &mut Vec<Entry>| {
        if batch.is_empty() {
            return true;
        }
        tx.blocking_send(std::mem::replace(batch, Vec::with_capacity(BATCH)))
            .is_ok()
    };
    loop {
        line.clear();
        let read = match reader.read_until(b'\n', &mut line) {
            Ok(read) => read,
            Err(e) => {
                // What was read before the error still counts.
                send(&mut batch);
                return Err(e);
            }
        };
        if read == 0 {
            send(&mut batch);
            return Ok(());
        }
        number += 1;
        if let Some(entry) = classify(number, &line) {
            batch.push(entry);
        }
        if (batch.len() >= BATCH || reader.buffer().is_empty()) && !send(&mut batch) {
            return Ok(());
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

    /// Yields `data`, then fails.
    struct FailsAfter(std::io::Cursor<Vec<u8>>);

    impl Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(io::Error::other("disk on fire")),
                n => Ok(n),
            }
        }
    }

    fn numbers(batches: &[Vec<Entry>]) -> Vec<u64> {
        batches
            .iter()
            .flatten()
            .map(|e| match e {
                Entry::Line { number, .. } | Entry::NotUtf8 { number, .. } => *number,
            })
            .collect()
    }

    #[test]
    fn lines_go_in_batches_in_order_and_a_read_error_keeps_what_came_before() {
        let text: String = (1..=1000).map(|i| format!("h{i}.test\n# skip\n")).collect();
        let (tx, mut rx) = mpsc::channel(CHANNEL);
        let reader = std::thread::spawn(move || {
            read_entries(Box::new(std::io::Cursor::new(text.into_bytes())), &tx)
        });
        let mut batches = Vec::new();
        while let Some(batch) = rx.blocking_recv() {
            batches.push(batch);
        }
        assert!(reader.join().unwrap().is_ok());
        assert_eq!(
            numbers(&batches),
            (1..=1000).map(|i| 2 * i - 1).collect::<Vec<_>>()
        );
        // 1,000 entries from one 64 KiB buffer: full batches, then the rest.
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [256, 256, 256, 232]);

        let (tx, mut rx) = mpsc::channel(CHANNEL);
        let failing = FailsAfter(std::io::Cursor::new(b"a.test\nb.test\n".to_vec()));
        let err = read_entries(Box::new(failing), &tx).unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
        drop(tx);
        let mut got = Vec::new();
        while let Some(batch) = rx.blocking_recv() {
            got.push(batch);
        }
        assert_eq!(numbers(&got), [1, 2]);
    }
}
