//! Whole-basket columnar reads: a branch's entries as one flat array of values plus entry
//! offsets, decoded basket by basket with no per-entry allocation.
//!
//! The per-entry API ([`crate::ReaderTree`] + `as_iter`) builds one `Vec` per event per branch;
//! this path instead reads a basket's bytes with one positioned read, decompresses them into one
//! buffer and byte-swaps the values in bulk, like uproot does with numpy. It handles the two
//! layouts flat ntuples use:
//!
//! * scalars (`Float_t`, `Int_t`, `Bool_t`, ...) in a `TBranch` with one leaf;
//! * `std::vector<T>` and `ROOT::VecOps::RVec<T>` of a primitive `T` in a split
//!   `TBranchElement`, where each entry is `[byte count][version][n][n values]`.
//!
//! Everything read from the file is checked: damaged sizes or offsets give an [`Error`] naming
//! the basket, never a panic; a basket's uncompressed size must agree between its key and its
//! compression blocks before anything is allocated.

use crate::rcompress;
use crate::Branch;
use std::fs::File;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Why a basket could not be read or decoded.
#[derive(Debug)]
pub enum Error {
    Io(std::io::Error),
    /// The basket's bytes contradict its own header or the branch's tables.
    Corrupt {
        basket: usize,
        seek: u64,
        reason: String,
    },
    /// The branch's type or layout is not one this path decodes.
    Unsupported(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Corrupt {
                basket,
                seek,
                reason,
            } => write!(f, "basket {basket} (at byte {seek}): {reason}"),
            Error::Unsupported(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

mod sealed {
    /// Only this module's types are [`super::Primitive`]: the decoders trust their
    /// `block_from_be` to write every slot it is given before the values' length is set.
    pub trait Sealed {}
}

/// A primitive value as ROOT stores it: big-endian, `SIZE` bytes. Sealed: implemented for
/// the integer and float types and `bool` only.
pub trait Primitive: sealed::Sealed + Copy + Default + Send + Sync + 'static {
    /// Bytes per value on disk.
    const SIZE: usize;
    /// The element type this Rust type reads.
    const TYPE: ElementType;
    /// Decodes one value from exactly `SIZE` big-endian bytes.
    fn from_be(b: &[u8]) -> Self;
    /// Decodes the `16 / SIZE` values of a 16-byte big-endian block into `dst` (that many
    /// slots). The primitives do it as one byte shuffle of the whole block, which the
    /// compiler turns into a vector shuffle where the CPU has one (see [`decode_jagged`]).
    #[inline(always)]
    fn block_from_be(src: &[u8; 16], dst: &mut [MaybeUninit<Self>]) {
        for (d, b) in dst.iter_mut().zip(src.chunks_exact(Self::SIZE)) {
            d.write(Self::from_be(b));
        }
    }
}

macro_rules! primitive {
    ($($t:ty => $e:ident),*) => {$(
        impl sealed::Sealed for $t {}
        impl Primitive for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            const TYPE: ElementType = ElementType::$e;
            #[inline(always)]
            fn from_be(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(b);
                <$t>::from_be_bytes(a)
            }
            #[inline(always)]
            fn block_from_be(src: &[u8; 16], dst: &mut [MaybeUninit<Self>]) {
                // Each value's bytes reversed in place (a fixed permutation of the block): its
                // little-endian form, whatever the machine's order.
                const S: usize = std::mem::size_of::<$t>();
                let mut ne = [0u8; 16];
                for (k, b) in ne.iter_mut().enumerate() {
                    *b = src[k / S * S + (S - 1 - k % S)];
                }
                for (d, c) in dst.iter_mut().zip(ne.chunks_exact(S)) {
                    let mut a = [0u8; S];
                    a.copy_from_slice(c);
                    d.write(<$t>::from_le_bytes(a));
                }
            }
        }
    )*};
}
primitive!(i8 => I8, u8 => U8, i16 => I16, u16 => U16, i32 => I32, u32 => U32, i64 => I64, u64 => U64, f32 => F32, f64 => F64);

impl sealed::Sealed for bool {}
impl Primitive for bool {
    const SIZE: usize = 1;
    const TYPE: ElementType = ElementType::Bool;
    #[inline(always)]
    fn from_be(b: &[u8]) -> Self {
        b[0] != 0
    }
    #[inline(always)]
    fn block_from_be(src: &[u8; 16], dst: &mut [MaybeUninit<Self>]) {
        // Compared all at once (a vector compare), then written one by one.
        let mut flags = [false; 16];
        for (f, &b) in flags.iter_mut().zip(src) {
            *f = b != 0;
        }
        for (d, f) in dst.iter_mut().zip(flags) {
            d.write(f);
        }
    }
}

/// The primitive element type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElementType {
    Bool,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

impl ElementType {
    /// Parses a C++ or ROOT type name (`float`, `Float_t`, `int32_t`, `unsigned int`, ...).
    pub fn parse(name: &str) -> Option<Self> {
        use ElementType::*;
        Some(match name.trim() {
            "bool" | "Bool_t" => Bool,
            "char" | "int8_t" | "Char_t" => I8,
            "unsigned char" | "uint8_t" | "UChar_t" => U8,
            "short" | "int16_t" | "Short_t" => I16,
            "unsigned short" | "uint16_t" | "UShort_t" => U16,
            "int" | "int32_t" | "Int_t" => I32,
            "unsigned int" | "unsigned" | "uint32_t" | "UInt_t" => U32,
            "long" | "long long" | "int64_t" | "Long64_t" | "Long_t" => I64,
            "unsigned long" | "unsigned long long" | "uint64_t" | "ULong64_t" | "ULong_t" => U64,
            "float" | "Float_t" => F32,
            "double" | "Double_t" => F64,
            _ => return None,
        })
    }

