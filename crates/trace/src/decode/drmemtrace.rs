//! Decoder for DynamoRIO's drmemtrace offline traces (post-processed, 64-bit):
//! 12-byte little-endian records `{u16 type, u16 size, u64 addr}`, the layout
//! and numbering of DynamoRIO's public `trace_entry.h` (see ARCHITECTURE.md,
//! "Modelling choices: traces", for what becomes a reference).
//!
//! A trace starts with a header record holding its version and ends with a
//! footer record. Instruction records (fetched kinds) become fetches, read and
//! write records loads and stores; everything else (markers, encodings,
//! non-fetched instructions, prefetches, flushes, thread records) is counted
//! and skipped. The process id of the pid records is the address space:
//! processes get contexts 0, 1, ... in order of first appearance.

use crate::access::{Access, Kind};
use crate::error::{DecodeError, Location};

/// Bytes of one record.
pub(crate) const RECORD_BYTES: usize = 12;

/// The newest trace version this reader knows (`TRACE_ENTRY_VERSION` of the
/// DynamoRIO release the bundled test traces come from).
pub(crate) const NEWEST_VERSION: u64 = 7;

/// Record types, as DynamoRIO numbers them.
pub(crate) mod kind {
    pub const READ: u16 = 0;
    pub const WRITE: u16 = 1;
    /// Software prefetches: 2 to 9 (general, x86 and ARM ones).
    pub const PREFETCH_FIRST: u16 = 2;
    pub const PREFETCH_LAST: u16 = 9;
    /// Fetched instructions: plain, direct and indirect jumps, conditional
    /// jumps, direct and indirect calls, returns.
    pub const INSTR_FIRST: u16 = 10;
    pub const INSTR_LAST: u16 = 16;
    pub const INSTR_BUNDLE: u16 = 17;
    /// Instruction and data cache flushes, each with an end record: 18 to 21.
    pub const FLUSH_FIRST: u16 = 18;
    pub const FLUSH_LAST: u16 = 21;
    pub const THREAD: u16 = 22;
    pub const THREAD_EXIT: u16 = 23;
    pub const PID: u16 = 24;
    pub const HEADER: u16 = 25;
    pub const FOOTER: u16 = 26;
    pub const HARDWARE_PREFETCH: u16 = 27;
    pub const MARKER: u16 = 28;
    pub const INSTR_NO_FETCH: u16 = 29;
    pub const INSTR_MAYBE_FETCH: u16 = 30;
    pub const INSTR_SYSENTER: u16 = 31;
    /// Prefetches by cache level, for instructions and data: 32 to 46.
    pub const LEVEL_PREFETCH_FIRST: u16 = 32;
    pub const LEVEL_PREFETCH_LAST: u16 = 46;
    pub const ENCODING: u16 = 47;
    pub const INSTR_TAKEN_JUMP: u16 = 48;
    pub const INSTR_UNTAKEN_JUMP: u16 = 49;
}

/// Marker sub-types the reader looks at (the marker's `size` field).
pub(crate) mod marker {
    pub const TIMESTAMP: u16 = 2;
    pub const VERSION: u16 = 12;
}

/// What a trace held besides references, by category.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DrmemtraceCounts {
    /// Instructions executed without a fetch (later iterations of a rep
    /// string loop).
    pub non_fetched_instructions: u64,
    /// Software and hardware prefetches (skipped: see ARCHITECTURE.md).
    pub prefetches: u64,
    /// Cache flush records.
    pub flushes: u64,
    /// Marker records of every sub-type (timestamps, cpu ids, syscalls, ...).
    pub markers: u64,
    /// Instruction-encoding records.
    pub encodings: u64,
    /// Header, footer, thread, thread-exit and pid records.
    pub bookkeeping: u64,
    /// Distinct threads and processes seen.
    pub threads: u64,
    pub processes: u64,
}

impl DrmemtraceCounts {
    /// Records that are not references.
    pub fn skipped(&self) -> u64 {
        self.non_fetched_instructions
            + self.prefetches
            + self.flushes
            + self.markers
            + self.encodings
            + self.bookkeeping
    }
}

