//! The streaming trace reader: opens a file, tells its compression and
//! format, and hands out records in batches.

use std::path::{Path, PathBuf};

use crate::access::Access;
use crate::decode::{Decoder, MAX_RECORDS_PER_UNIT};
use crate::error::{DecodeError, Location, TraceError};
use crate::format::{self, Format};
use crate::input::{Compression, Input, STREAM_BUFFER_BYTES};

/// Records per batch: large enough that per-batch work vanishes, small
/// enough to stay in the L1/L2 cache.
pub const BATCH_RECORDS: usize = 4096;

/// A reusable buffer of decoded records. Readers refill it in place, so
/// reading allocates nothing per record or per batch.
#[derive(Debug, Clone)]
pub struct Batch {
    records: Vec<Access>,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch::new()
    }
}

impl Batch {
    pub fn new() -> Batch {
        Batch { records: Vec::with_capacity(BATCH_RECORDS) }
    }

    pub fn as_slice(&self) -> &[Access] {
        &self.records
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.records.clear();
    }

    /// Whether another decoding unit might not fit.
    pub(crate) fn is_full(&self) -> bool {
        self.records.len() + MAX_RECORDS_PER_UNIT > BATCH_RECORDS
    }

    pub(crate) fn push(&mut self, access: Access) {
        self.records.push(access);
    }

    pub(crate) fn records_mut(&mut self) -> &mut Vec<Access> {
        &mut self.records
    }
}

impl std::ops::Deref for Batch {
    type Target = [Access];
    fn deref(&self) -> &[Access] {
        &self.records
    }
}

/// Reads one trace file, whatever its format and compression.
#[derive(Debug)]
pub struct TraceReader {
    path: PathBuf,
    input: Input,
    decoder: Decoder,
    format: Format,
    finished: bool,
    records_read: u64,
}

impl TraceReader {
    /// Opens `path`, telling its format from its content.
    pub fn open(path: impl AsRef<Path>) -> Result<TraceReader, TraceError> {
        TraceReader::open_as(path, None)
    }

    /// Opens `path` as `format`, or tells the format from the content when
    /// `format` is `None`.
    pub fn open_as(path: impl AsRef<Path>, format: Option<Format>) -> Result<TraceReader, TraceError> {
        let path = path.as_ref();
        let mut input = Input::open(path)?;
        let compressed = input.compression() != Compression::None;
        let (start, whole) = input.window(path, true)?;
        if start.is_empty() {
            let message = if compressed {
                format!("the {} stream decompresses to nothing; expected a trace", input.compression().name())
            } else {
                "empty file; expected a trace".into()
            };
            return Err(TraceError::new(path, Location::File, message));
        }
        let format = match format {
            Some(format) => format,
            None => format::detect(start, whole, path).map_err(|why| {
                TraceError::new(path, Location::File, format!("cannot tell the trace format: {why}; give --format"))
            })?,
        };
        Ok(TraceReader {
            path: path.to_owned(),
            input,
            decoder: Decoder::new(format),
            format,
            finished: false,
            records_read: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn compression(&self) -> Compression {
        self.input.compression()
    }

    /// Size of the file on disk.
    pub fn file_bytes(&self) -> u64 {
        self.input.file_bytes()
    }

    /// Bytes decoded so far (after decompression).
    pub fn decoded_bytes(&self) -> u64 {
        self.input.consumed()
    }

    /// The provenance hash (`HASH_ALGORITHM`, hex) of the file's bytes, once
    /// the trace has been read to its end: computed in the same pass as the
    /// decode, for mapped files and streams alike.
    pub fn hash(&self) -> Option<String> {
        self.input.hash()
    }

    /// Records handed out so far.
    pub fn records_read(&self) -> u64 {
        self.records_read
    }

    /// Records read but not yielded because they are not references
    /// (Dinero's cache-maintenance records).
    pub fn skipped(&self) -> u64 {
        self.decoder.skipped()
    }

    /// What a drmemtrace trace held besides references (so far).
    pub fn drmemtrace_counts(&self) -> Option<crate::DrmemtraceCounts> {
        self.decoder.drmemtrace_counts()
    }

    /// The header of an mmusim binary trace, once read.
    pub fn binary_header(&self) -> Option<&crate::binary::Header> {
        self.decoder.binary_header()
    }

    fn error(&self, err: DecodeError) -> TraceError {
        let err = DecodeError { location: self.input.locate(err.location), ..err };
        err.at(&self.path, self.input.compression() != Compression::None)
    }

    /// Refills `batch` with the next records. Returns `false`, with `batch`
    /// empty, once the trace has ended; the end is checked for truncation
    /// before it is reported.
    pub fn next_batch(&mut self, batch: &mut Batch) -> Result<bool, TraceError> {
        batch.clear();
        let mut want_more = false;
        while !self.finished {
            let (bytes, at_end) = self.input.window(&self.path, want_more)?;
            let available = bytes.len();
            let consumed = self.decoder.decode(bytes, at_end, batch.records_mut(), BATCH_RECORDS);
            let consumed = match consumed {
                Ok(consumed) => consumed,
                Err(e) => return Err(self.error(e)),
            };
            self.input.consume(consumed);
            if batch.is_full() {
                break;
            }
            if at_end {
                debug_assert_eq!(consumed, available, "decoders consume everything at the end");
                self.decoder.finish().map_err(|e| self.error(e))?;
                self.finished = true;
            } else if consumed == 0 && self.input.window_is_full() {
                let what = if self.format.is_text() { "line" } else { "record" };
                let err = DecodeError {
                    location: self.decoder.position(),
                    message: format!(
                        "{what} longer than {STREAM_BUFFER_BYTES} bytes; expected {} records",
                        self.format.name()
                    ),
                };
                return Err(self.error(err));
            } else {
                // What is left is part of a line or record: read on.
                want_more = true;
            }
        }
        self.records_read += batch.len() as u64;
        Ok(!batch.is_empty())
    }

    /// The records one at a time (convenient; batches are faster).
    pub fn records(self) -> Records {
        Records { reader: self, batch: Batch::new(), pos: 0, failed: false }
    }
}

/// Iterator over a trace's records; stops after the first error.
#[derive(Debug)]
pub struct Records {
    reader: TraceReader,
    batch: Batch,
    pos: usize,
    failed: bool,
}

impl Iterator for Records {
    type Item = Result<Access, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos == self.batch.len() {
            if self.failed {
                return None;
            }
            match self.reader.next_batch(&mut self.batch) {
                Ok(true) => self.pos = 0,
                Ok(false) => return None,
                Err(e) => {
                    self.failed = true;
                    self.batch.clear();
                    self.pos = 0;
                    return Some(Err(e));
                }
            }
        }
        let access = self.batch[self.pos];
        self.pos += 1;
        Some(Ok(access))
    }
}