    /// Bytes per value on disk.
    pub fn size(self) -> usize {
        use ElementType::*;
        match self {
            Bool | I8 | U8 => 1,
            I16 | U16 => 2,
            I32 | U32 | F32 => 4,
            I64 | U64 | F64 => 8,
        }
    }
}

/// How a branch lays out its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// One value per entry.
    Scalar(ElementType),
    /// A variable number of values per entry (`std::vector<T>` or `ROOT::VecOps::RVec<T>`).
    Jagged(ElementType),
}

impl ColumnType {
    /// Parses a stored type name such as `float`, `vector<bool>` or
    /// `ROOT::VecOps::RVec<float>`; `None` for anything else (nested containers, classes).
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim().trim_start_matches("std::");
        for prefix in ["vector<", "ROOT::VecOps::RVec<", "ROOT::RVec<", "RVec<"] {
            if let Some(inner) = name.strip_prefix(prefix) {
                let inner = inner.strip_suffix('>')?.trim().trim_start_matches("std::");
                return ElementType::parse(inner).map(ColumnType::Jagged);
            }
        }
        ElementType::parse(name).map(ColumnType::Scalar)
    }

    pub fn element(self) -> ElementType {
        match self {
            ColumnType::Scalar(e) | ColumnType::Jagged(e) => e,
        }
    }
}

/// Where one basket of a branch lies in the file and which entries it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasketLocation {
    /// Index of the basket in its branch.
    pub index: usize,
    /// Byte offset of the basket's key in the file.
    pub seek: u64,
    /// Bytes on disk (key header + compressed payload).
    pub bytes: u32,
    /// Entries `first_entry..end_entry` of the tree.
    pub entries: Range<u64>,
}

impl Branch {
    /// The C++ type of the branch as stored: the class name of an element branch
    /// (`vector<float>`, `ROOT::VecOps::RVec<bool>`) or the leaf type of a plain branch.
    pub fn stored_type_name(&self) -> String {
        match self {
            Branch::Element(e) if !e.class_name().is_empty() => e.class_name().to_string(),
            _ => self.item_type_name(),
        }
    }

    /// Columnar layout of the branch, if the columnar path can decode it.
    pub fn column_type(&self) -> Option<ColumnType> {
        if self.branches().next().is_some() {
            return None; // a split object: read its leaf branches instead
        }
        ColumnType::parse(&self.stored_type_name())
    }

    /// ROOT compression setting of the branch (algorithm × 100 + level).
    pub fn compression(&self) -> i32 {
        self.tbranch().compress
    }

    /// Bytes of the branch's baskets on disk (compressed) and in memory (uncompressed).
    pub fn byte_sizes(&self) -> (i64, i64) {
        let b = self.tbranch();
        (b.zip_bytes, b.tot_bytes)
    }

