//! Trace writers (mmusim binary and Lackey text) and `convert`.
//!
//! Every output is written to a temporary file beside its destination and
//! renamed into place only when complete, so an interrupted or failed
//! conversion never leaves a half-written trace behind.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::access::{Access, Kind};
use crate::binary::{encode_record, Header};
use crate::error::{Location, TraceError};
use crate::format::Format;
use crate::input::Compression;
use crate::mix::BatchSource;
use crate::reader::{Batch, TraceReader};

/// What `convert` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// mmusim's binary format.
    Mmusim,
    /// Valgrind Lackey text.
    Lackey,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<OutputFormat, String> {
        match s {
            "mmusim" => Ok(OutputFormat::Mmusim),
            "lackey" => Ok(OutputFormat::Lackey),
            _ => Err(format!("unknown output format {s:?}; expected mmusim or lackey")),
        }
    }
}

impl OutputFormat {
    /// The format a file name asks for: Lackey for `*.lackey` (optionally
    /// compressed), mmusim's binary format otherwise.
    pub fn from_path(path: &Path) -> OutputFormat {
        let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        let stem = [".gz", ".xz", ".zst"].iter().find_map(|ext| name.strip_suffix(ext)).unwrap_or(&name);
        if stem.ends_with(".lackey") {
            OutputFormat::Lackey
        } else {
            OutputFormat::Mmusim
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Mmusim => "mmusim",
            OutputFormat::Lackey => "lackey",
        }
    }
}

/// Output compression, chosen by the destination's extension.
pub fn compression_for(path: &Path) -> Compression {
    match path.extension().and_then(|e| e.to_str()) {
        Some("gz") => Compression::Gzip,
        Some("xz") => Compression::Xz,
        Some("zst") => Compression::Zstd,
        _ => Compression::None,
    }
}

/// How the temporary files of atomic writes are named: an interrupted
/// write leaves one of these, never a half-written output.
pub const PARTIAL_PREFIX: &str = ".mmusim-";
pub const PARTIAL_SUFFIX: &str = ".partial";

/// A file that appears at its destination only when committed; dropped
/// uncommitted, it vanishes.
#[derive(Debug)]
pub struct AtomicFile {
    temp: tempfile::NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    pub fn create(dest: &Path) -> io::Result<AtomicFile> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(PARTIAL_PREFIX).suffix(PARTIAL_SUFFIX);
        // A temporary file is private (0600) by default; an output is not:
        // created as any file is (0666 less the umask, so 0644 under umask
        // 022), so that a results directory a group shares is readable to it.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let temp = builder.tempfile_in(parent_dir(dest))?;
        Ok(AtomicFile { temp, dest: dest.to_owned() })
    }

    pub fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// Flushes to disk and renames into place.
    pub fn commit(self) -> io::Result<()> {
        self.temp.as_file().sync_all()?;
        self.temp.persist(&self.dest).map_err(|e| e.error)?;
        Ok(())
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `dest` atomically.
pub fn write_atomically(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::create(dest)?;
    file.file().write_all(bytes)?;
    file.commit()
}

/// A byte sink, compressed or not, that must be finished so compressors can
/// write their trailers.
enum Sink<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Xz(liblzma::write::XzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Sink<W> {
    fn new(inner: W, compression: Compression) -> io::Result<Sink<W>> {
        Ok(match compression {
            Compression::None => Sink::Plain(inner),
            Compression::Gzip => Sink::Gzip(flate2::write::GzEncoder::new(inner, flate2::Compression::default())),
            Compression::Xz => Sink::Xz(liblzma::write::XzEncoder::new(inner, 6)),
            Compression::Zstd => Sink::Zstd(zstd::stream::write::Encoder::new(inner, 3)?),
            // `compression_for` never picks it: zip is read (drmemtrace), not written.
            Compression::Zip => {
                return Err(io::Error::new(io::ErrorKind::Unsupported, "mmusim does not write zip archives"))
            }
        })
    }

    fn finish(self) -> io::Result<W> {
        let mut inner = match self {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish()?,
            Sink::Xz(w) => w.finish()?,
            Sink::Zstd(w) => w.finish()?,
        };
        inner.flush()?;
        Ok(inner)
    }
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
            Sink::Xz(w) => w.write(buf),
            Sink::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
            Sink::Xz(w) => w.flush(),
            Sink::Zstd(w) => w.flush(),
        }
    }
}

