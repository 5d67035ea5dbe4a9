//! Valgrind Lackey `--trace-mem=yes` text.
//!
//! Lackey writes one reference per line: `I  ADDR,SIZE` for an instruction
//! fetch, ` L ADDR,SIZE`, ` S ADDR,SIZE` and ` M ADDR,SIZE` for a load, a store
//! and a modify. ADDR is hex (at least 8 digits, more when the address needs
//! them), SIZE decimal. Valgrind's own messages (`==PID== ...`) are skipped.

use super::text::{bad_line, decimal, decode_lines, end_of_line, hex, next_line, size_u16, NumberError};
use crate::access::{Access, Kind};
use crate::error::{DecodeError, Location};

#[derive(Debug, Default)]
pub(crate) struct Lackey {
    /// Lines consumed so far.
    line: u64,
}

impl Lackey {
    pub fn decode(
        &mut self,
        bytes: &[u8],
        at_end: bool,
        out: &mut Vec<Access>,
        limit: usize,
    ) -> Result<usize, DecodeError> {
        decode_lines(bytes, at_end, out, limit, |s, start, out| {
            self.line += 1;
            parse_line(s, start, self.line, out)
        })
    }

    pub fn position(&self) -> Location {
        Location::Line(self.line + 1)
    }
}

/// Parses the line at `start`, pushing its reference (if it has one), and
/// returns the start of the next line.
#[inline(always)]
fn parse_line(s: &[u8], start: usize, line: u64, out: &mut Vec<Access>) -> Result<usize, DecodeError> {
    let kind = match (s.get(start), s.get(start + 1), s.get(start + 2)) {
        (Some(b'I'), Some(b' '), Some(b' ')) => Kind::Fetch,
        (Some(b' '), Some(b'L'), Some(b' ')) => Kind::Load,
        (Some(b' '), Some(b'S'), Some(b' ')) => Kind::Store,
        (Some(b' '), Some(b'M'), Some(b' ')) => Kind::Modify,
        (Some(b'='), Some(b'='), _) => return Ok(next_line(s, start)),
        _ => {
            if let Some(next) = end_of_line(s, start) {
                return Ok(next); // a blank line carries nothing
            }
            return Err(bad_line(s, start, line, "a Lackey line (\"I  \", \" L \", \" S \", \" M \" or \"==\")"));
        }
    };
    let (addr, comma) = match hex(s, start + 3) {
        Ok(parsed) => parsed,
        Err(NumberError::NoDigits) => return Err(bad_line(s, start, line, "a hex address after the access type")),
        Err(NumberError::TooLarge) => return Err(bad_line(s, start, line, "an address of at most 16 hex digits")),
    };
    if s.get(comma) != Some(&b',') {
        return Err(bad_line(s, start, line, "',' after the address"));
    }
    let (size, end) = match decimal(s, comma + 1) {
        Ok((size, end)) => match size_u16(size) {
            Some(size) => (size, end),
            None => return Err(bad_line(s, start, line, "a size of at most 65535 bytes")),
        },
        Err(_) => return Err(bad_line(s, start, line, "a decimal size after ','")),
    };
    let Some(next) = end_of_line(s, end) else {
        return Err(bad_line(s, start, line, "the end of the line after the size"));
    };
    out.push(Access::new(kind, addr, size));
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(text: &[u8]) -> Result<Vec<Access>, DecodeError> {
        let mut decoder = Lackey::default();
        let mut out = Vec::new();
        let consumed = decoder.decode(text, true, &mut out, usize::MAX)?;
        assert_eq!(consumed, text.len());
        Ok(out)
    }

    #[test]
    fn reads_every_kind_and_skips_valgrind_lines() {
        let text = b"==123== Lackey, an example Valgrind tool\nI  04017a0,3\n S 1ffefffd08,8\n L 04222cac,4\n M 0421d0e0,4\n==123== \n";
        let got = decode_all(text).unwrap();
        assert_eq!(
            got,
            vec![
                Access::new(Kind::Fetch, 0x04017a0, 3),
                Access::new(Kind::Store, 0x1ffefffd08, 8),
                Access::new(Kind::Load, 0x04222cac, 4),
                Access::new(Kind::Modify, 0x0421d0e0, 4),
            ]
        );
    }

    #[test]
    fn last_line_may_lack_a_newline_and_crlf_is_accepted() {
        let got = decode_all(b"I  10,2\r\n L 20,8").unwrap();
        assert_eq!(got, vec![Access::new(Kind::Fetch, 0x10, 2), Access::new(Kind::Load, 0x20, 8)]);
    }

    #[test]
    fn addresses_wider_than_32_bits_are_kept() {
        let got = decode_all(b" L 7ff0001234abcd,8\n").unwrap();
        assert_eq!(got[0].addr, 0x7ff0001234abcd);
    }

    #[test]
    fn stops_at_the_limit_and_consumes_whole_lines_only() {
        let text = b"I  10,1\nI  20,1\nI  30,1\nI  40";
        let mut decoder = Lackey::default();
        let mut out = Vec::new();
        // A limit of 3 leaves room for two more records only while fewer than
        // two are held: every text decoder keeps space for pinatrace's pair.
        let consumed = decoder.decode(text, false, &mut out, 3).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(&text[consumed..], b"I  30,1\nI  40");
        let consumed2 = decoder.decode(&text[consumed..], false, &mut out, 100).unwrap();
        assert_eq!(out.len(), 3, "the unterminated last line waits for more input");
        assert_eq!(&text[consumed + consumed2..], b"I  40");
    }

    #[test]
    fn malformed_lines_name_the_line_and_expectation() {
        let cases: [(&[u8], &str); 6] = [
            (b"I  10,1\nX  20,1\n", "line 2: expected a Lackey line"),
            (b"I  zz,1\n", "line 1: expected a hex address"),
            (b"I  10;1\n", "line 1: expected ',' after the address"),
            (b"I  10,\n", "line 1: expected a decimal size"),
            (b"I  10,70000\n", "line 1: expected a size of at most 65535"),
            (b" L 10,4 junk\n", "line 1: expected the end of the line"),
        ];
        for (text, want) in cases {
            let err = decode_all(text).unwrap_err();
            let shown = format!("{}: {}", err.location, err.message);
            assert!(shown.starts_with(want), "{shown:?} should start with {want:?}");
        }
    }

    #[test]
    fn a_short_line_at_the_end_of_a_chunk_is_an_error_not_a_panic() {
        let err = decode_all(b"I").unwrap_err();
        assert_eq!(err.location, Location::Line(1));
        let err = decode_all(b"I \n").unwrap_err();
        assert_eq!(err.location, Location::Line(1));
    }
}
