use lz4::block::decompress_to_buffer as LZ4_decompress_to_buffer;
use std::io::Read;

pub type Result<T> = std::result::Result<T, Error>;

/// Why a compressed ROOT record could not be decompressed.
#[derive(Debug)]
pub enum Error {
    Io(std::io::Error),
    /// The record is damaged or does not follow ROOT's compression framing.
    Corrupt(String),
    /// The record uses an algorithm this crate does not read (ROOT's old "CS" format).
    Unsupported(String),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Corrupt(m) => write!(f, "corrupt compressed data: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported compression: {m}"),
        }
    }
}

impl std::error::Error for Error {}

// Note: this contains ZL[src][dst] where src and dst are 3 bytes each.
const HEADER_SIZE: usize = 9;

// because each zipped block contains:
// - the size of the input data
// - the size of the compressed data
// where each size is saved on 3 bytes, the maximal size
// of each block can not be bigger than 16Mb.
const K_MAX_COMPRESSED_BLOCK_SIZE: usize = 0xffffff;

#[allow(dead_code)]
#[derive(PartialEq)]
enum Kind {
    #[allow(dead_code)]
    Inherit = -1,
    UseGlobal = 0,
    Zlib = 1,
    Lzma = 2,
    OldCompression = 3,
    LZ4 = 4,
    Zstd = 5,
    UndefinedCompression = 6,
}

// kindOf returns the kind of compression algorithm.
fn kind_of(buf: &[u8]) -> Kind {
    match (buf[0] as char, buf[1] as char) {
        ('Z', 'L') => Kind::Zlib,
        ('X', 'Z') => Kind::Lzma,
        ('L', '4') => Kind::LZ4,
        ('Z', 'S') => Kind::Zstd,
        ('C', 'S') => Kind::OldCompression,

        _ => Kind::UndefinedCompression,
    }
}

/// The uncompressed size a compressed record declares: the sum over its blocks' headers.
/// Callers compare it with the size the record's key claims before allocating, so a damaged
/// size field is caught before it turns into a huge allocation.
pub fn declared_size(src: &[u8]) -> Result<usize> {
    let (mut pos, mut total) = (0usize, 0usize);
    while pos < src.len() {
        let hdr = src.get(pos..pos + HEADER_SIZE).ok_or_else(|| {
            Error::Corrupt(format!(
                "truncated block header at byte {pos} of {}",
                src.len()
            ))
        })?;
        let csize = hdr[3] as usize | (hdr[4] as usize) << 8 | (hdr[5] as usize) << 16;
        total += hdr[6] as usize | (hdr[7] as usize) << 8 | (hdr[8] as usize) << 16;
        pos += HEADER_SIZE + csize;
    }
    Ok(total)
}

thread_local! {
    static INFLATER: std::cell::RefCell<libdeflater::Decompressor> =
        std::cell::RefCell::new(libdeflater::Decompressor::new());
}

