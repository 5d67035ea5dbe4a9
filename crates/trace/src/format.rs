//! Trace formats, and telling them apart by content.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::decode::champsim::Layout;
use crate::decode::Decoder;
use crate::error::Location;

/// The formats mmusim reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Valgrind Lackey `--trace-mem=yes` text.
    Lackey,
    /// Dinero IV din text, traditional (`label addr`) or extended
    /// (`type addr size`).
    Din,
    /// Intel Pin `pinatrace` text.
    Pinatrace,
    /// ChampSim's 64-byte `input_instr` records.
    #[serde(rename = "champsim")]
    ChampSim,
    /// ChampSim's 96-byte CloudSuite records with address-space ids.
    #[serde(rename = "champsim-cloudsuite")]
    ChampSimCloudSuite,
    /// mmusim's own binary format.
    Mmusim,
    /// DynamoRIO drmemtrace offline traces (post-processed, 64-bit).
    Drmemtrace,
}

impl Format {
    pub const ALL: [Format; 7] = [
        Format::Lackey,
        Format::Din,
        Format::Pinatrace,
        Format::ChampSim,
        Format::ChampSimCloudSuite,
        Format::Mmusim,
        Format::Drmemtrace,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Format::Lackey => "lackey",
            Format::Din => "din",
            Format::Pinatrace => "pinatrace",
            Format::ChampSim => "champsim",
            Format::ChampSimCloudSuite => "champsim-cloudsuite",
            Format::Mmusim => "mmusim",
            Format::Drmemtrace => "drmemtrace",
        }
    }

    /// Whether lines (rather than byte offsets) locate errors.
    pub fn is_text(self) -> bool {
        matches!(self, Format::Lackey | Format::Din | Format::Pinatrace)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        Format::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
            format!("unknown trace format {s:?}; expected one of {}", names.join(", "))
        })
    }
}

/// Text lines looked at to tell text formats apart.
const SAMPLE_LINES: usize = 200;
/// Bytes looked at to tell formats apart.
const SAMPLE_BYTES: usize = 64 * 1024;
/// Records looked at to tell the ChampSim layouts apart.
const SAMPLE_RECORDS: usize = 64;

/// Tells the format from the first bytes of a (decompressed) trace. `whole`
/// says `start` is the entire trace. The file name only breaks a tie between
/// the two ChampSim layouts, which data alone cannot always do.
pub(crate) fn detect(start: &[u8], whole: bool, path: &Path) -> Result<Format, String> {
    if start.starts_with(crate::binary::MAGIC) {
        return Ok(Format::Mmusim);
    }
    if crate::decode::drmemtrace::looks_like_drmemtrace(start) {
        return Ok(Format::Drmemtrace);
    }
    let sample = &start[..start.len().min(SAMPLE_BYTES)];
    if looks_like_text(sample) {
        detect_text(sample, whole && sample.len() == start.len())
    } else {
        detect_champsim(start, whole, path)
    }
}

/// Text is valid UTF-8 (a sample may end inside a character) without
/// control characters other than line ends and tabs.
fn looks_like_text(sample: &[u8]) -> bool {
    let valid = match std::str::from_utf8(sample) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && e.valid_up_to() + 4 > sample.len(),
    };
    valid && sample.iter().all(|&b| b >= 0x20 || matches!(b, b'\n' | b'\r' | b'\t'))
}

