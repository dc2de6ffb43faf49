//! Compressed bodies: `/enc/<coding>/<n>` (text) and `/bomb/<coding>/<n>`
//! (zeros, which shrink a thousandfold and more).

use std::io::Write;

/// A content coding the farm can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `gzip`.
    Gzip,
    /// `deflate` (zlib).
    Deflate,
    /// `br`.
    Brotli,
    /// `zstd`.
    Zstd,
}

impl Coding {
    /// The coding named `name` in a path.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "gzip" => Some(Self::Gzip),
            "deflate" => Some(Self::Deflate),
            "br" => Some(Self::Brotli),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }

    /// The `Content-Encoding` value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
            Self::Brotli => "br",
            Self::Zstd => "zstd",
        }
    }
}

/// `n` bytes of text: numbered lines, so every part of it differs.
pub fn text_body(n: usize) -> Vec<u8> {
    let mut text = Vec::with_capacity(n + 64);
    let mut line = 0u64;
    while text.len() < n {
        let _ = writeln!(
            text,
            "line {line}: the quick brown fox jumps over the lazy dog"
        );
        line += 1;
    }
    text.truncate(n);
    text
}

/// `plain` encoded with `coding`.
pub fn encode(coding: Coding, plain: &[u8]) -> Vec<u8> {
    // Writing into a Vec cannot fail.
    match coding {
        Coding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let _ = e.write_all(plain);
            e.finish().unwrap_or_default()
        }
        Coding::Deflate => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            let _ = e.write_all(plain);
            e.finish().unwrap_or_default()
        }
        Coding::Brotli => {
            let mut out = Vec::new();
            {
                let mut e = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                let _ = e.write_all(plain);
            }
            out
        }
        Coding::Zstd => zstd::encode_all(plain, 3).unwrap_or_default(),
    }
}
