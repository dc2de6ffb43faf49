//! Where URLs come from and where records go: small traits, so a shared
//! frontier (e.g. a stream consumer group) can replace a file without
//! touching the fetch logic.

use crate::host_resolver::BoxFuture;
use crate::record::FetchRecord;

/// A source of URLs to fetch.
pub trait UrlSource: Send {
    /// The next URL, or `None` when the source is exhausted.
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
        let next = self.0.next();
        Box::pin(async move { next })
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