    /// The branch's baskets, checked against each other and the branch's entry count.
    pub fn basket_locations(&self) -> Result<Vec<BasketLocation>> {
        let b = self.tbranch();
        if !b.baskets.is_empty() {
            return Err(Error::Unsupported(
                "baskets embedded in the TBranch (a file that was not closed properly)".into(),
            ));
        }
        let n = b.basket_seek.len();
        if b.basket_bytes.len() < n || b.basket_entry.len() < n + 1 {
            return Err(Error::Unsupported(format!(
                "inconsistent basket tables ({} seeks, {} sizes, {} entry marks)",
                n,
                b.basket_bytes.len(),
                b.basket_entry.len()
            )));
        }
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let (first, end) = (b.basket_entry[i], b.basket_entry[i + 1]);
            let (seek, bytes) = (b.basket_seek[i], b.basket_bytes[i]);
            if first < 0 || end < first || end > b.entries || seek < 0 || bytes <= 0 {
                return Err(Error::Corrupt {
                    basket: i,
                    seek: seek.max(0) as u64,
                    reason: format!(
                        "impossible basket table entry: entries {first}..{end} of {}, {bytes} bytes",
                        b.entries
                    ),
                });
            }
            out.push(BasketLocation {
                index: i,
                seek: seek as u64,
                bytes: bytes as u32,
                entries: first as u64..end as u64,
            });
        }
        let covered = out.last().map_or(0, |l| l.entries.end);
        if covered != b.entries as u64 {
            return Err(Error::Unsupported(format!(
                "baskets hold entries 0..{covered} of {}",
                b.entries
            )));
        }
        Ok(out)
    }
}

/// Reads raw baskets with positioned reads; shareable between threads.
#[derive(Debug)]
pub struct BasketSource {
    file: File,
    len: u64,
    path: PathBuf,
}

/// One basket, decompressed: its entries' bytes and where each entry starts.
#[derive(Debug, Default)]
pub struct RawBasket {
    /// Entries of the tree this basket holds.
    pub entries: Range<u64>,
    /// The entries' bytes (ROOT's "border": everything before the offset table).
    pub data: Vec<u8>,
    /// For variable-size entries, `data` offsets of each entry plus the end (`n + 1` values).
    pub entry_offsets: Option<Vec<u32>>,
}

impl BasketSource {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let file = File::open(path.as_ref()).map_err(Error::Io)?;
        let len = file.metadata().map_err(Error::Io)?.len();
        Ok(Self {
            file,
            len,
            path: path.as_ref().to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
        }
        #[cfg(windows)]
        {
            let mut done = 0;
            while done < buf.len() {
                let n = std::os::windows::fs::FileExt::seek_read(
                    &self.file,
                    &mut buf[done..],
                    offset + done as u64,
                )?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                done += n;
            }
            Ok(())
        }
    }

    /// Reads and decompresses one basket into `out`, reusing its buffers (and `scratch`, for
    /// the compressed bytes), so a loop over baskets allocates nothing once warmed up.
    pub fn read_basket(
        &self,
        loc: &BasketLocation,
        scratch: &mut Vec<u8>,
        out: &mut RawBasket,
    ) -> Result<()> {
        let corrupt = |reason: String| Error::Corrupt {
            basket: loc.index,
            seek: loc.seek,
            reason,
        };
        let end = loc.seek.checked_add(loc.bytes as u64);
        if end.map_or(true, |e| e > self.len) {
            return Err(corrupt(format!(
                "{} bytes at offset {} run past the end of the {}-byte file (truncated?)",
                loc.bytes, loc.seek, self.len
            )));
        }
        // Reused without clearing: the read fills every byte or fails.
        scratch.resize(loc.bytes as usize, 0);
        self.read_at(scratch, loc.seek).map_err(Error::Io)?;
        let key = BasketKey::parse(scratch).map_err(corrupt)?;
        if key.n_bytes as u64 != loc.bytes as u64 {
            return Err(corrupt(format!(
                "key says {} bytes, branch table says {}",
                key.n_bytes, loc.bytes
            )));
        }
        let n_entries = loc.entries.end - loc.entries.start;
        if key.nev_buf as u64 != n_entries {
            return Err(corrupt(format!(
                "basket holds {} entries, branch table says {n_entries}",
                key.nev_buf
            )));
        }
        let payload = &scratch[key.key_len as usize..];
        let obj_len = key.obj_len as usize;
        let data = &mut out.data;
        if payload.len() == obj_len {
            data.clear();
            data.extend_from_slice(payload);
        } else {
            let declared = rcompress::declared_size(payload).map_err(|e| corrupt(e.to_string()))?;
            if declared != obj_len {
                return Err(corrupt(format!(
                    "key says {obj_len} uncompressed bytes, compression blocks say {declared}"
                )));
            }
            // The buffer is reused without clearing: `decompress` overwrites every byte or
            // fails, so only growth beyond the previous basket's length is zeroed.
            data.resize(obj_len, 0);
            rcompress::decompress(data, payload).map_err(|e| corrupt(e.to_string()))?;
        }
        let border = key.last as i64 - key.key_len as i64;
        if border < 0 || border as usize > data.len() {
            return Err(corrupt(format!(
                "data end {border} outside the {}-byte basket",
                data.len()
            )));
        }
        let border = border as usize;
        out.entries = loc.entries.clone();
        let mut offsets = out.entry_offsets.take().unwrap_or_default();
        if key.nev_buf_size > 8 {
            entry_offsets(
                data,
                border,
                key.nev_buf as usize,
                key.key_len,
                &mut offsets,
            )
            .map_err(corrupt)?;
            out.entry_offsets = Some(offsets);
        }
        data.truncate(border);
        Ok(())
    }
}