#[derive(Debug, Default)]
pub(crate) struct Drmemtrace {
    /// Bytes consumed so far.
    offset: u64,
    version: Option<u64>,
    footer: bool,
    /// The address space of the records that follow (the last pid record's).
    context: u16,
    /// Process ids in order of first appearance: the index is the context.
    pids: Vec<u64>,
    threads: Vec<u64>,
    /// The last fetched instruction: where a bundle's instructions follow on.
    last_pc: u64,
    last_len: u16,
    counts: DrmemtraceCounts,
}

impl Drmemtrace {
    pub fn counts(&self) -> DrmemtraceCounts {
        DrmemtraceCounts { threads: self.threads.len() as u64, processes: self.pids.len() as u64, ..self.counts }
    }

    pub fn position(&self) -> Location {
        Location::Byte { offset: self.offset, decompressed: false }
    }

    pub fn decode(
        &mut self,
        bytes: &[u8],
        at_end: bool,
        out: &mut Vec<Access>,
        limit: usize,
    ) -> Result<usize, DecodeError> {
        let mut consumed = 0;
        // A bundle adds up to 8 references past the check, within
        // MAX_RECORDS_PER_UNIT.
        while out.len() < limit && bytes.len() - consumed >= RECORD_BYTES {
            let record: &[u8; RECORD_BYTES] = bytes[consumed..consumed + RECORD_BYTES].try_into().expect("12 bytes");
            let kind = u16::from_le_bytes([record[0], record[1]]);
            let size = u16::from_le_bytes([record[2], record[3]]);
            let addr = u64::from_le_bytes(record[4..].try_into().expect("8 bytes"));
            let at = self.offset;
            self.record(at, kind, size, addr, out)?;
            consumed += RECORD_BYTES;
            self.offset += RECORD_BYTES as u64;
        }
        let rest = bytes.len() - consumed;
        if at_end && rest < RECORD_BYTES {
            if rest > 0 {
                return Err(DecodeError::byte(
                    self.offset,
                    format!(
                        "the trace ends inside a record ({rest} bytes); expected whole {RECORD_BYTES}-byte records"
                    ),
                ));
            }
            consumed += rest;
        }
        Ok(consumed)
    }