/// Decompresses one ROOT record into `dst`, which must have exactly the uncompressed size.
///
/// ROOT splits a record into blocks of at most 16 MiB, each with a 9-byte header (algorithm,
/// method, 3-byte compressed size, 3-byte uncompressed size); all blocks are decoded in turn.
/// Every failure is an error, never a panic: lengths are checked against both buffers.
pub fn decompress(dst: &mut [u8], src: &[u8]) -> Result<usize> {
    let mut done = 0usize;
    let mut pos = 0usize;
    while done < dst.len() {
        let hdr = src.get(pos..pos + HEADER_SIZE).ok_or_else(|| {
            Error::Corrupt(format!(
                "block header at byte {pos} lies past the end of the {}-byte record",
                src.len()
            ))
        })?;
        let csize = hdr[3] as usize | (hdr[4] as usize) << 8 | (hdr[5] as usize) << 16;
        let usize_ = hdr[6] as usize | (hdr[7] as usize) << 8 | (hdr[8] as usize) << 16;
        let block = src
            .get(pos + HEADER_SIZE..pos + HEADER_SIZE + csize)
            .ok_or_else(|| {
                Error::Corrupt(format!(
                    "block at byte {pos} claims {csize} compressed bytes, record has {}",
                    src.len()
                ))
            })?;
        let remaining = dst.len() - done;
        let out = dst.get_mut(done..done + usize_).ok_or_else(|| {
            Error::Corrupt(format!(
                "block claims {usize_} uncompressed bytes, only {remaining} expected"
            ))
        })?;
        let got = match kind_of(hdr) {
            Kind::Zlib => INFLATER
                .with(|d| d.borrow_mut().zlib_decompress(block, out))
                .map_err(|e| Error::Corrupt(format!("zlib: {e}")))?,
            Kind::Lzma => {
                // Cap the decoder's memory: a damaged header could ask for a 1.5 GiB dictionary.
                // ROOT's strongest LZMA preset needs about 65 MiB.
                let stream = xz2::stream::Stream::new_stream_decoder(256 << 20, 0)
                    .map_err(|e| Error::Corrupt(format!("lzma: {e}")))?;
                let mut d = xz2::read::XzDecoder::new_stream(block, stream);
                d.read_exact(out)
                    .map_err(|e| Error::Corrupt(format!("lzma: {e}")))?;
                out.len()
            }
            Kind::LZ4 => {
                // An 8-byte xxhash64 checksum precedes the LZ4 block.
                let body = block
                    .get(8..)
                    .ok_or_else(|| Error::Corrupt("lz4 block shorter than its checksum".into()))?;
                LZ4_decompress_to_buffer(body, Some(out.len() as i32), out)
                    .map_err(|e| Error::Corrupt(format!("lz4: {e}")))?
            }
            Kind::Zstd => zstd::bulk::decompress_to_buffer(block, out)
                .map_err(|e| Error::Corrupt(format!("zstd: {e}")))?,
            Kind::OldCompression => {
                return Err(Error::Unsupported("ROOT's old 'CS' algorithm".into()))
            }
            _ => {
                return Err(Error::Corrupt(format!(
                    "unknown compression magic {:?} at byte {pos}",
                    String::from_utf8_lossy(&hdr[..2])
                )))
            }
        };
        if got != usize_ {
            return Err(Error::Corrupt(format!(
                "block decoded to {got} bytes, header says {usize_}"
            )));
        }
        done += usize_;
        pos += HEADER_SIZE + csize;
    }
    Ok(done)
}

fn root_compress_algo_level(algo: i32) -> (Kind, i32) {
    let kind = algo / 100;
    let level = algo % 100;
    let kind = match kind {
        0 => Kind::UseGlobal,
        1 => Kind::Zlib,
        2 => Kind::Lzma,
        3 => Kind::OldCompression,
        4 => Kind::LZ4,
        5 => Kind::Zstd,
        _ => Kind::UndefinedCompression,
    };
    (kind, level)
}

/// Compresses one record for writing, in ROOT's block framing. Only zlib is written
/// (`compression` = 100 + level, as ROOT's `ROOT::RCompressionSetting`); settings below 100
/// (this crate's historical default `1`) and records under 512 bytes stay uncompressed, and so
/// does a record that would not shrink, as ROOT does.
pub fn compress(src: Vec<u8>, compression: i32) -> Result<Vec<u8>> {
    let (kind, level) = root_compress_algo_level(compression);
    if compression < 100 || level == 0 || src.len() < 512 {
        return Ok(src);
    }
    if kind != Kind::Zlib {
        return Err(Error::Unsupported(format!(
            "writing with compression setting {compression} (only zlib, 101-109, is written)"
        )));
    }
    let mut out = Vec::with_capacity(src.len() / 2 + 64);
    for block in src.chunks(K_MAX_COMPRESSED_BLOCK_SIZE) {
        let mut enc = flate2::write::ZlibEncoder::new(
            Vec::with_capacity(block.len() / 2 + 64),
            flate2::Compression::new(level.clamp(1, 9) as u32),
        );
        std::io::Write::write_all(&mut enc, block)?;
        let z = enc.finish()?;
        if z.len() > K_MAX_COMPRESSED_BLOCK_SIZE || z.len() >= block.len() {
            return Ok(src); // incompressible: store as is
        }
        let (c, u) = (z.len(), block.len());
        out.extend_from_slice(&[b'Z', b'L', 8]);
        out.extend_from_slice(&[c as u8, (c >> 8) as u8, (c >> 16) as u8]);
        out.extend_from_slice(&[u as u8, (u >> 8) as u8, (u >> 16) as u8]);
        out.extend_from_slice(&z);
    }
    if out.len() >= src.len() {
        return Ok(src);
    }
    Ok(out)
}