/// The fields of a TBasket's key header that the columnar path needs.
struct BasketKey {
    n_bytes: i32,
    obj_len: i32,
    key_len: i16,
    nev_buf_size: i32,
    nev_buf: i32,
    last: i32,
}

impl BasketKey {
    fn parse(b: &[u8]) -> std::result::Result<Self, String> {
        let mut c = Cursor { b, pos: 0 };
        let n_bytes = c.i32()?;
        let version = c.i16()?;
        let obj_len = c.i32()?;
        let _datime = c.i32()?;
        let key_len = c.i16()?;
        let _cycle = c.i16()?;
        if version > 1000 {
            c.skip(16)?; // 64-bit fSeekKey, fSeekPdir
        } else {
            c.skip(8)?;
        }
        for _ in 0..3 {
            let n = c.u8()? as usize; // class name, name, title
            let n = if n == 255 { c.i32()? as usize } else { n };
            c.skip(n)?;
        }
        let _basket_version = c.i16()?;
        let _buffer_size = c.i32()?;
        let nev_buf_size = c.i32()?;
        let nev_buf = c.i32()?;
        let last = c.i32()?;
        let _flag = c.u8()?;
        if c.pos != key_len as usize {
            return Err(format!(
                "key header is {} bytes, its length field says {key_len} (not a TBasket?)",
                c.pos
            ));
        }
        if n_bytes < key_len as i32 || obj_len < 0 || nev_buf < 0 || n_bytes as usize > b.len() {
            return Err(format!(
                "impossible key sizes (bytes {n_bytes}, key {key_len}, object {obj_len}, entries {nev_buf})"
            ));
        }
        Ok(Self {
            n_bytes,
            obj_len,
            key_len,
            nev_buf_size,
            nev_buf,
            last,
        })
    }
}

/// Reads ROOT's entry offset table that follows the entries' bytes: a count, then one
/// offset per entry measured from the start of the key. Fills `out` with `n + 1` offsets.
fn entry_offsets(
    data: &[u8],
    border: usize,
    n: usize,
    key_len: i16,
    out: &mut Vec<u32>,
) -> std::result::Result<(), String> {
    let mut c = Cursor {
        b: &data[border..],
        pos: 0,
    };
    let count = c.i32()?;
    if count < n as i32 {
        return Err(format!(
            "offset table has {count} entries, basket holds {n}"
        ));
    }
    out.clear();
    out.reserve(n + 1);
    // The whole table at once, then the checks as and-reductions (no branch per entry, so
    // both loops vectorise); only a table that fails them is walked again, for the error.
    if let Some(table) = data.get(border + 4..border + 4 + 4 * n) {
        let mut in_range = true;
        for (d, b) in out.spare_capacity_mut()[..n]
            .iter_mut()
            .zip(table.chunks_exact(4))
        {
            let off = i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64 - key_len as i64;
            in_range &= (0..=border as i64).contains(&off);
            d.write(off as u32);
        }
        // SAFETY: the loop above wrote the first `n` slots (`table` holds `n` values).
        unsafe { out.set_len(n) };
        let ordered = out.windows(2).fold(true, |ok, w| ok & (w[0] <= w[1]));
        if in_range && ordered {
            out.push(border as u32);
            return Ok(());
        }
        out.clear();
    }
    let mut prev = 0u32;
    for i in 0..n {
        let off = c.i32()? as i64 - key_len as i64;
        if off < prev as i64 || off as usize > border {
            return Err(format!(
                "entry {i} starts at {off}, outside 0..{border} or before entry {}",
                i.saturating_sub(1)
            ));
        }
        prev = off as u32;
        out.push(prev);
    }
    out.push(border as u32);
    Ok(())
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> std::result::Result<&[u8], String> {
        let s = self
            .b
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or_else(|| format!("header cut short at byte {}", self.pos))?;
        self.pos += n;
        Ok(s)
    }
    fn skip(&mut self, n: usize) -> std::result::Result<(), String> {
        self.take(n).map(|_| ())
    }
    fn u8(&mut self) -> std::result::Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn i16(&mut self) -> std::result::Result<i16, String> {
        Ok(<i16 as Primitive>::from_be(self.take(2)?))
    }
    fn i32(&mut self) -> std::result::Result<i32, String> {
        Ok(<i32 as Primitive>::from_be(self.take(4)?))
    }
}