    fn record(&mut self, at: u64, kind: u16, size: u16, addr: u64, out: &mut Vec<Access>) -> Result<(), DecodeError> {
        if self.version.is_none() && kind != kind::HEADER {
            return Err(DecodeError::byte(at, format!("type {kind}; expected the header record (type 25) first")));
        }
        if self.footer {
            return Err(DecodeError::byte(
                at,
                format!("type {kind} after the footer record; expected the trace to end"),
            ));
        }
        let push = |out: &mut Vec<Access>, context: u16, kind: Kind, addr: u64, size: u16| {
            out.push(Access { addr, size, context, vm: 0, kind });
        };
        match kind {
            kind::READ => push(out, self.context, Kind::Load, addr, size),
            kind::WRITE => push(out, self.context, Kind::Store, addr, size),
            kind::INSTR_FIRST..=kind::INSTR_LAST
            | kind::INSTR_SYSENTER
            | kind::INSTR_TAKEN_JUMP
            | kind::INSTR_UNTAKEN_JUMP => {
                push(out, self.context, Kind::Fetch, addr, size);
                self.last_pc = addr;
                self.last_len = size;
            }
            kind::INSTR_BUNDLE => {
                // `size` instructions following the last one, their lengths
                // in the bytes of `addr`.
                if size > 8 {
                    return Err(DecodeError::byte(
                        at,
                        format!("a bundle of {size} instructions; at most 8 fit a record"),
                    ));
                }
                for length in addr.to_le_bytes().into_iter().take(usize::from(size)) {
                    let pc = self.last_pc.wrapping_add(u64::from(self.last_len));
                    push(out, self.context, Kind::Fetch, pc, u16::from(length));
                    self.last_pc = pc;
                    self.last_len = u16::from(length);
                }
            }
            kind::INSTR_NO_FETCH | kind::INSTR_MAYBE_FETCH => self.counts.non_fetched_instructions += 1,
            kind::PREFETCH_FIRST..=kind::PREFETCH_LAST
            | kind::HARDWARE_PREFETCH
            | kind::LEVEL_PREFETCH_FIRST..=kind::LEVEL_PREFETCH_LAST => self.counts.prefetches += 1,
            kind::FLUSH_FIRST..=kind::FLUSH_LAST => self.counts.flushes += 1,
            kind::ENCODING => self.counts.encodings += 1,
            kind::MARKER => {
                self.counts.markers += 1;
                if size == marker::VERSION {
                    self.check_version(at, addr)?;
                }
            }
            kind::HEADER => {
                if self.version.is_some() {
                    return Err(DecodeError::byte(at, "a second header record"));
                }
                self.check_version(at, addr)?;
                self.version = Some(addr);
                self.counts.bookkeeping += 1;
            }
            kind::FOOTER => {
                self.footer = true;
                self.counts.bookkeeping += 1;
            }
            kind::THREAD => {
                if !self.threads.contains(&addr) {
                    self.threads.push(addr);
                }
                self.counts.bookkeeping += 1;
            }
            kind::THREAD_EXIT => self.counts.bookkeeping += 1,
            kind::PID => {
                self.context = match self.pids.iter().position(|&pid| pid == addr) {
                    Some(index) => index as u16,
                    None if self.pids.len() <= usize::from(u16::MAX) => {
                        self.pids.push(addr);
                        (self.pids.len() - 1) as u16
                    }
                    None => {
                        return Err(DecodeError::byte(at, format!("more than {} processes", u32::from(u16::MAX) + 1)));
                    }
                };
                self.counts.bookkeeping += 1;
            }
            unknown => {
                return Err(DecodeError::byte(
                    at,
                    format!("unknown record type {unknown} (size {size}); expected a drmemtrace type 0 to 49"),
                ))
            }
        }
        Ok(())
    }

    fn check_version(&self, at: u64, version: u64) -> Result<(), DecodeError> {
        if version == 0 || version > NEWEST_VERSION {
            return Err(DecodeError::byte(
                at,
                format!("trace version {version}; this reader knows drmemtrace versions 1 to {NEWEST_VERSION}"),
            ));
        }
        Ok(())
    }

    /// A trace ends with its footer.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.footer {
            Ok(())
        } else {
            Err(DecodeError::byte(
                self.offset,
                "the trace ends without its footer record (type 26): truncated?".to_owned(),
            ))
        }
    }
}

