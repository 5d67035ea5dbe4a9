//! Intel Pin's `pinatrace` example tool output.
//!
//! Each line is `IP: R ADDR` or `IP: W ADDR` as C's `%p` prints pointers
//! (`0x7f3a...`, or `(nil)` for zero), optionally followed by a decimal size
//! (variants of the tool print one). The tool writes `#eof` when the traced
//! program exits, so a file without it was cut short and is an error.
//!
//! The format records data references only. An instruction fetch of `IP`
//! (size unknown) is inferred before the first reference of each new IP, so
//! the instruction count is the number of changes of IP: a lower bound when
//! one instruction runs twice in a row with nothing traced in between.

use super::text::{bad_line, decimal, decode_lines, end_of_line, hex_prefixed, next_line, size_u16, skip_blanks};
use crate::access::{Access, Kind};
use crate::error::{DecodeError, Location};

#[derive(Debug, Default)]
pub(crate) struct Pin {
    line: u64,
    last_ip: Option<u64>,
    /// Line of the `#eof` marker, once seen.
    eof_line: Option<u64>,
}

impl Pin {
    pub fn decode(
        &mut self,
        bytes: &[u8],
        at_end: bool,
        out: &mut Vec<Access>,
        limit: usize,
    ) -> Result<usize, DecodeError> {
        decode_lines(bytes, at_end, out, limit, |s, start, out| {
            self.line += 1;
            self.parse_line(s, start, out)
        })
    }

    fn parse_line(&mut self, s: &[u8], start: usize, out: &mut Vec<Access>) -> Result<usize, DecodeError> {
        let line = self.line;
        let first = skip_blanks(s, start);
        if let Some(next) = end_of_line(s, first) {
            return Ok(next);
        }
        if let Some(eof_line) = self.eof_line {
            return Err(bad_line(s, start, line, &format!("nothing after the #eof marker of line {eof_line}")));
        }
        if s[first] == b'#' {
            if s[first..].starts_with(b"#eof") && end_of_line(s, skip_blanks(s, first + 4)).is_some() {
                self.eof_line = Some(line);
            }
            return Ok(next_line(s, first));
        }
        let (ip, after_ip) = pointer(s, first).ok_or_else(|| bad_line(s, start, line, "an instruction pointer"))?;
        if s.get(after_ip) != Some(&b':') {
            return Err(bad_line(s, start, line, "':' after the instruction pointer"));
        }
        let kind_at = skip_blanks(s, after_ip + 1);
        let kind = match s.get(kind_at) {
            Some(b'R') => Kind::Load,
            Some(b'W') => Kind::Store,
            _ => return Err(bad_line(s, start, line, "R or W after the instruction pointer")),
        };
        let addr_at = skip_blanks(s, kind_at + 1);
        if addr_at == kind_at + 1 {
            return Err(bad_line(s, start, line, "a blank after R or W"));
        }
        let (addr, after_addr) = pointer(s, addr_at).ok_or_else(|| bad_line(s, start, line, "a data address"))?;
        let size_at = skip_blanks(s, after_addr);
        let (size, next) = match end_of_line(s, size_at) {
            Some(next) => (0, next),
            None if size_at > after_addr => {
                let (size, after_size) = decimal(s, size_at)
                    .map_err(|_| bad_line(s, start, line, "a decimal size or the end of the line"))?;
                let size = size_u16(size).ok_or_else(|| bad_line(s, start, line, "a size of at most 65535 bytes"))?;
                let next = end_of_line(s, skip_blanks(s, after_size))
                    .ok_or_else(|| bad_line(s, start, line, "the end of the line after the size"))?;
                (size, next)
            }
            None => return Err(bad_line(s, start, line, "the end of the line after the address")),
        };
        if self.last_ip != Some(ip) {
            self.last_ip = Some(ip);
            out.push(Access::new(Kind::Fetch, ip, 0));
        }
        out.push(Access::new(kind, addr, size));
        Ok(next)
    }

    pub fn position(&self) -> Location {
        Location::Line(self.line + 1)
    }

    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.eof_line.is_none() {
            return Err(DecodeError::line(
                self.line,
                "the trace ends without the #eof line pinatrace writes when the program exits (truncated?)",
            ));
        }
        Ok(())
    }
}

/// A `%p` pointer: `0x` and hex digits, or `(nil)`.
fn pointer(s: &[u8], pos: usize) -> Option<(u64, usize)> {
    if s[pos..].starts_with(b"(nil)") {
        return Some((0, pos + 5));
    }
    if !s[pos..].starts_with(b"0x") {
        return None;
    }
    hex_prefixed(s, pos).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(text: &[u8]) -> Result<Vec<Access>, DecodeError> {
        let mut decoder = Pin::default();
        let mut out = Vec::new();
        let consumed = decoder.decode(text, true, &mut out, usize::MAX)?;
        assert_eq!(consumed, text.len());
        decoder.finish()?;
        Ok(out)
    }

    #[test]
    fn infers_one_fetch_per_change_of_ip() {
        let text = b"0x401000: R 0x7ffd1000\n0x401000: W 0x7ffd1008\n0x401004: W 0x601040 8\n0x401000: R (nil)\n#eof\n";
        let got = decode_all(text).unwrap();
        assert_eq!(
            got,
            vec![
                Access::new(Kind::Fetch, 0x401000, 0),
                Access::new(Kind::Load, 0x7ffd1000, 0),
                Access::new(Kind::Store, 0x7ffd1008, 0),
                Access::new(Kind::Fetch, 0x401004, 0),
                Access::new(Kind::Store, 0x601040, 8),
                Access::new(Kind::Fetch, 0x401000, 0),
                Access::new(Kind::Load, 0, 0),
            ]
        );
    }

    #[test]
    fn a_missing_eof_marker_is_truncation() {
        let mut decoder = Pin::default();
        let mut out = Vec::new();
        decoder.decode(b"0x1: R 0x2\n", true, &mut out, usize::MAX).unwrap();
        let err = decoder.finish().unwrap_err();
        assert!(err.message.contains("#eof"), "{}", err.message);
    }

    #[test]
    fn malformed_lines_and_data_after_eof_are_errors() {
        for (text, line) in [
            (&b"0x1 R 0x2\n#eof\n"[..], 1),
            (b"0x1: X 0x2\n#eof\n", 1),
            (b"0x1: R 2\n#eof\n", 1),
            (b"0x1: R 0x2 big\n#eof\n", 1),
            (b"0x1: R 0x2\n#eof\n0x1: R 0x2\n", 3),
        ] {
            let err = decode_all(text).unwrap_err();
            assert_eq!(err.location, Location::Line(line), "{:?}: {}", String::from_utf8_lossy(text), err.message);
        }
    }
}