/// Appends entries `range` (tree entry numbers, within the basket) of a scalar branch.
pub fn decode_scalar<T: Primitive>(
    basket: &RawBasket,
    range: Range<u64>,
    out: &mut Vec<T>,
) -> std::result::Result<(), String> {
    decode_scalar_map(basket, range, out, |v: T| v)
}

/// [`decode_scalar`] with each value passed through `f` (a widening or a cast), so a column
/// stored as one type lands in another without an intermediate vector.
pub fn decode_scalar_map<T: Primitive, U>(
    basket: &RawBasket,
    range: Range<u64>,
    out: &mut Vec<U>,
    f: impl Fn(T) -> U,
) -> std::result::Result<(), String> {
    let n = (basket.entries.end - basket.entries.start) as usize;
    if basket.data.len() != n * T::SIZE {
        return Err(format!(
            "{} bytes for {n} entries of {} bytes each",
            basket.data.len(),
            T::SIZE
        ));
    }
    let (a, b) = local(basket, &range)?;
    out.extend(
        basket.data[a * T::SIZE..b * T::SIZE]
            .chunks_exact(T::SIZE)
            .map(|b| f(T::from_be(b))),
    );
    Ok(())
}

/// Appends entries `range` of a `vector<T>` / `RVec<T>` branch: their values to `values` and,
/// per entry, the running end offset into `values` to `offsets`. On an error, the entries
/// before the failing one are appended (values and offsets agree).
pub fn decode_jagged<T: Primitive>(
    basket: &RawBasket,
    range: Range<u64>,
    values: &mut Vec<T>,
    offsets: &mut Vec<u32>,
) -> std::result::Result<(), String> {
    let starts = basket
        .entry_offsets
        .as_ref()
        .ok_or("variable-size branch without an entry offset table")?;
    let (a, b) = local(basket, &range)?;
    let starts = starts
        .get(a..=b)
        .ok_or("the entry offset table is shorter than the basket")?;
    if decode_entries_fast(&basket.data, starts, values, offsets) {
        return Ok(());
    }
    // Something did not add up: the checked walk finds the first bad entry and says what.
    decode_entries_checked(
        &basket.data,
        starts,
        basket.entries.start + a as u64,
        values,
        offsets,
    )
}

/// [`decode_entries`] compiled for the CPU at hand: with SSSE3, a short entry's 16-byte
/// block is byte-swapped by one shuffle instead of a swap per value.
fn decode_entries_fast<T: Primitive>(
    data: &[u8],
    starts: &[u32],
    values: &mut Vec<T>,
    offsets: &mut Vec<u32>,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "ssse3")]
        fn with_ssse3<T: Primitive>(
            data: &[u8],
            starts: &[u32],
            values: &mut Vec<T>,
            offsets: &mut Vec<u32>,
        ) -> bool {
            decode_entries(data, starts, values, offsets)
        }
        if std::arch::is_x86_feature_detected!("ssse3") {
            // SAFETY: the CPU has SSSE3, checked just above.
            return unsafe { with_ssse3(data, starts, values, offsets) };
        }
    }
    decode_entries(data, starts, values, offsets)
}

