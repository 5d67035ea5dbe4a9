//! ChampSim binary traces: one fixed-size little-endian record per
//! instruction.
//!
//! The standard record (`input_instr`, 64 bytes): `ip` (u64 at 0), `is_branch`
//! (8), `branch_taken` (9), two destination and four source register bytes
//! (10..16), two destination memory addresses (u64 at 16, 24) and four source
//! memory addresses (u64 at 32..64).
//!
//! The CloudSuite record (`cloudsuite_instr`, 96 bytes with C's alignment
//! padding): `ip`, the two branch bytes, four destination and four source
//! register bytes (10..18), padding to 24, four destination addresses
//! (24..56), four source addresses (56..88), and a two-byte address-space id
//! at 88 (read little-endian as the record's context), padding to 96.
//!
//! Each record yields an instruction fetch at `ip` (size unknown), then a load
//! per non-zero source address, then a store per non-zero destination
//! address: an instruction reads its operands before it writes its results.

use crate::access::{Access, Kind};
use crate::error::{DecodeError, Location};

/// The two record layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    Standard,
    CloudSuite,
}

impl Layout {
    pub const fn record_bytes(self) -> usize {
        match self {
            Layout::Standard => 64,
            Layout::CloudSuite => 96,
        }
    }

    /// Most references one record can yield.
    const MAX_REFERENCES: usize = 1 + 4 + 4;

    fn destinations(self) -> (usize, usize) {
        match self {
            Layout::Standard => (16, 2),
            Layout::CloudSuite => (24, 4),
        }
    }

    fn sources(self) -> (usize, usize) {
        match self {
            Layout::Standard => (32, 4),
            Layout::CloudSuite => (56, 4),
        }
    }

    /// Why `record` is implausible as this layout, if it is: the branch
    /// flags are booleans and a taken branch is a branch.
    pub fn implausibility(self, record: &[u8]) -> Option<String> {
        let (is_branch, taken) = (record[8], record[9]);
        if is_branch > 1 || taken > 1 {
            return Some(format!(
                "is_branch = {is_branch}, branch_taken = {taken}; expected 0 or 1 (is this a ChampSim {} trace?)",
                self.name()
            ));
        }
        None
    }

    pub fn name(self) -> &'static str {
        match self {
            Layout::Standard => "standard 64-byte",
            Layout::CloudSuite => "CloudSuite 96-byte",
        }
    }
}

#[derive(Debug)]
pub(crate) struct ChampSim {
    layout: Layout,
    /// Bytes consumed so far.
    offset: u64,
}

fn u64_at(record: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(record[at..at + 8].try_into().expect("eight bytes"))
}

impl ChampSim {
    pub fn new(layout: Layout) -> ChampSim {
        ChampSim { layout, offset: 0 }
    }

    pub fn decode(
        &mut self,
        bytes: &[u8],
        at_end: bool,
        out: &mut Vec<Access>,
        limit: usize,
    ) -> Result<usize, DecodeError> {
        let size = self.layout.record_bytes();
        let mut consumed = 0;
        for record in bytes.chunks_exact(size) {
            if out.len() + Layout::MAX_REFERENCES > limit {
                break;
            }
            if let Some(why) = self.layout.implausibility(record) {
                return Err(DecodeError::byte(self.offset, why));
            }
            let context = match self.layout {
                Layout::Standard => 0,
                Layout::CloudSuite => u16::from_le_bytes([record[88], record[89]]),
            };
            let mut push = |kind, addr| out.push(Access { addr, size: 0, context, vm: 0, kind });
            push(Kind::Fetch, u64_at(record, 0));
            let (at, count) = self.layout.sources();
            for i in 0..count {
                let addr = u64_at(record, at + 8 * i);
                if addr != 0 {
                    push(Kind::Load, addr);
                }
            }
            let (at, count) = self.layout.destinations();
            for i in 0..count {
                let addr = u64_at(record, at + 8 * i);
                if addr != 0 {
                    push(Kind::Store, addr);
                }
            }
            consumed += size;
            self.offset += size as u64;
        }
        let rest = bytes.len() - consumed;
        if at_end && rest > 0 && rest < size {
            return Err(DecodeError::byte(
                self.offset,
                format!("truncated record: {rest} bytes at the end; expected a whole {size}-byte ChampSim record"),
            ));
        }
        Ok(consumed)
    }

