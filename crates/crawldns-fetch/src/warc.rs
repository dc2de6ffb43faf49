//! WARC 1.1 output (ISO 28500), the format web archives and crawl
//! processing tools read: a `warcinfo` record first, then a `request` and a
//! `response` record per fetched page, each its own gzip member (so a
//! `.warc.gz` can be read from any record's offset).
//!
//! The response record's block is the response as HTTP/1.1 text (status
//! line, headers without `Transfer-Encoding` since the transfer coding was
//! undone, the payload as the server sent it, content encoding included).
//! `WARC-Block-Digest` is the SHA-1 of that block, `WARC-Payload-Digest`
//! the SHA-1 of the payload, both `sha1:` and base32 as is customary.
//! Fetches that got no complete response (DNS, connect, timeout, body
//! errors) are not archived: they stay in the JSON lines.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use data_encoding::BASE32;
use flate2::write::GzEncoder;
use flate2::Compression;
use sha1::{Digest, Sha1};

use crate::record::{ErrorClass, FetchRecord};

/// Writes a `.warc.gz` file.
#[derive(Debug)]
pub struct WarcWriter {
    file: File,
    /// Length of the file's complete records.
    committed: u64,
    /// Response records written.
    responses: u64,
}

/// Why a fetch was not archived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// No complete response: the fetch failed before or during the body.
    NoResponse,
    /// The body was decoded and the bytes as sent were not kept
    /// ([`crate::FetcherConfig::keep_wire_body`]).
    NoPayload,
}

impl WarcWriter {
    /// Creates (or truncates) `path` and writes the `warcinfo` record;
    /// fails at once if the file cannot be written.
    pub fn create(path: &Path, software: &str) -> io::Result<Self> {
        let file = File::create(path)?;
        let mut writer = Self {
            file,
            committed: 0,
            responses: 0,
        };
        let info = format!(
            "software: {software}\r\nformat: WARC File Format 1.1\r\nconformsTo: https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/\r\n"
        );
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let mut headers = vec![("WARC-Type", "warcinfo".to_owned())];
        if let Some(name) = name {
            headers.push(("WARC-Filename", name));
        }
        headers.push(("Content-Type", "application/warc-fields".to_owned()));
        let record = record_bytes(&headers, info.as_bytes(), new_record_id(), now());
        writer.append(&[record])?;
        Ok(writer)
    }

    /// Response records written so far.
    pub fn responses(&self) -> u64 {
        self.responses
    }

    /// Archives the request and response of `record` (from
    /// [`crate::Fetcher::fetch`], which keeps the response). Returns
    /// `Ok(Err(why))` for a fetch that is not archived.
    pub fn write(&mut self, record: &FetchRecord) -> io::Result<Result<(), Skipped>> {
        let complete = matches!(
            record.error.as_ref().map(|e| e.class),
            None | Some(ErrorClass::HttpStatus(_))
        );
        let Some(response) = record.response.as_ref().filter(|_| complete) else {
            return Ok(Err(Skipped::NoResponse));
        };
        let (Some(payload), Some(block)) = (response.payload(), response.raw()) else {
            return Ok(Err(Skipped::NoPayload));
        };
        let date = now();
        let response_id = new_record_id();
        let request_id = new_record_id();
        let ip = response.head.remote_addr.map(|a| a.ip().to_string());

        let mut headers = vec![
            ("WARC-Type", "response".to_owned()),
            ("WARC-Target-URI", record.final_url.clone()),
        ];
        if let Some(ip) = &ip {
            headers.push(("WARC-IP-Address", ip.clone()));
        }
        headers.push((
            "Content-Type",
            "application/http;msgtype=response".to_owned(),
        ));
        headers.push(("WARC-Payload-Digest", sha1_label(payload)));
        let response_bytes = record_bytes(&headers, &block, response_id.clone(), date.clone());

        let mut headers = vec![
            ("WARC-Type", "request".to_owned()),
            ("WARC-Target-URI", record.final_url.clone()),
            ("WARC-Concurrent-To", response_id),
        ];
        if let Some(ip) = ip {
            headers.push(("WARC-IP-Address", ip));
        }
        headers.push((
            "Content-Type",
            "application/http;msgtype=request".to_owned(),
        ));
        let request_bytes = record_bytes(&headers, &response.head.request, request_id, date);

        self.append(&[request_bytes, response_bytes])?;
        self.responses += 1;
        Ok(Ok(()))
    }

    /// Flushes the file to disk.
    pub fn finish(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.file.sync_data()
    }

    /// Appends gzip members; on a failed write cuts the file back to its
    /// last complete record, so what was written stays readable.
    fn append(&mut self, members: &[Vec<u8>]) -> io::Result<()> {
        for member in members {
            if let Err(e) = self.file.write_all(member) {
                let _ = self.file.set_len(self.committed);
                return Err(e);
            }
            self.committed += member.len() as u64;
        }
        Ok(())
    }
}

/// One record, gzipped: the WARC header (with Record-ID, Date,
/// Block-Digest and Content-Length added), the block, and two CRLFs.
fn record_bytes(headers: &[(&str, String)], block: &[u8], id: String, date: String) -> Vec<u8> {
    let mut text = String::from("WARC/1.1\r\n");
    let mut push = |name: &str, value: &str| {
        text.push_str(name);
        text.push_str(": ");
        text.push_str(value);
        text.push_str("\r\n");
    };
    let mut headers = headers.iter();
    if let Some((name, value)) = headers.next() {
        push(name, value);
    }
    push("WARC-Record-ID", &id);
    push("WARC-Date", &date);
    for (name, value) in headers {
        push(name, value);
    }
    push("WARC-Block-Digest", &sha1_label(block));
    push("Content-Length", &block.len().to_string());
    text.push_str("\r\n");
    let mut gz = GzEncoder::new(
        Vec::with_capacity(block.len() / 2 + 512),
        Compression::default(),
    );
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(text.as_bytes());
    let _ = gz.write_all(block);
    let _ = gz.write_all(b"\r\n\r\n");
    gz.finish().unwrap_or_default()
}

/// `sha1:<base32>`.
pub fn sha1_label(bytes: &[u8]) -> String {
    format!("sha1:{}", BASE32.encode(&Sha1::digest(bytes)))
}

/// A fresh `<urn:uuid:…>` (version 4 layout; the bits come from SHA-1 over
/// the process, the time and a counter, unique within and across runs).
fn new_record_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = Sha1::new();
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
            .to_le_bytes(),
    );
    hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let mut b: [u8; 16] = [0; 16];
    b.copy_from_slice(&hasher.finalize()[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "<urn:uuid:{}-{}-{}-{}-{}>",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Now as a WARC date: `YYYY-MM-DDThh:mm:ss.ssssssZ` (UTC).
fn now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    warc_date(since.as_secs(), since.subsec_micros())
}

/// `secs` after the Unix epoch as a WARC date (days to a civil date by
/// Howard Hinnant's algorithm).
fn warc_date(secs: u64, micros: u32) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_digests() {
        assert_eq!(warc_date(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(warc_date(951_782_400, 5), "2000-02-29T00:00:00.000005Z");
        assert_eq!(warc_date(1_795_975_199, 0), "2026-11-29T17:59:59.000000Z");
        // SHA-1 of "abc", base32.
        assert_eq!(sha1_label(b"abc"), "sha1:VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5");
        let a = new_record_id();
        assert_ne!(a, new_record_id());
        assert_eq!(a.len(), "<urn:uuid:>".len() + 36);
    }
}
