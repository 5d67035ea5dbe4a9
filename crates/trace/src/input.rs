//! Bytes of a trace file: memory-mapped when the file is plain, streamed
//! through a decompressor when it is gzip, xz or zstd. Compression is told by
//! the file's magic bytes, never by its name.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

use crate::drmemtrace_dir::{combined_hash, trace_files, DirectoryFiles, Merge};
use crate::error::{Location, TraceError};
use crate::zip_members::{MemberStarts, ZipMembers};

/// How a trace file is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
    /// A zip archive whose members are read in order as one stream
    /// (drmemtrace's `.trace.zip`).
    Zip,
}

impl Compression {
    /// Longest magic number looked at.
    const MAGIC_BYTES: usize = 6;

    /// The compression whose magic number starts `bytes`.
    pub fn detect(bytes: &[u8]) -> Compression {
        if bytes.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if bytes.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if bytes.starts_with(b"PK\x03\x04") {
            Compression::Zip
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Zip => "zip",
        }
    }
}

/// Size of the streaming buffer: the longest line or record a stream may
/// hold, and the most a streamed trace keeps in memory at once.
pub(crate) const STREAM_BUFFER_BYTES: usize = 1 << 20;
/// A streamed window shorter than this is topped up before decoding.
const REFILL_BELOW: usize = STREAM_BUFFER_BYTES / 4;
/// Consumed parts of a mapped file are handed back to the kernel in steps of
/// this size, so the resident set of a long run stays bounded.
const RELEASE_STEP: usize = 64 << 20;

/// The same, for hashing a mapped file: its pages are not needed after
/// the hash has passed them, so a smaller step keeps resident memory near
/// a plain read's.
const HASH_RELEASE_STEP: usize = 8 << 20;

/// A trace file's bytes after decompression.
pub(crate) struct Input {
    source: Source,
    compression: Compression,
    file_bytes: u64,
    /// Decompressed bytes consumed so far.
    consumed: u64,
    /// The provenance hash (see `HASH_ALGORITHM`) of the file's bytes, in
    /// the pass that decodes them: a stream's as the decompressor (or the
    /// decoder) pulls them, a mapped file's as the decoder consumes them,
    /// while they are still in cache. No trace is read twice.
    digest: Arc<Mutex<FileDigest>>,
    /// Where each member of a zip archive starts in the stream.
    members: Option<MemberStarts>,
    /// A drmemtrace directory's files, merged into the stream.
    directory: Option<DirectoryFiles>,
}

/// The running hash of a file's bytes, how many it has seen, and whether
/// they ran to the end of the file (or pipe).
#[derive(Default)]
pub(crate) struct FileDigest {
    hasher: Xxh3,
    bytes: u64,
    complete: bool,
}

/// What `--trace -` and friends name: standard input.
pub const STDIN: &str = "-";

/// Opens a trace path; `-` is standard input (through `/dev/stdin`, so
/// that a redirected file is still mapped and a pipe is streamed).
pub fn open_trace_file(path: &Path) -> io::Result<File> {
    if path == Path::new(STDIN) {
        File::open("/dev/stdin")
    } else {
        File::open(path)
    }
}

enum Source {
    Mapped {
        map: memmap2::Mmap,
        pos: usize,
        released: usize,
    },
    Stream {
        reader: Box<dyn Read + Send>,
        buf: Box<[u8]>,
        start: usize,
        end: usize,
        eof: bool,
        /// Bytes of the file the decompressor has read, for error messages.
        file_read: Arc<AtomicU64>,
    },
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.source {
            Source::Mapped { .. } => "mapped",
            Source::Stream { .. } => "stream",
        };
        f.debug_struct("Input")
            .field("source", &kind)
            .field("compression", &self.compression)
            .field("consumed", &self.consumed)
            .finish()
    }
}

/// Counts and hashes the bytes a decompressor pulls from the file.
pub(crate) struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
    digest: Arc<Mutex<FileDigest>>,
}

impl<R> CountingReader<R> {
    pub fn new(inner: R, digest: Arc<Mutex<FileDigest>>) -> CountingReader<R> {
        CountingReader { inner, count: Arc::new(AtomicU64::new(0)), digest }
    }
}