/// Writes records as Lackey text: `I  %08x,%u` for fetches, ` L `, ` S ` and
/// ` M ` for loads, stores and modifies, as Valgrind prints them.
#[derive(Debug)]
pub struct LackeyWriter<W: Write> {
    out: W,
}

impl<W: Write> LackeyWriter<W> {
    pub fn new(out: W) -> LackeyWriter<W> {
        LackeyWriter { out }
    }

    pub fn write(&mut self, access: &Access) -> io::Result<()> {
        let mut line = [0u8; 48];
        let prefix: &[u8; 3] = match access.kind {
            Kind::Fetch => b"I  ",
            Kind::Load => b" L ",
            Kind::Store => b" S ",
            Kind::Modify => b" M ",
        };
        line[..3].copy_from_slice(prefix);
        let mut len = 3 + write_hex(&mut line[3..], access.addr, 8);
        line[len] = b',';
        len += 1;
        len += write_decimal(&mut line[len..], u64::from(access.size));
        line[len] = b'\n';
        self.out.write_all(&line[..=len])
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Writes `value` in lower-case hex, zero-padded to `min_digits`; returns the
/// number of digits written.
fn write_hex(buf: &mut [u8], value: u64, min_digits: usize) -> usize {
    let digits = ((64 - value.leading_zeros()) as usize).div_ceil(4).max(min_digits);
    for (i, slot) in buf[..digits].iter_mut().enumerate() {
        let nibble = (value >> (4 * (digits - 1 - i))) & 0xf;
        *slot = b"0123456789abcdef"[nibble as usize];
    }
    digits
}

fn write_decimal(buf: &mut [u8], value: u64) -> usize {
    let mut reversed = [0u8; 20];
    let mut n = 0;
    let mut v = value;
    loop {
        reversed[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for (slot, digit) in buf[..n].iter_mut().zip(reversed[..n].iter().rev()) {
        *slot = *digit;
    }
    n
}

/// Writes mmusim binary traces to any seekable file: the header is written
/// first with placeholder counts and rewritten when the records are done.
#[derive(Debug)]
pub struct BinaryWriter<W: Write + Seek> {
    out: BufWriter<W>,
    header: Header,
}

impl<W: Write + Seek> BinaryWriter<W> {
    pub fn new(out: W, description: &str) -> io::Result<BinaryWriter<W>> {
        let mut description = description.to_owned();
        if description.len() > crate::binary::MAX_DESCRIPTION_BYTES {
            let mut cut = crate::binary::MAX_DESCRIPTION_BYTES;
            while !description.is_char_boundary(cut) {
                cut -= 1;
            }
            description.truncate(cut);
        }
        let header = Header { records: 0, instructions: 0, description };
        let mut out = BufWriter::with_capacity(1 << 20, out);
        out.write_all(&header.encode())?;
        Ok(BinaryWriter { out, header })
    }

    #[inline]
    pub fn write(&mut self, access: &Access) -> io::Result<()> {
        self.header.records += 1;
        self.header.instructions += u64::from(access.kind == Kind::Fetch);
        self.out.write_all(&encode_record(access))
    }

    /// Writes the final header and returns the file and the header.
    pub fn finish(self) -> io::Result<(W, Header)> {
        let mut out = self.out.into_inner().map_err(|e| e.into_error())?;
        out.seek(SeekFrom::Start(0))?;
        out.write_all(&self.header.encode())?;
        out.seek(SeekFrom::End(0))?;
        out.flush()?;
        Ok((out, self.header))
    }
}

/// What was written.
#[derive(Clone, Debug, Serialize)]
pub struct WriteSummary {
    pub output_format: OutputFormat,
    pub output_compression: Compression,
    pub records: u64,
    pub instructions: u64,
}

/// What a conversion read and wrote.
#[derive(Clone, Debug, Serialize)]
pub struct ConvertSummary {
    pub input_format: Format,
    pub input_compression: Compression,
    /// The input's provenance hash (`HASH_ALGORITHM`), computed while it
    /// was converted.
    pub input_xxh3_128: Option<String>,
    #[serde(flatten)]
    pub written: WriteSummary,
}

/// Converts the trace at `input` (format told from its content unless
/// given) to `output`, compressed as the output's extension says.
pub fn convert(
    input: &Path,
    input_format: Option<Format>,
    output: &Path,
    output_format: OutputFormat,
) -> Result<ConvertSummary, TraceError> {
    let same_file = match (input.canonicalize(), output.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same_file {
        return Err(TraceError::new(output, Location::File, "is the input trace; choose another output path"));
    }
    let mut reader = TraceReader::open_as(input, input_format)?;
    let description = format!(
        "converted by mmusim {} from {} ({}, {})",
        env!("CARGO_PKG_VERSION"),
        input.display(),
        reader.format(),
        reader.compression().name()
    );
    let written = write_trace(&mut reader, output, output_format, &description)?;
    Ok(ConvertSummary {
        input_format: reader.format(),
        input_compression: reader.compression(),
        input_xxh3_128: reader.hash(),
        written,
    })
}

/// Writes every record of `source` to `output` in `output_format`,
/// compressed as the output's extension says. Every record is preserved; a
/// record Lackey text cannot express (one tagged with a context or VM) is an
/// error, not a silent loss. `description` goes into a binary header.
pub fn write_trace(
    source: &mut impl BatchSource,
    output: &Path,
    output_format: OutputFormat,
    description: &str,
) -> Result<WriteSummary, TraceError> {
    let output_compression = compression_for(output);
    let write_error = |e: io::Error| TraceError::io(output, "cannot write", &e);
    let mut dest = AtomicFile::create(output).map_err(|e| TraceError::io(output, "cannot create", &e))?;
    let mut batch = Batch::new();
    let (records, instructions) = match output_format {
        OutputFormat::Lackey => {
            let summary = write_lackey(source, output, &mut dest, &[])?;
            (summary.records, summary.instructions)
        }
        OutputFormat::Mmusim => {
            // The header's counts are known only at the end, so a compressed
            // output is first written plain to a scratch file and compressed
            // from there.
            let scratch = match output_compression {
                Compression::None => None,
                _ => Some(tempfile::tempfile_in(parent_dir(output)).map_err(write_error)?),
            };
            let mut writer = match &scratch {
                None => BinaryWriter::new(Either::Dest(dest.file()), description),
                Some(file) => BinaryWriter::new(Either::Scratch(file), description),
            }
            .map_err(write_error)?;
            while source.next_batch(&mut batch)? {
                for access in batch.iter() {
                    writer.write(access).map_err(write_error)?;
                }
            }
            let (_, header) = writer.finish().map_err(write_error)?;
            if let Some(mut scratch) = scratch {
                scratch.seek(SeekFrom::Start(0)).map_err(write_error)?;
                let mut sink = Sink::new(BufWriter::with_capacity(1 << 20, dest.file()), output_compression)
                    .map_err(write_error)?;
                io::copy(&mut scratch, &mut sink).map_err(write_error)?;
                sink.finish().map_err(write_error)?;
            }
            (header.records, header.instructions)
        }
    };
    dest.commit().map_err(write_error)?;
    Ok(WriteSummary { output_format, output_compression, records, instructions })
}

/// Writes every record of `source` to `output` as Lackey text, compressed
/// as the output's extension says, after `header` lines written as
/// `==mmusim== LINE` (which Lackey readers, mmusim's included, skip as they
/// skip Valgrind's own `==PID==` lines).
pub fn write_lackey_trace(
    source: &mut impl BatchSource,
    output: &Path,
    header: &[String],
) -> Result<WriteSummary, TraceError> {
    let write_error = |e: io::Error| TraceError::io(output, "cannot write", &e);
    let mut dest = AtomicFile::create(output).map_err(|e| TraceError::io(output, "cannot create", &e))?;
    let summary = write_lackey(source, output, &mut dest, header)?;
    dest.commit().map_err(write_error)?;
    Ok(summary)
}

fn write_lackey(
    source: &mut impl BatchSource,
    output: &Path,
    dest: &mut AtomicFile,
    header: &[String],
) -> Result<WriteSummary, TraceError> {
    let output_compression = compression_for(output);
    let write_error = |e: io::Error| TraceError::io(output, "cannot write", &e);
    let mut sink =
        Sink::new(BufWriter::with_capacity(1 << 20, dest.file()), output_compression).map_err(write_error)?;
    for line in header.iter().flat_map(|text| text.lines()) {
        writeln!(sink, "==mmusim== {line}").map_err(write_error)?;
    }
    let mut writer = LackeyWriter::new(sink);
    let mut batch = Batch::new();
    let (mut records, mut instructions) = (0u64, 0u64);
    while source.next_batch(&mut batch)? {
        for access in batch.iter() {
            if access.context != 0 || access.vm != 0 {
                return Err(TraceError::new(
                    output,
                    Location::File,
                    format!(
                        "record {records} belongs to context {} of VM {}, which Lackey text cannot express; \
                         write the mmusim format instead",
                        access.context, access.vm
                    ),
                ));
            }
            writer.write(access).map_err(write_error)?;
            records += 1;
            instructions += u64::from(access.kind == Kind::Fetch);
        }
    }
    writer.into_inner().finish().map_err(write_error)?;
    Ok(WriteSummary { output_format: OutputFormat::Lackey, output_compression, records, instructions })
}

/// The destination file or a scratch file, as one seekable writer type.
enum Either<'a> {
    Dest(&'a mut File),
    Scratch(&'a File),
}

impl Write for Either<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Either::Dest(f) => f.write(buf),
            Either::Scratch(f) => f.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Either::Dest(f) => f.flush(),
            Either::Scratch(f) => f.flush(),
        }
    }
}

impl Seek for Either<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match self {
            Either::Dest(f) => f.seek(pos),
            Either::Scratch(f) => f.seek(pos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lackey_lines_match_valgrinds_printing() {
        let mut writer = LackeyWriter::new(Vec::new());
        writer.write(&Access::new(Kind::Fetch, 0x4017a0, 3)).unwrap();
        writer.write(&Access::new(Kind::Store, 0x1ffefffd08, 8)).unwrap();
        writer.write(&Access::new(Kind::Load, 0, 512)).unwrap();
        writer.write(&Access::new(Kind::Modify, u64::MAX, 4)).unwrap();
        let text = String::from_utf8(writer.into_inner()).unwrap();
        assert_eq!(text, "I  004017a0,3\n S 1ffefffd08,8\n L 00000000,512\n M ffffffffffffffff,4\n");
    }

    #[test]
    fn output_format_and_compression_follow_the_name() {
        assert_eq!(OutputFormat::from_path(Path::new("a/x.lackey.zst")), OutputFormat::Lackey);
        assert_eq!(OutputFormat::from_path(Path::new("x.lackey")), OutputFormat::Lackey);
        assert_eq!(OutputFormat::from_path(Path::new("x.mmt")), OutputFormat::Mmusim);
        assert_eq!(compression_for(Path::new("x.mmt.xz")), Compression::Xz);
        assert_eq!(compression_for(Path::new("x.mmt")), Compression::None);
    }

    #[test]
    fn binary_writer_patches_the_header_counts() {
        let mut writer = BinaryWriter::new(io::Cursor::new(Vec::new()), "unit test").unwrap();
        writer.write(&Access::new(Kind::Fetch, 0x10, 4)).unwrap();
        writer.write(&Access::new(Kind::Load, 0x20, 8)).unwrap();
        let (cursor, header) = writer.finish().unwrap();
        let bytes = cursor.into_inner();
        let (decoded, len) = Header::decode(&bytes).unwrap().unwrap();
        assert_eq!(decoded, header);
        assert_eq!((decoded.records, decoded.instructions), (2, 1));
        assert_eq!(bytes.len(), len + 32);
    }
}
