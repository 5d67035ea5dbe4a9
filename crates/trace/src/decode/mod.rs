//! Format decoders: each turns bytes into [`Access`] records, consuming only
//! whole lines or records, and says where it is for error messages. One
//! closed enum dispatches to them once per chunk of input, not per record.

pub(crate) mod binary;
pub(crate) mod champsim;
pub(crate) mod din;
pub(crate) mod drmemtrace;
pub(crate) mod lackey;
pub(crate) mod pin;
pub(crate) mod text;

use crate::access::Access;
use crate::error::{DecodeError, Location};
use crate::format::Format;

#[derive(Debug)]
pub(crate) enum Decoder {
    Lackey(lackey::Lackey),
    Din(din::Din),
    Pin(pin::Pin),
    ChampSim(champsim::ChampSim),
    Binary(binary::Binary),
    Drmemtrace(drmemtrace::Drmemtrace),
}

/// Most records a decoder may add past the point where it checks for room;
/// a batch within this of its limit counts as full.
pub(crate) const MAX_RECORDS_PER_UNIT: usize = 9;

impl Decoder {
    pub fn new(format: Format) -> Decoder {
        match format {
            Format::Lackey => Decoder::Lackey(lackey::Lackey::default()),
            Format::Din => Decoder::Din(din::Din::default()),
            Format::Pinatrace => Decoder::Pin(pin::Pin::default()),
            Format::ChampSim => Decoder::ChampSim(champsim::ChampSim::new(champsim::Layout::Standard)),
            Format::ChampSimCloudSuite => Decoder::ChampSim(champsim::ChampSim::new(champsim::Layout::CloudSuite)),
            Format::Mmusim => Decoder::Binary(binary::Binary::default()),
            Format::Drmemtrace => Decoder::Drmemtrace(drmemtrace::Drmemtrace::default()),
        }
    }

    /// Decodes from `bytes` into `out` until `out` is within
    /// [`MAX_RECORDS_PER_UNIT`] of `limit` or no whole unit is left; returns
    /// the bytes consumed. `at_end` says `bytes` runs to the end of the trace.
    pub fn decode(
        &mut self,
        bytes: &[u8],
        at_end: bool,
        out: &mut Vec<Access>,
        limit: usize,
    ) -> Result<usize, DecodeError> {
        match self {
            Decoder::Lackey(d) => d.decode(bytes, at_end, out, limit),
            Decoder::Din(d) => d.decode(bytes, at_end, out, limit),
            Decoder::Pin(d) => d.decode(bytes, at_end, out, limit),
            Decoder::ChampSim(d) => d.decode(bytes, at_end, out, limit),
            Decoder::Binary(d) => d.decode(bytes, at_end, out, limit),
            Decoder::Drmemtrace(d) => d.decode(bytes, at_end, out, limit),
        }
    }

    /// Checks what can only be checked at the end of the trace.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self {
            Decoder::Pin(d) => d.finish(),
            Decoder::Binary(d) => d.finish(),
            Decoder::Drmemtrace(d) => d.finish(),
            Decoder::Lackey(_) | Decoder::Din(_) | Decoder::ChampSim(_) => Ok(()),
        }
    }

    /// Where the next undecoded line or record starts.
    pub fn position(&self) -> Location {
        match self {
            Decoder::Lackey(d) => d.position(),
            Decoder::Din(d) => d.position(),
            Decoder::Pin(d) => d.position(),
            Decoder::ChampSim(d) => d.position(),
            Decoder::Binary(d) => d.position(),
            Decoder::Drmemtrace(d) => d.position(),
        }
    }

    /// Records that were read but are not references (Dinero's
    /// cache-maintenance records, drmemtrace's markers and the like).
    pub fn skipped(&self) -> u64 {
        match self {
            Decoder::Din(d) => d.skipped(),
            Decoder::Drmemtrace(d) => d.counts().skipped(),
            _ => 0,
        }
    }

    /// What a drmemtrace trace held besides references.
    pub fn drmemtrace_counts(&self) -> Option<drmemtrace::DrmemtraceCounts> {
        match self {
            Decoder::Drmemtrace(d) => Some(d.counts()),
            _ => None,
        }
    }

    pub fn binary_header(&self) -> Option<&crate::binary::Header> {
        match self {
            Decoder::Binary(d) => d.header(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `bytes` to a decoder the way the reader does, but with the
    /// input cut at `cuts` and the batch limit `limit`.
    fn decode_in_pieces(format: Format, bytes: &[u8], cuts: &[usize], limit: usize) -> Vec<Access> {
        let mut decoder = Decoder::new(format);
        let mut ends: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        ends.push(bytes.len());
        ends.sort_unstable();
        let (mut all, mut start) = (Vec::new(), 0);
        for (i, &end) in ends.iter().enumerate() {
            let at_end = i + 1 == ends.len();
            loop {
                let mut out = Vec::new();
                let consumed = decoder.decode(&bytes[start..end.max(start)], at_end, &mut out, limit).unwrap();
                start += consumed;
                let progressed = !out.is_empty();
                all.extend(out);
                if !progressed || start >= end {
                    break;
                }
            }
        }
        decoder.finish().unwrap();
        assert_eq!(start, bytes.len());
        all
    }

    const TEXTS: [(Format, &str); 4] = [
        (Format::Lackey, "==1== x\nI  0400,3\n L 7ff0,8\n S 7ff8,8\n M 10,4\n\nI  12345678abc,2\n==1== end\n"),
        (Format::Din, "2 400100\n0 7ff0 comment\n4 0\n1 7ff8\ni 10 4\nc 20 40\nw 0x30 0x8\n"),
        (Format::Pinatrace, "0x400: R 0x7ff0\n0x400: W 0x7ff8\n0x404: R 0x10 8\n# comment\n#eof\n"),
        (Format::Lackey, "I  10,1\nI  20,1\nI  30,1\nI  40,1"),
    ];

    proptest! {
        #[test]
        fn text_decodes_the_same_however_it_is_cut(
            which in 0..TEXTS.len(),
            cuts in prop::collection::vec(0usize..200, 0..6),
            limit in 2usize..12,
        ) {
            let (format, text) = TEXTS[which];
            let whole = decode_in_pieces(format, text.as_bytes(), &[], usize::MAX);
            prop_assert_eq!(decode_in_pieces(format, text.as_bytes(), &cuts, limit), whole);
        }

        /// drmemtrace records cut anywhere (a bundle among them, which
        /// yields several references from one record) decode the same.
        #[test]
        fn drmemtrace_decodes_the_same_however_it_is_cut(
            cuts in prop::collection::vec(0usize..160, 0..6),
            limit in 1usize..12,
        ) {
            use drmemtrace::tests::record;
            let bytes: Vec<u8> = [
                record(25, 0, 7),
                record(24, 4, 5),
                record(10, 4, 0x1000),
                record(17, 3, u64::from_le_bytes([1, 2, 3, 0, 0, 0, 0, 0])),
                record(0, 8, 0x7000),
                record(28, 2, 99),
                record(1, 4, 0x7008),
                record(48, 2, 0x1010),
                record(26, 0, 0),
            ]
            .concat();
            let whole = decode_in_pieces(Format::Drmemtrace, &bytes, &[], usize::MAX);
            prop_assert_eq!(whole.len(), 7);
            prop_assert_eq!(decode_in_pieces(Format::Drmemtrace, &bytes, &cuts, limit), whole);
        }
    }
}