impl FileDigest {
    /// The hash (hex), once the file has been read to its end.
    pub fn finished(&self) -> Option<String> {
        self.complete.then(|| hex128(self.hasher.digest128()))
    }
}

/// `raw` decompressed as `compression` says; a zip archive's members one
/// after another (their starts noted in `members`).
pub(crate) fn decompressor<R: io::BufRead + Send + 'static>(
    raw: R,
    compression: Compression,
    members: Option<MemberStarts>,
) -> io::Result<Box<dyn Read + Send>> {
    Ok(match compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(raw)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(raw)?),
        Compression::Zip => Box::new(ZipMembers::new(raw, members.unwrap_or_default())),
    })
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        let mut digest = self.digest.lock().expect("never poisoned: hashing does not panic");
        digest.hasher.update(&buf[..n]);
        digest.bytes += n as u64;
        if n == 0 && !buf.is_empty() {
            digest.complete = true;
        }
        Ok(n)
    }
}

impl Input {
    pub fn open(path: &Path) -> Result<Input, TraceError> {
        let mut file = open_trace_file(path).map_err(|e| TraceError::io(path, "cannot open", &e))?;
        let metadata = file.metadata().map_err(|e| TraceError::io(path, "cannot stat", &e))?;
        if metadata.is_dir() {
            let (merge, files) = Merge::open(path)?;
            let source = Source::Stream {
                reader: Box::new(merge),
                buf: vec![0u8; STREAM_BUFFER_BYTES].into_boxed_slice(),
                start: 0,
                end: 0,
                eof: false,
                file_read: Arc::new(AtomicU64::new(0)),
            };
            return Ok(Input {
                source,
                compression: files.compression,
                file_bytes: files.bytes,
                consumed: 0,
                digest: Arc::default(),
                members: None,
                directory: Some(files),
            });
        }
        let mut magic = [0u8; Compression::MAGIC_BYTES];
        let magic_len = read_up_to(&mut file, &mut magic).map_err(|e| TraceError::io(path, "cannot read", &e))?;
        if magic_len == 0 {
            return Err(TraceError::new(path, Location::File, "empty file; expected a trace"));
        }
        let magic = &magic[..magic_len];
        let compression = Compression::detect(magic);
        let file_bytes = metadata.len();
        let digest = Arc::new(Mutex::new(FileDigest::default()));
        if compression == Compression::None && metadata.is_file() {
            if let Some(map) = map_file(&file) {
                let source = Source::Mapped { map, pos: 0, released: 0 };
                return Ok(Input {
                    source,
                    compression,
                    file_bytes,
                    consumed: 0,
                    digest,
                    members: None,
                    directory: None,
                });
            }
        }
        let file_read = Arc::new(AtomicU64::new(0));
        let raw = CountingReader {
            inner: io::Cursor::new(magic.to_vec()).chain(file),
            count: Arc::clone(&file_read),
            digest: Arc::clone(&digest),
        };
        let raw = io::BufReader::with_capacity(256 * 1024, raw);
        let members = (compression == Compression::Zip).then(MemberStarts::default);
        let reader = decompressor(raw, compression, members.clone())
            .map_err(|e| TraceError::io(path, "cannot start the decompressor", &e))?;
        let source = Source::Stream {
            reader,
            buf: vec![0u8; STREAM_BUFFER_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            file_read,
        };
        Ok(Input { source, compression, file_bytes, consumed: 0, digest, members, directory: None })
    }

    /// Where a byte offset of the stream is: in which zip member, for an
    /// archive.
    pub fn locate(&self, location: Location) -> Location {
        match (location, &self.members) {
            (Location::Byte { offset, .. }, Some(members)) => match members.locate(offset) {
                Some((index, offset)) => Location::Member { index, offset },
                None => location,
            },
            _ => location,
        }
    }

    /// The provenance hash (hex) of the file, once every byte of it has
    /// been read.
    pub fn hash(&self) -> Option<String> {
        if let Some(files) = &self.directory {
            let hashes: Option<Vec<(String, String)>> = files
                .names
                .iter()
                .zip(&files.digests)
                .map(|(name, digest)| {
                    let hash = digest.lock().expect("never poisoned: hashing does not panic").finished()?;
                    Some((name.clone(), hash))
                })
                .collect();
            return hashes.map(|hashes| combined_hash(&hashes));
        }
        let digest = self.digest.lock().expect("never poisoned: hashing does not panic");
        (digest.complete && digest.bytes > 0).then(|| hex128(digest.hasher.digest128()))
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Size of the file on disk (0 for pipes).
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Decompressed bytes consumed so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The bytes not consumed yet, and whether they run to the end of the
    /// trace. A streamed window is topped up when it runs low, or whenever
    /// `want_more` says the decoder could not use what it has.
    pub fn window(&mut self, path: &Path, want_more: bool) -> Result<(&[u8], bool), TraceError> {
        let directory = self.directory.is_some();
        match &mut self.source {
            Source::Mapped { map, pos, .. } => Ok((&map[*pos..], true)),
            Source::Stream { reader, buf, start, end, eof, file_read } => {
                if !*eof && (want_more || *end - *start < REFILL_BELOW) {
                    buf.copy_within(*start..*end, 0);
                    *end -= *start;
                    *start = 0;
                    while *end < buf.len() {
                        match reader.read(&mut buf[*end..]) {
                            Ok(0) => {
                                *eof = true;
                                break;
                            }
                            Ok(n) => *end += n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            // A directory's merge names the file and offset itself.
                            Err(e) if directory => return Err(TraceError::new(path, Location::File, e.to_string())),
                            Err(e) => {
                                return Err(stream_error(path, self.compression, &e, file_read));
                            }
                        }
                    }
                }
                Ok((&buf[*start..*end], *eof))
            }
        }
    }

    /// Whether the window is as large as it can get: a decoder that cannot
    /// make progress on a full window faces a line or record too long to hold.
    pub fn window_is_full(&self) -> bool {
        match &self.source {
            Source::Mapped { .. } => true,
            Source::Stream { start, end, buf, .. } => end - start == buf.len(),
        }
    }

    pub fn consume(&mut self, n: usize) {
        self.consumed += n as u64;
        match &mut self.source {
            Source::Mapped { map, pos, released } => {
                let mut digest = self.digest.lock().expect("never poisoned: hashing does not panic");
                digest.hasher.update(&map[*pos..*pos + n]);
                digest.bytes += n as u64;
                digest.complete = *pos + n == map.len();
                drop(digest);
                *pos += n;
                if *pos - *released >= RELEASE_STEP {
                    // A multiple of the step is page-aligned on every platform.
                    let upto = *pos - *pos % RELEASE_STEP;
                    release(map, *released, upto);
                    *released = upto;
                }
            }
            Source::Stream { start, .. } => *start += n,
        }
    }
}

pub(crate) fn read_up_to(file: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn stream_error(path: &Path, compression: Compression, err: &io::Error, file_read: &AtomicU64) -> TraceError {
    let consumed = file_read.load(Ordering::Relaxed);
    match compression {
        Compression::None => TraceError::io(path, "cannot read", err),
        _ => TraceError::new(
            path,
            Location::Compressed { consumed },
            format!("corrupt or truncated {} data: {err}", compression.name()),
        ),
    }
}

/// The provenance hash a trace is known by.
pub const HASH_ALGORITHM: &str = "xxh3-128";

/// The provenance hash (`HASH_ALGORITHM`, hex) of a file's bytes on disk,
/// or of a drmemtrace directory's files. For what a run cannot hash as it
/// reads (a sweep checking what it may resume, before it reads). The file
/// is mapped when it can be, and its pages are released as the hash passes
/// them, so resident memory stays bounded.
pub fn hash_file(path: &Path) -> Result<String, TraceError> {
    if path != Path::new(STDIN) && path.is_dir() {
        let files = trace_files(path)?;
        let hashes: Result<Vec<(String, String)>, TraceError> = files
            .iter()
            .map(|file| {
                let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                Ok((name, hash_file(file)?))
            })
            .collect();
        return Ok(combined_hash(&hashes?));
    }
    let mut file = open_trace_file(path).map_err(|e| TraceError::io(path, "cannot open", &e))?;
    let mut hasher = Xxh3::new();
    match map_file(&file) {
        Some(map) => {
            let mut from = 0;
            while from < map.len() {
                let to = (from + HASH_RELEASE_STEP).min(map.len());
                hasher.update(&map[from..to]);
                release(&map, from, to);
                from = to;
            }
        }
        None => {
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf).map_err(|e| TraceError::io(path, "cannot read", &e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
        }
    }
    Ok(hex128(hasher.digest128()))
}

/// A 128-bit hash as 32 hex digits, as `xxhsum -H2` writes it.
pub(crate) fn hex128(hash: u128) -> String {
    format!("{hash:032x}")
}

/// What a process that reads mapped traces says, and how it ends, when one
/// of them is truncated (or its storage fails) while it is read: the kernel
/// then raises SIGBUS on the next access to a page that is gone, which
/// would otherwise kill the process without a word (exit status 135).
const SIGBUS_MESSAGE: &[u8] = b"mmusim: a memory-mapped trace file could not be read: it was truncated, or its \
storage failed, while mmusim read it (SIGBUS); runs that had not finished wrote nothing: rerun when the file is whole\n";

/// Makes a SIGBUS (a mapped trace truncated under the reader) end the
/// process with exit status 2 and a message instead of a silent crash. For
/// programs (the `mmusim` binary calls it first thing); a library should
/// not take over a process's signals.
#[allow(unsafe_code)]
pub fn exit_with_a_message_on_sigbus() {
    extern "C" fn on_sigbus(_: libc::c_int) {
        // SAFETY: write(2) and _exit(2) are async-signal-safe, and the
        // message is a static byte string.
        unsafe {
            libc::write(2, SIGBUS_MESSAGE.as_ptr().cast(), SIGBUS_MESSAGE.len());
            libc::_exit(2);
        }
    }
    // SAFETY: the handler only calls async-signal-safe functions; the
    // sigaction structure is zeroed (no flags, an empty mask) before use.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

/// Maps a plain file, or `None` when it cannot be mapped (then it is
/// streamed instead).
#[allow(unsafe_code)]
fn map_file(file: &File) -> Option<memmap2::Mmap> {
    // SAFETY: the map is read-only and private to this reader; mmusim never
    // writes through it. Another process truncating the trace while it is
    // read makes the next access to a vanished page raise SIGBUS, which the
    // binary turns into a clear error (`exit_with_a_message_on_sigbus`).
    let map = unsafe { memmap2::Mmap::map(file) }.ok()?;
    // Sequential read-ahead helps; failing to advise is harmless.
    let _ = map.advise(memmap2::Advice::Sequential);
    Some(map)
}

/// Drops the pages of `map[from..to]` from this process's resident set. They
/// stay in the page cache; only this process's claim on them goes.
#[allow(unsafe_code)]
fn release(map: &memmap2::Mmap, from: usize, to: usize) {
    if to > from {
        // SAFETY: the range lies inside the map, and the reader never reads
        // bytes before its position again, so dropping them cannot change
        // what it sees (a file-backed page would be re-read from the file).
        let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_hash_to_their_xxh3_128_across_release_steps() {
        // Expected values from the reference implementation (Python's
        // `xxhash` package, xxh3_128_hexdigest).
        let dir = tempfile::tempdir().unwrap();
        let abc = dir.path().join("abc");
        std::fs::write(&abc, b"abc").unwrap();
        assert_eq!(hash_file(&abc).unwrap(), "06b05ab6733a618578af5f94892f3950");
        // Longer than two release steps and not a multiple of one, so every
        // byte must be hashed exactly once across the steps' seams.
        let bytes: Vec<u8> = (0..2 * HASH_RELEASE_STEP + 12_345).map(|i| (i % 251) as u8).collect();
        let long = dir.path().join("long");
        std::fs::write(&long, &bytes).unwrap();
        assert_eq!(hash_file(&long).unwrap(), "d395f0342bb57faf5c5b6d38fd3fdaa6");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(
            hash_file(&empty).unwrap(),
            "99aa06d3014798d86001c324468d497f",
            "an empty file cannot be mapped and is read instead"
        );
        let err = hash_file(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(err.contains("missing") && err.contains("cannot open"), "{err}");
    }

    #[test]
    fn compression_is_told_by_magic_bytes() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(Compression::detect(&[0xfd, b'7', b'z', b'X', b'Z', 0]), Compression::Xz);
        assert_eq!(Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0x24]), Compression::Zstd);
        assert_eq!(Compression::detect(b"I  0400"), Compression::None);
        assert_eq!(Compression::detect(&[0x1f]), Compression::None);
    }
}
