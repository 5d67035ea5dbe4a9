//! A drmemtrace directory: one trace file per thread (or per core), merged
//! into one stream of records in the order they were recorded.
//!
//! The rule, as DynamoRIO's own serial reader interleaves threads: every
//! thread's records come in segments that each start at a timestamp marker;
//! the next segment to go is always the one with the smallest timestamp (a
//! tie goes to the file first in name order), and runs up to that thread's
//! next timestamp marker. The merged stream starts with one header record
//! and ends with one footer record; a thread's own header and footer are
//! dropped, its other leading records (version, file type, thread, pid, ...)
//! go out before its first segment, and a thread record and a pid record
//! are put in front of each later segment, so the address space of every
//! reference is its process's. Records are read as they are needed: memory
//! is bounded by the number of files, not by their length.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use xxhash_rust::xxh3::Xxh3;

use crate::decode::drmemtrace::{kind, marker, RECORD_BYTES};
use crate::error::{Location, TraceError};
use crate::input::{decompressor, hex128, read_up_to, Compression, CountingReader, FileDigest};

type Record = [u8; RECORD_BYTES];

fn kind_of(record: &Record) -> u16 {
    u16::from_le_bytes([record[0], record[1]])
}

fn size_of(record: &Record) -> u16 {
    u16::from_le_bytes([record[2], record[3]])
}

fn value_of(record: &Record) -> u64 {
    u64::from_le_bytes(record[4..].try_into().expect("8 bytes"))
}

fn record(kind: u16, size: u16, value: u64) -> Record {
    let mut record = [0u8; RECORD_BYTES];
    record[..2].copy_from_slice(&kind.to_le_bytes());
    record[2..4].copy_from_slice(&size.to_le_bytes());
    record[4..].copy_from_slice(&value.to_le_bytes());
    record
}

fn is_timestamp(record: &Record) -> bool {
    kind_of(record) == kind::MARKER && size_of(record) == marker::TIMESTAMP
}

/// Whether the merge must look at a record: a timestamp marker (a segment
/// starts), a thread or pid record (noted for later segments), a header or
/// footer. Others are copied as they are, in bulk.
fn needs_a_look(bytes: &[u8]) -> bool {
    let kind = u16::from_le_bytes([bytes[0], bytes[1]]);
    match kind {
        kind::MARKER => u16::from_le_bytes([bytes[2], bytes[3]]) == marker::TIMESTAMP,
        kind::THREAD | kind::PID | kind::HEADER | kind::FOOTER => true,
        _ => false,
    }
}

/// How a run of copied records ended.
enum Run {
    /// `out` is full.
    Full,
    /// The next record, to look at (`None`: the footer, the thread's end).
    Record(Option<Record>),
}

/// Whether a directory entry's name is a drmemtrace trace file.
fn is_trace_file(name: &str) -> bool {
    [".trace", ".trace.zip", ".trace.gz", ".trace.zst", ".trace.xz"].iter().any(|suffix| name.ends_with(suffix))
}