/// Runs each text decoder over the sample's first lines. The format is the
/// one whose first error comes latest: a trace with a bad line among its
/// first few is still told apart, and then reading reports that line.
fn detect_text(sample: &[u8], whole: bool) -> Result<Format, String> {
    let cut = if whole { sample.len() } else { memchr::memrchr(b'\n', sample).map_or(0, |i| i + 1) };
    let lines_end = memchr::memchr_iter(b'\n', &sample[..cut]).nth(SAMPLE_LINES - 1).map_or(cut, |i| i + 1);
    let lines = &sample[..lines_end];
    if lines.iter().all(u8::is_ascii_whitespace) {
        return Err("the start of the trace holds no complete text line to tell its format by".into());
    }
    let mut reach = Vec::new();
    let mut rejections = Vec::new();
    for format in [Format::Lackey, Format::Din, Format::Pinatrace] {
        let mut decoder = Decoder::new(format);
        let mut out = Vec::new();
        match decoder.decode(lines, whole, &mut out, usize::MAX) {
            Ok(_) => reach.push((u64::MAX, format)),
            Err(e) => {
                if let Location::Line(line) = e.location {
                    reach.push((line, format));
                }
                rejections.push(format!("not {format} ({}: {})", e.location, e.message));
            }
        }
    }
    reach.sort_unstable_by_key(|&(line, _)| std::cmp::Reverse(line));
    match reach[..] {
        [(best, format), (second, _), ..] if best > second && best > 1 => Ok(format),
        [(u64::MAX, _), (u64::MAX, _), ..] => {
            let names: Vec<_> = reach.iter().filter(|(l, _)| *l == u64::MAX).map(|(_, f)| f.name()).collect();
            Err(format!("the start of the trace reads as several formats ({})", names.join(", ")))
        }
        _ => Err(format!("the start of the trace is text of no known format: {}", rejections.join("; "))),
    }
}

/// Binary data without mmusim's magic: ChampSim, in whichever layout reads
/// as plausible records.
fn detect_champsim(start: &[u8], whole: bool, path: &Path) -> Result<Format, String> {
    let plausible = |layout: Layout| {
        let size = layout.record_bytes();
        if start.len() < size || (whole && !start.len().is_multiple_of(size)) {
            return false;
        }
        start
            .chunks_exact(size)
            .take(SAMPLE_RECORDS)
            .all(|record| layout.implausibility(record).is_none() && record[..8] != [0; 8])
    };
    let named_cloudsuite = path.to_string_lossy().to_ascii_lowercase().contains("cloudsuite");
    match (plausible(Layout::Standard), plausible(Layout::CloudSuite)) {
        (true, false) => Ok(Format::ChampSim),
        (false, true) => Ok(Format::ChampSimCloudSuite),
        (true, true) if named_cloudsuite => Ok(Format::ChampSimCloudSuite),
        (true, true) => Ok(Format::ChampSim),
        (false, false) => Err("binary data that is neither an mmusim trace (no magic bytes) nor ChampSim records \
             (branch flags other than 0 or 1, or a zero instruction pointer)"
            .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::champsim::tests::record;

    fn detect_text_only(text: &str) -> Result<Format, String> {
        detect(text.as_bytes(), true, Path::new("t"))
    }

    #[test]
    fn text_formats_are_told_apart() {
        assert_eq!(detect_text_only("==1== Lackey\nI  0400,3\n L 10,4\n"), Ok(Format::Lackey));
        assert_eq!(detect_text_only("2 400100\n0 7ff0\n"), Ok(Format::Din));
        assert_eq!(detect_text_only("i 400100 4\nr 7ff0 8\n"), Ok(Format::Din));
        assert_eq!(detect_text_only("0x401000: R 0x7ffd1000\n#eof\n"), Ok(Format::Pinatrace));
    }

    #[test]
    fn unknown_text_names_each_rejection() {
        let err = detect_text_only("hello world\n").unwrap_err();
        assert!(err.contains("not lackey") && err.contains("not din") && err.contains("not pinatrace"), "{err}");
    }

    #[test]
    fn champsim_layouts_are_told_apart_by_plausibility() {
        let standard: Vec<u8> =
            (0..8u64).flat_map(|i| record(Layout::Standard, 0x400000 + i, &[0x1000], &[], 0)).collect();
        assert_eq!(detect(&standard, true, Path::new("t")), Ok(Format::ChampSim));
        let cloud: Vec<u8> =
            (0..8u64).flat_map(|i| record(Layout::CloudSuite, 0x400000 + i, &[0x7ff123], &[0x1234], 3)).collect();
        assert_eq!(detect(&cloud, true, Path::new("t")), Ok(Format::ChampSimCloudSuite));
    }

    #[test]
    fn format_names_parse_back() {
        for format in Format::ALL {
            assert_eq!(format.name().parse::<Format>(), Ok(format));
        }
        assert!("dinero".parse::<Format>().unwrap_err().contains("expected one of"));
    }
}