    pub fn position(&self) -> Location {
        Location::Byte { offset: self.offset, decompressed: false }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds one record of `layout` (test helper shared with the writer's
    /// tests).
    pub fn record(layout: Layout, ip: u64, sources: &[u64], destinations: &[u64], asid: u16) -> Vec<u8> {
        let mut bytes = vec![0u8; layout.record_bytes()];
        bytes[..8].copy_from_slice(&ip.to_le_bytes());
        let (at, _) = layout.sources();
        for (i, addr) in sources.iter().enumerate() {
            bytes[at + 8 * i..at + 8 * i + 8].copy_from_slice(&addr.to_le_bytes());
        }
        let (at, _) = layout.destinations();
        for (i, addr) in destinations.iter().enumerate() {
            bytes[at + 8 * i..at + 8 * i + 8].copy_from_slice(&addr.to_le_bytes());
        }
        if layout == Layout::CloudSuite {
            bytes[88..90].copy_from_slice(&asid.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn standard_records_yield_fetch_loads_then_stores() {
        let mut bytes = record(Layout::Standard, 0x401000, &[0x1000, 0, 0x2000], &[0x3000], 0);
        bytes.extend(record(Layout::Standard, 0x401004, &[], &[], 0));
        let mut decoder = ChampSim::new(Layout::Standard);
        let mut out = Vec::new();
        assert_eq!(decoder.decode(&bytes, true, &mut out, 100).unwrap(), 128);
        assert_eq!(
            out,
            vec![
                Access::new(Kind::Fetch, 0x401000, 0),
                Access::new(Kind::Load, 0x1000, 0),
                Access::new(Kind::Load, 0x2000, 0),
                Access::new(Kind::Store, 0x3000, 0),
                Access::new(Kind::Fetch, 0x401004, 0),
            ]
        );
    }

    #[test]
    fn cloudsuite_records_carry_their_asid_as_context() {
        let bytes = record(Layout::CloudSuite, 0x10, &[0x20], &[0x30, 0, 0, 0x40], 0x0102);
        let mut decoder = ChampSim::new(Layout::CloudSuite);
        let mut out = Vec::new();
        decoder.decode(&bytes, true, &mut out, 100).unwrap();
        assert_eq!(out.len(), 4);
        assert!(out.iter().all(|a| a.context == 0x0102));
        assert_eq!(out[3], Access { addr: 0x40, size: 0, context: 0x0102, vm: 0, kind: Kind::Store });
    }

    #[test]
    fn a_partial_record_at_the_end_is_truncation_at_its_offset() {
        let mut bytes = record(Layout::Standard, 0x10, &[], &[], 0);
        bytes.extend_from_slice(&[0; 10]);
        let mut decoder = ChampSim::new(Layout::Standard);
        let mut out = Vec::new();
        let consumed = decoder.decode(&bytes, false, &mut out, 100).unwrap();
        assert_eq!(consumed, 64, "without the end of input the partial record waits");
        let err = decoder.decode(&bytes[64..], true, &mut out, 100).unwrap_err();
        assert_eq!(err.location, Location::Byte { offset: 64, decompressed: false });
        assert!(err.message.contains("truncated record"));
    }

    #[test]
    fn implausible_branch_flags_are_reported_with_their_offset() {
        let mut bytes = record(Layout::Standard, 0x10, &[], &[], 0);
        bytes.extend(record(Layout::Standard, 0x14, &[], &[], 0));
        bytes[64 + 8] = 7;
        let mut decoder = ChampSim::new(Layout::Standard);
        let err = decoder.decode(&bytes, true, &mut Vec::new(), 100).unwrap_err();
        assert_eq!(err.location, Location::Byte { offset: 64, decompressed: false });
    }
}