/// The trace files of a drmemtrace directory (or of its `trace/`
/// subdirectory, where DynamoRIO's post-processing writes them), in name
/// order; an error when there are none.
pub(crate) fn trace_files(dir: &Path) -> Result<Vec<PathBuf>, TraceError> {
    let list = |dir: &Path| -> Result<Vec<PathBuf>, TraceError> {
        let entries = std::fs::read_dir(dir).map_err(|e| TraceError::io(dir, "cannot list", &e))?;
        let mut names = BTreeSet::new();
        for entry in entries {
            let entry = entry.map_err(|e| TraceError::io(dir, "cannot list", &e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_trace_file(&name) && entry.path().is_file() {
                names.insert(name);
            }
        }
        Ok(names.into_iter().map(|n| dir.join(n)).collect())
    };
    let mut files = list(dir)?;
    if files.is_empty() && dir.join("trace").is_dir() {
        files = list(&dir.join("trace"))?;
    }
    if files.is_empty() {
        return Err(TraceError::new(
            dir,
            Location::File,
            "is a directory without drmemtrace trace files (*.trace, *.trace.zip, *.trace.gz, *.trace.zst); \
             expected a trace file or a drmemtrace directory",
        ));
    }
    Ok(files)
}

/// A directory's hash: the hash of its trace files' hash lines (`<hex>
/// <name>\n`, two spaces, in name order), as `xxhsum -H2 *.trace.zip |
/// xxhsum -H2` computes it.
pub(crate) fn combined_hash(files: &[(String, String)]) -> String {
    let mut hasher = Xxh3::new();
    for (name, hash) in files {
        hasher.update(format!("{hash}  {name}\n").as_bytes());
    }
    hex128(hasher.digest128())
}

/// One thread's file, read a record at a time.
struct Thread {
    name: String,
    reader: BufReader<Box<dyn Read + Send>>,
    /// Bytes of its (decompressed) records read so far.
    offset: u64,
    /// Its leading records, sent before its first segment.
    preamble: Vec<Record>,
    /// The timestamp marker that starts its next segment.
    next: Option<Record>,
    /// Its last thread and pid records, repeated before each later segment.
    thread: Option<Record>,
    pid: Option<Record>,
    started: bool,
    ended: bool,
}

impl Thread {
    fn error(&self, offset: u64, why: impl std::fmt::Display) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, format!("{}: byte offset {offset}: {why}", self.name))
    }

    /// The next record, or `None` at the end of the file.
    fn read(&mut self) -> io::Result<Option<Record>> {
        let mut record = [0u8; RECORD_BYTES];
        let n = read_up_to(&mut self.reader, &mut record)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.name)))?;
        match n {
            0 => Ok(None),
            RECORD_BYTES => {
                self.offset += RECORD_BYTES as u64;
                Ok(Some(record))
            }
            n => Err(self.error(
                self.offset,
                format!("the trace ends inside a record ({n} bytes); expected whole {RECORD_BYTES}-byte records"),
            )),
        }
    }

    /// Reads the next record for a segment, noting thread and pid records;
    /// `None` once the footer has been read (the file must end there).
    fn next_record(&mut self) -> io::Result<Option<Record>> {
        let at = self.offset;
        let Some(record) = self.read()? else {
            return Err(self.error(at, "the trace ends without its footer record (type 26): truncated?"));
        };
        match kind_of(&record) {
            kind::FOOTER => {
                let after = self.offset;
                if self.read()?.is_some() {
                    return Err(self.error(after, "a record after the footer record; expected the trace to end"));
                }
                // Read to the end of the file, so its hash is complete.
                io::copy(&mut self.reader, &mut io::sink())
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.name)))?;
                self.ended = true;
                Ok(None)
            }
            kind::HEADER => Err(self.error(at, "a second header record")),
            kind::THREAD => {
                self.thread = Some(record);
                Ok(Some(record))
            }
            kind::PID => {
                self.pid = Some(record);
                Ok(Some(record))
            }
            _ => Ok(Some(record)),
        }
    }
}

impl Thread {
    /// Copies records into `out` up to the next one the merge must look at,
    /// whole buffers at a time, until `out` holds `limit` bytes.
    fn copy_run(&mut self, out: &mut Vec<u8>, limit: usize) -> io::Result<Run> {
        loop {
            if out.len() >= limit {
                return Ok(Run::Full);
            }
            let buf = self.reader.fill_buf().map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.name)))?;
            let whole = buf.len() - buf.len() % RECORD_BYTES;
            let mut plain = 0;
            while plain < whole && !needs_a_look(&buf[plain..plain + RECORD_BYTES]) {
                plain += RECORD_BYTES;
            }
            if plain == 0 {
                // A record to look at, one that straddles the buffer's
                // end, or the end of the file.
                return Ok(Run::Record(self.next_record()?));
            }
            out.extend_from_slice(&buf[..plain]);
            self.reader.consume(plain);
            self.offset += plain as u64;
        }
    }
}

/// Where the merge is.
#[derive(Clone, Copy)]
enum Phase {
    /// The shared header record is next.
    Header(Record),
    /// Records of thread `current` until its next timestamp.
    Running {
        current: usize,
    },
    /// The shared footer record is next, then the end.
    Footer,
    Done,
}

/// The merged records of a directory's trace files, as bytes.
pub(crate) struct Merge {
    threads: Vec<Thread>,
    phase: Phase,
    /// Records ready to go out, and how far they have gone.
    out: Vec<u8>,
    pos: usize,
    failed: bool,
}

/// What the directory's files are, for provenance.
pub(crate) struct DirectoryFiles {
    pub names: Vec<String>,
    pub digests: Vec<Arc<Mutex<FileDigest>>>,
    pub bytes: u64,
    pub compression: Compression,
}