/// Decodes the entries starting at `starts` (one more offset than entries) and appends them;
/// `false`, with nothing appended, when any entry's header disagrees with its size.
///
/// Written for the common case: no error strings, no branch on data but the entry's length,
/// the values written into spare capacity and the lengths set once (a per-value `push`
/// stores the length after every value: a quarter slower). Entries of at most `16 / SIZE`
/// values (a few photons: nearly all of them) are decoded as one fixed 16-byte block;
/// a loop as long as each entry made the branch predictor miss on every entry. The values
/// decoded past the entry's own land in spare capacity that the next entry overwrites or
/// that stays beyond the length.
#[inline(always)]
fn decode_entries<T: Primitive>(
    data: &[u8],
    starts: &[u32],
    values: &mut Vec<T>,
    offsets: &mut Vec<u32>,
) -> bool {
    let wide = 16 / T::SIZE;
    let n = starts.len() - 1;
    // Each entry holds its values and a 10-byte header, so the values take at most the
    // entries' bytes: enough room, with `wide` slots more for the fixed blocks.
    let bytes = (starts[n] as usize)
        .min(data.len())
        .saturating_sub(starts[0] as usize);
    let room = bytes / T::SIZE + wide;
    if values.len() + room > u32::MAX as usize {
        return false;
    }
    values.reserve(room);
    offsets.reserve(n);
    let base = values.len();
    let spare = values.spare_capacity_mut();
    let ends = &mut offsets.spare_capacity_mut()[..n];
    let mut written = 0usize;
    let mut bad = false;
    for (w, end) in starts.windows(2).zip(ends.iter_mut()) {
        let (s, e) = (w[0] as usize, w[1] as usize);
        // [u32 byte count | 0x40000000][u16 version][i32 n][n values]
        let Some(head) = data.get(s..s.saturating_add(10)) else {
            return false;
        };
        let count = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & !0x4000_0000;
        // A negative n reads as 2^31 or more: bad, as the checked walk has it.
        let len = u32::from_be_bytes([head[6], head[7], head[8], head[9]]) as usize;
        let size = e.wrapping_sub(s) as u64;
        bad |= (count as u64 + 4 != size)
            | (len as u64 * T::SIZE as u64 + 10 != size)
            | (len > i32::MAX as usize);
        match (
            data.get(s.saturating_add(10)..s.saturating_add(26)),
            spare.get_mut(written..written + wide),
        ) {
            (Some(src), Some(dst)) if len <= wide => {
                T::block_from_be(src.try_into().expect("16 bytes"), dst)
            }
            _ => {
                // A long entry (or one at the basket's very end): only once its header is
                // known to be right, since `len` sizes the copy.
                if bad {
                    return false;
                }
                let (Some(src), Some(dst)) =
                    (data.get(s + 10..e), spare.get_mut(written..written + len))
                else {
                    return false;
                };
                for (d, v) in dst.iter_mut().zip(src.chunks_exact(T::SIZE)) {
                    d.write(T::from_be(v));
                }
            }
        }
        // A bad entry's `len` is at most `wide` here (the fixed path), so this stays in room.
        written += len;
        end.write((base + written) as u32);
    }
    if bad {
        return false;
    }
    // SAFETY: every entry wrote its `len` values at `written` (the fixed blocks more, beyond
    // the length), so the first `written` slots of the values' spare capacity are
    // initialised; and one end offset per entry, `n` in all.
    unsafe {
        values.set_len(base + written);
        offsets.set_len(offsets.len() + n);
    }
    true
}

/// The entries one by one with every check spelled out: the error names the first bad
/// entry (tree entry `first` is the first of `starts`). Only for baskets the fast path
/// rejected; it appends the good entries before the bad one, like a reader that stops there.
fn decode_entries_checked<T: Primitive>(
    data: &[u8],
    starts: &[u32],
    first: u64,
    values: &mut Vec<T>,
    offsets: &mut Vec<u32>,
) -> std::result::Result<(), String> {
    for (i, w) in starts.windows(2).enumerate() {
        let entry = first + i as u64;
        let entry_bytes = data
            .get(w[0] as usize..w[1] as usize)
            .ok_or_else(|| format!("entry {entry} lies outside the basket's data"))?;
        if entry_bytes.len() < 10 {
            return Err(format!(
                "entry {entry} has {} bytes, less than its header",
                entry_bytes.len()
            ));
        }
        let count = <u32 as Primitive>::from_be(&entry_bytes[0..4]) & !0x4000_0000;
        let len = <i32 as Primitive>::from_be(&entry_bytes[6..10]);
        let body = &entry_bytes[10..];
        if len < 0
            || body.len() as u64 != len as u64 * T::SIZE as u64
            || count as usize != entry_bytes.len() - 4
        {
            return Err(format!(
                "entry {entry} claims {len} values in {} bytes",
                body.len()
            ));
        }
        let end = u32::try_from(values.len() + len as usize)
            .map_err(|_| "more than 2^32 values in one read")?;
        values.extend(body.chunks_exact(T::SIZE).map(T::from_be));
        offsets.push(end);
    }
    Ok(())
}

