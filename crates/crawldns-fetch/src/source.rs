//! Where URLs come from and where records go: small traits, so a shared
//! frontier (e.g. a stream consumer group) can replace a file without
//! touching the fetch logic.

use crate::host_resolver::BoxFuture;
use crate::record::FetchRecord;

/// A source of URLs to fetch.
pub trait UrlSource: Send {
    /// The next URL, or `None` when the source is exhausted. Must be
    /// cancel-safe: a call dropped before it completes loses no URL (as
    /// with a tokio channel's `recv`).
    fn next_url(&mut self) -> BoxFuture<'_, Option<String>>;
}

/// A sink for fetch records.
pub trait ResultSink: Send {
    /// Takes one record. An error stops the crawl.
    fn record(&mut self, record: FetchRecord) -> BoxFuture<'_, std::io::Result<()>>;
}

/// A `Vec` (or any iterator) is a source.
pub struct IterSource<I>(pub I);

impl<I: Iterator<Item = String> + Send> UrlSource for IterSource<I> {
    fn next_url(&mut self) -> BoxFuture<'_, Option<String>> {
        Box::pin(async move { self.0.next() })
    }
}

/// Collects records in memory.
#[derive(Debug, Default)]
pub struct VecSink(pub Vec<FetchRecord>);

impl ResultSink for VecSink {
    fn record(&mut self, record: FetchRecord) -> BoxFuture<'_, std::io::Result<()>> {
        self.0.push(record);
        Box::pin(async { Ok(()) })
    }
}