impl Merge {
    pub fn open(dir: &Path) -> Result<(Merge, DirectoryFiles), TraceError> {
        let files = trace_files(dir)?;
        let mut threads = Vec::new();
        let mut provenance =
            DirectoryFiles { names: Vec::new(), digests: Vec::new(), bytes: 0, compression: Compression::None };
        let mut header: Option<(Record, String)> = None;
        for path in &files {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let mut file = File::open(path).map_err(|e| TraceError::io(path, "cannot open", &e))?;
            provenance.bytes += file.metadata().map_err(|e| TraceError::io(path, "cannot stat", &e))?.len();
            let mut magic = [0u8; 6];
            let len = read_up_to(&mut file, &mut magic).map_err(|e| TraceError::io(path, "cannot read", &e))?;
            let compression = Compression::detect(&magic[..len]);
            if threads.is_empty() {
                provenance.compression = compression;
            }
            let digest = Arc::new(Mutex::new(FileDigest::default()));
            let raw = CountingReader::new(io::Cursor::new(magic[..len].to_vec()).chain(file), Arc::clone(&digest));
            let reader = decompressor(BufReader::with_capacity(64 * 1024, raw), compression, None)
                .map_err(|e| TraceError::io(path, "cannot start the decompressor", &e))?;
            let mut thread = Thread {
                name: path.display().to_string(),
                reader: BufReader::with_capacity(64 * 1024, reader),
                offset: 0,
                preamble: Vec::new(),
                next: None,
                thread: None,
                pid: None,
                started: false,
                ended: false,
            };
            let invalid = |e: io::Error| TraceError::new(path, Location::File, e.to_string());
            // The header, then everything up to the first timestamp.
            let first = thread.read().map_err(invalid)?;
            match first {
                Some(first) if kind_of(&first) == kind::HEADER => match &header {
                    None => header = Some((first, name.clone())),
                    Some((shared, from)) if value_of(shared) != value_of(&first) => {
                        return Err(TraceError::new(
                            path,
                            Location::Byte { offset: 0, decompressed: true },
                            format!("trace version {}, but {from} has version {}", value_of(&first), value_of(shared)),
                        ));
                    }
                    Some(_) => {}
                },
                _ => {
                    return Err(TraceError::new(
                        path,
                        Location::Byte { offset: 0, decompressed: true },
                        "expected a drmemtrace header record (type 25) first",
                    ))
                }
            }
            loop {
                match thread.next_record().map_err(invalid)? {
                    None => break,
                    Some(r) if is_timestamp(&r) => {
                        thread.next = Some(r);
                        break;
                    }
                    Some(r) => thread.preamble.push(r),
                }
            }
            provenance.names.push(name);
            provenance.digests.push(digest);
            threads.push(thread);
        }
        let (header, _) = header.expect("every file has a header");
        let merge = Merge { threads, phase: Phase::Header(header), out: Vec::new(), pos: 0, failed: false };
        Ok((merge, provenance))
    }

    /// The thread whose next segment goes next: the smallest timestamp, the
    /// first file on a tie; threads without timestamps go first.
    fn pick(&self) -> Option<usize> {
        self.threads
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.ended || !t.started)
            .min_by_key(|(i, t)| (t.next.as_ref().map_or(0, value_of), *i))
            .map(|(i, _)| i)
    }

    /// Fills `out` with the next records.
    fn refill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.pos = 0;
        const BATCH: usize = 16 * 1024;
        while self.out.len() < BATCH * RECORD_BYTES {
            match self.phase {
                Phase::Header(header) => {
                    self.out.extend_from_slice(&header);
                    self.phase = match self.pick() {
                        Some(current) => self.start(current),
                        None => Phase::Footer,
                    };
                }
                Phase::Running { current } => {
                    let thread = &mut self.threads[current];
                    match thread.copy_run(&mut self.out, BATCH * RECORD_BYTES)? {
                        Run::Full => {}
                        Run::Record(Some(r)) if is_timestamp(&r) => {
                            thread.next = Some(r);
                            self.phase = self.switch();
                        }
                        Run::Record(Some(r)) => self.out.extend_from_slice(&r),
                        Run::Record(None) => {
                            thread.next = None;
                            self.phase = self.switch();
                        }
                    }
                }
                Phase::Footer => {
                    self.out.extend_from_slice(&record(kind::FOOTER, 0, 0));
                    self.phase = Phase::Done;
                }
                Phase::Done => break,
            }
        }
        Ok(())
    }

    /// The phase after a segment ends.
    fn switch(&mut self) -> Phase {
        match self.pick() {
            Some(next) => self.start(next),
            None => Phase::Footer,
        }
    }

    /// Starts thread `index`'s next segment: its preamble the first time,
    /// its thread and pid records later; then its timestamp marker.
    fn start(&mut self, index: usize) -> Phase {
        let thread = &mut self.threads[index];
        if thread.started {
            for r in [thread.thread, thread.pid].into_iter().flatten() {
                self.out.extend_from_slice(&r);
            }
        } else {
            thread.started = true;
            for r in &thread.preamble {
                self.out.extend_from_slice(r);
            }
        }
        match thread.next.take() {
            Some(timestamp) => {
                self.out.extend_from_slice(&timestamp);
                Phase::Running { current: index }
            }
            // A thread that ended before any timestamp: nothing more of it.
            None => {
                thread.ended = true;
                self.switch()
            }
        }
    }
}

impl Read for Merge {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.out.len() {
            if self.failed {
                return Ok(0);
            }
            if let Err(e) = self.refill() {
                self.failed = true;
                return Err(e);
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