/// `range` (tree entries) as indices into the basket, checked.
fn local(basket: &RawBasket, range: &Range<u64>) -> std::result::Result<(usize, usize), String> {
    if range.start < basket.entries.start
        || range.end > basket.entries.end
        || range.start > range.end
    {
        return Err(format!(
            "entries {range:?} are not in basket entries {:?}",
            basket.entries
        ));
    }
    Ok((
        (range.start - basket.entries.start) as usize,
        (range.end - basket.entries.start) as usize,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_type_names_of_both_releases() {
        use ElementType::*;
        assert_eq!(ColumnType::parse("float"), Some(ColumnType::Scalar(F32)));
        assert_eq!(ColumnType::parse("uint32_t"), Some(ColumnType::Scalar(U32)));
        assert_eq!(
            ColumnType::parse("vector<bool>"),
            Some(ColumnType::Jagged(Bool))
        );
        assert_eq!(
            ColumnType::parse("vector<int32_t>"),
            Some(ColumnType::Jagged(I32))
        );
        assert_eq!(
            ColumnType::parse("ROOT::VecOps::RVec<float>"),
            Some(ColumnType::Jagged(F32))
        );
        assert_eq!(ColumnType::parse("vector<vector<float> >"), None);
        assert_eq!(ColumnType::parse("TLorentzVector"), None);
    }

    /// A basket of `vector<T>` entries (ROOT's layout: header, then the values big-endian),
    /// and its entry offsets.
    fn jagged_basket<T: Copy>(entries: &[Vec<T>], be: impl Fn(T) -> Vec<u8>) -> RawBasket {
        let (mut data, mut offsets) = (vec![], vec![0u32]);
        for e in entries {
            let body: Vec<u8> = e.iter().flat_map(|&v| be(v)).collect();
            data.extend((0x4000_0000u32 | (6 + body.len() as u32)).to_be_bytes());
            data.extend(9u16.to_be_bytes());
            data.extend((e.len() as i32).to_be_bytes());
            data.extend(body);
            offsets.push(data.len() as u32);
        }
        RawBasket {
            entries: 100..100 + entries.len() as u64,
            data,
            entry_offsets: Some(offsets),
        }
    }

    /// Short entries take the fixed 16-byte path, long ones the loop; both append to what
    /// the columns hold, any sub-range, every element size, the basket's last entry too.
    #[test]
    fn jagged_decoding_of_short_and_long_entries() {
        fn check<T: Primitive + PartialEq + std::fmt::Debug>(
            entries: Vec<Vec<T>>,
            be: impl Fn(T) -> Vec<u8>,
        ) {
            let basket = jagged_basket(&entries, be);
            let n = entries.len() as u64;
            for (a, b) in [(0, n), (1, n), (0, n - 1), (2, 4), (n - 1, n), (3, 3)] {
                let (mut v, mut o) = (entries[0].clone(), vec![7, entries[0].len() as u32]);
                decode_jagged(&basket, 100 + a..100 + b, &mut v, &mut o).unwrap();
                let mut want_v = entries[0].clone();
                let mut want_o = vec![7, entries[0].len() as u32];
                for e in &entries[a as usize..b as usize] {
                    want_v.extend(e);
                    want_o.push(want_v.len() as u32);
                }
                assert_eq!((v, o), (want_v, want_o), "entries {a}..{b}");
            }
        }
        let lens = [0usize, 1, 3, 4, 5, 17, 2, 16, 0, 8, 1];
        let make = |f: &dyn Fn(usize) -> f64| -> Vec<Vec<f64>> {
            lens.iter()
                .enumerate()
                .map(|(i, &l)| (0..l).map(|j| f(i * 100 + j)).collect())
                .collect()
        };
        let values = make(&|k| k as f64 * 1.25 - 300.0);
        check(
            values
                .iter()
                .map(|e| e.iter().map(|&x| x as f32).collect())
                .collect(),
            |x: f32| x.to_be_bytes().to_vec(),
        );
        check(values.clone(), |x: f64| x.to_be_bytes().to_vec());
        check(
            values
                .iter()
                .map(|e| e.iter().map(|&x| x as i16).collect())
                .collect(),
            |x: i16| x.to_be_bytes().to_vec(),
        );
        check(
            values
                .iter()
                .map(|e| e.iter().map(|&x| x as i64 % 3 == 0).collect())
                .collect(),
            |x: bool| vec![x as u8],
        );
    }

    /// The one-pass offset table reads what the checked walk does, and a table that fails
    /// the checks gets the walk's error.
    #[test]
    fn entry_offset_tables() {
        let key_len = 70i16;
        let table = |offs: &[i32]| {
            let border = 500usize;
            let mut data = vec![0u8; border];
            data.extend((offs.len() as i32 + 1).to_be_bytes());
            for o in offs {
                data.extend((o + key_len as i32).to_be_bytes());
            }
            let mut out = vec![1, 2, 3];
            entry_offsets(&data, border, offs.len(), key_len, &mut out).map(|()| out)
        };
        assert_eq!(table(&[0, 10, 10, 499]).unwrap(), [0, 10, 10, 499, 500]);
        assert_eq!(table(&[]).unwrap(), [500]);
        let err = table(&[0, 20, 10]).unwrap_err();
        assert!(err.contains("entry 2 starts at 10"), "{err}");
        let err = table(&[0, 501]).unwrap_err();
        assert!(err.contains("entry 1 starts at 501"), "{err}");
        let err = table(&[-80]).unwrap_err();
        assert!(err.contains("entry 0 starts at -80"), "{err}");
    }

    #[test]
    fn jagged_decoding_rejects_a_lying_header() {
        let mut data = vec![0x40, 0, 0, 10, 0, 9, 0, 0, 0, 1];
        data.extend(1.5f32.to_be_bytes());
        let mut basket = RawBasket {
            entries: 0..1,
            entry_offsets: Some(vec![0, data.len() as u32]),
            data,
        };
        let (mut v, mut o) = (vec![], vec![0]);
        decode_jagged::<f32>(&basket, 0..1, &mut v, &mut o).unwrap();
        assert_eq!(
            (v.as_slice(), o.as_slice()),
            (&[1.5f32][..], &[0u32, 1][..])
        );
        basket.data[9] = 7; // claims 7 values
        assert!(decode_jagged::<f32>(&basket, 0..1, &mut v, &mut o).is_err());
    }

    /// A bad entry in the middle of a basket: the fast path rejects the basket and the
    /// checked walk names the entry, keeping the entries before it (values and offsets in
    /// step); each kind of lie is caught.
    #[test]
    fn jagged_decoding_names_the_first_bad_entry() {
        let entries: Vec<Vec<f32>> = (0..6).map(|i| vec![i as f32; i % 3]).collect();
        let good = jagged_basket(&entries, |x: f32| x.to_be_bytes().to_vec());
        let start_of = |i: usize| good.entry_offsets.as_ref().unwrap()[i] as usize;
        let lies: [(&str, Box<dyn Fn(&mut RawBasket)>); 4] = [
            ("claims 3 values", Box::new(|b| b.data[start_of(4) + 9] = 3)),
            (
                "claims -1 values",
                Box::new(|b| {
                    b.data[start_of(4) + 6..start_of(4) + 10]
                        .copy_from_slice(&(-1i32).to_be_bytes())
                }),
            ),
            (
                "claims 1 values",
                Box::new(|b| b.data[start_of(4) + 3] ^= 1),
            ), // byte count
            (
                "less than its header",
                Box::new(|b| b.entry_offsets.as_mut().unwrap()[5] = start_of(4) as u32 + 4),
            ),
        ];
        for (want, lie) in lies {
            let mut basket = RawBasket {
                entries: good.entries.clone(),
                data: good.data.clone(),
                entry_offsets: good.entry_offsets.clone(),
            };
            lie(&mut basket);
            let (mut v, mut o) = (vec![9.0f32], vec![0u32, 1]);
            let err = decode_jagged(&basket, 101..106, &mut v, &mut o).unwrap_err();
            assert!(
                err.contains("entry 104") && err.contains(want),
                "{want}: {err}"
            );
            // Entries 101..104 hold 1, 2 and 0 values: appended after what was there.
            assert_eq!(v, [9.0, 1.0, 2.0, 2.0]);
            assert_eq!(o, [0, 1, 2, 4, 4]);
        }
    }

    /// ROOT writes `bool` as one byte; any non-zero byte is true, on both paths.
    #[test]
    fn jagged_bools_are_any_nonzero_byte() {
        let entries = [
            vec![0u8, 1, 2, 255],
            (0..20).map(|i| (i % 3) as u8).collect(),
        ];
        let basket = jagged_basket(&entries, |x: u8| vec![x]);
        let (mut v, mut o) = (vec![], vec![0u32]);
        decode_jagged::<bool>(&basket, 100..102, &mut v, &mut o).unwrap();
        let want: Vec<bool> = entries.iter().flatten().map(|&x| x != 0).collect();
        assert_eq!((v, o), (want, vec![0, 4, 24]));
    }
}