/// Whether the start of a (decompressed) trace is a drmemtrace header
/// record: type 25, size 0, a version this reader could know.
pub(crate) fn looks_like_drmemtrace(start: &[u8]) -> bool {
    start.len() >= RECORD_BYTES
        && u16::from_le_bytes([start[0], start[1]]) == kind::HEADER
        && start[2..4] == [0, 0]
        && (1..=64).contains(&u64::from_le_bytes(start[4..12].try_into().expect("8 bytes")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn record(kind: u16, size: u16, addr: u64) -> Vec<u8> {
        let mut bytes = kind.to_le_bytes().to_vec();
        bytes.extend(size.to_le_bytes());
        bytes.extend(addr.to_le_bytes());
        bytes
    }

    fn decode_all(records: &[Vec<u8>]) -> Result<(Vec<Access>, DrmemtraceCounts), DecodeError> {
        let bytes: Vec<u8> = records.concat();
        let mut decoder = Drmemtrace::default();
        let mut out = Vec::new();
        let consumed = decoder.decode(&bytes, true, &mut out, usize::MAX)?;
        assert_eq!(consumed, bytes.len());
        decoder.finish()?;
        Ok((out, decoder.counts()))
    }

    #[test]
    fn references_bundles_and_processes() {
        let (out, counts) = decode_all(&[
            record(kind::HEADER, 0, 7),
            record(kind::MARKER, marker::VERSION, 7),
            record(kind::THREAD, 4, 100),
            record(kind::PID, 4, 100),
            record(kind::MARKER, marker::TIMESTAMP, 12345),
            record(kind::ENCODING, 4, 0x90),
            record(kind::INSTR_FIRST, 4, 0x1000),
            record(kind::READ, 8, 0x7000),
            // Two more instructions of 2 and 5 bytes after the 4-byte one.
            record(kind::INSTR_BUNDLE, 2, u64::from_le_bytes([2, 5, 0, 0, 0, 0, 0, 0])),
            record(kind::INSTR_NO_FETCH, 2, 0x1006),
            record(3, 64, 0x8000), // an x86 prefetch
            record(kind::PID, 4, 200),
            record(kind::INSTR_TAKEN_JUMP, 2, 0x2000),
            record(kind::WRITE, 4, 0x9000),
            record(kind::PID, 4, 100),
            record(kind::INSTR_SYSENTER, 2, 0x3000),
            record(kind::THREAD_EXIT, 4, 100),
            record(kind::FOOTER, 0, 0),
        ])
        .unwrap();
        let got: Vec<(Kind, u64, u16, u16)> = out.iter().map(|a| (a.kind, a.addr, a.size, a.context)).collect();
        assert_eq!(
            got,
            [
                (Kind::Fetch, 0x1000, 4, 0),
                (Kind::Load, 0x7000, 8, 0),
                (Kind::Fetch, 0x1004, 2, 0),
                (Kind::Fetch, 0x1006, 5, 0),
                (Kind::Fetch, 0x2000, 2, 1),
                (Kind::Store, 0x9000, 4, 1),
                (Kind::Fetch, 0x3000, 2, 0),
            ]
        );
        assert_eq!(
            counts,
            DrmemtraceCounts {
                non_fetched_instructions: 1,
                prefetches: 1,
                flushes: 0,
                markers: 2,
                encodings: 1,
                bookkeeping: 7,
                threads: 1,
                processes: 2,
            }
        );
        assert_eq!(counts.skipped(), 12);
    }

    #[test]
    fn bad_records_are_named_by_their_offset() {
        let header = record(kind::HEADER, 0, 7);
        let footer = record(kind::FOOTER, 0, 0);
        let fails = |records: &[Vec<u8>], says: &str| {
            let err = decode_all(records).unwrap_err();
            assert!(err.message.contains(says), "{}", err.message);
            err
        };
        let err = fails(&[header.clone(), record(77, 0, 0), footer.clone()], "unknown record type 77");
        assert_eq!(err.location, Location::Byte { offset: 12, decompressed: false });
        fails(&[record(kind::HEADER, 0, 8), footer.clone()], "trace version 8");
        fails(&[header.clone(), record(kind::MARKER, marker::VERSION, 9), footer.clone()], "trace version 9");
        fails(&[record(kind::READ, 8, 0x10), footer.clone()], "expected the header record");
        fails(&[header.clone(), record(kind::INSTR_FIRST, 4, 0x10)], "without its footer");
        fails(&[header.clone(), footer.clone(), record(kind::READ, 8, 0)], "after the footer");
        let mut cut = [header, footer].concat();
        cut.truncate(20);
        let mut decoder = Drmemtrace::default();
        let err = decoder.decode(&cut, true, &mut Vec::new(), usize::MAX).unwrap_err();
        assert!(err.message.contains("ends inside a record (8 bytes)"), "{}", err.message);
    }

    #[test]
    fn only_a_header_record_looks_like_drmemtrace() {
        assert!(looks_like_drmemtrace(&record(kind::HEADER, 0, 6)));
        assert!(!looks_like_drmemtrace(&record(kind::HEADER, 0, 0)));
        assert!(!looks_like_drmemtrace(&record(kind::READ, 0, 6)));
        assert!(!looks_like_drmemtrace(&record(kind::HEADER, 0, 6)[..11]));
    }
}
