//! Dinero IV input, both of its text forms, told apart line by line.
//!
//! Traditional din (`label address`): the label is 0 read, 1 write,
//! 2 instruction fetch, 3 miscellaneous (a read that is not prefetched),
//! 4 an escape that flushes the cache; the address is hex. The form carries no
//! size.
//!
//! Extended din (`type address size`): the type is one letter, `r` read,
//! `w` write, `i` instruction fetch, `m` miscellaneous read, `c` copy-back,
//! `v` invalidate (either case); address and size are hex.
//!
//! Numbers may carry a `0x` prefix and anything after the last field is a
//! comment, as in Dinero. Records that are cache-maintenance commands rather
//! than references (label 4, types `c` and `v`) are counted and skipped: they
//! translate no address.

use super::text::{bad_line, decode_lines, end_of_line, hex_prefixed, size_u16, skip_blanks, NumberError};
use crate::access::{Access, Kind};
use crate::error::{DecodeError, Location};

#[derive(Debug, Default)]
pub(crate) struct Din {
    line: u64,
    skipped: u64,
}

/// What one din record turned out to be.
enum Record {
    Reference(Kind),
    Maintenance,
}

impl Din {
    pub fn decode(
        &mut self,
        bytes: &[u8],
        at_end: bool,
        out: &mut Vec<Access>,
        limit: usize,
    ) -> Result<usize, DecodeError> {
        decode_lines(bytes, at_end, out, limit, |s, start, out| {
            self.line += 1;
            let (record, addr, size, next) = match parse_line(s, start, self.line)? {
                Some(parsed) => parsed,
                None => return Ok(super::text::next_line(s, start)),
            };
            match record {
                Record::Reference(kind) => out.push(Access::new(kind, addr, size)),
                Record::Maintenance => self.skipped += 1,
            }
            Ok(next)
        })
    }

    pub fn position(&self) -> Location {
        Location::Line(self.line + 1)
    }

    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// Parses one line: `None` for a blank line, else the record, its address,
/// its size (0 when the form has none) and the start of the next line.
fn parse_line(s: &[u8], start: usize, line: u64) -> Result<Option<(Record, u64, u16, usize)>, DecodeError> {
    let first = skip_blanks(s, start);
    if end_of_line(s, first).is_some() {
        return Ok(None);
    }
    let label_byte = s[first];
    if label_byte.is_ascii_digit() {
        let (label, after_label) = number(s, start, first, line, "a hex label")?;
        let record = match label {
            0 | 3 => Record::Reference(Kind::Load),
            1 => Record::Reference(Kind::Store),
            2 => Record::Reference(Kind::Fetch),
            4 => Record::Maintenance,
            _ => {
                return Err(DecodeError::line(
                    line,
                    format!(
                        "unknown din label {label}: expected 0 (read), 1 (write), 2 (instruction fetch), \
                         3 (miscellaneous read) or 4 (cache flush)"
                    ),
                ))
            }
        };
        let addr_start = blank_then(s, start, after_label, line, "a blank and a hex address after the label")?;
        let (addr, after_addr) = number(s, start, addr_start, line, "a hex address after the label")?;
        let next = rest_of_line(s, start, after_addr, line, "a blank or the end of the line after the address")?;
        return Ok(Some((record, addr, 0, next)));
    }
    let record = match label_byte.to_ascii_lowercase() {
        b'r' | b'm' => Record::Reference(Kind::Load),
        b'w' => Record::Reference(Kind::Store),
        b'i' => Record::Reference(Kind::Fetch),
        b'c' | b'v' => Record::Maintenance,
        _ => {
            return Err(bad_line(
                s,
                start,
                line,
                "a din label (0-4) or an extended din access type (r, w, i, m, c or v)",
            ))
        }
    };
    let addr_start = blank_then(s, start, first + 1, line, "a blank and a hex address after the access type")?;
    let (addr, after_addr) = number(s, start, addr_start, line, "a hex address after the access type")?;
    let size_start = blank_then(s, start, after_addr, line, "a blank and a hex size after the address")?;
    let (size, after_size) = number(s, start, size_start, line, "a hex size after the address")?;
    let Some(size) = size_u16(size) else {
        return Err(bad_line(s, start, line, "a size of at most 0xffff bytes"));
    };
    let next = rest_of_line(s, start, after_size, line, "a blank or the end of the line after the size")?;
    Ok(Some((record, addr, size, next)))
}

fn number(s: &[u8], line_start: usize, pos: usize, line: u64, what: &str) -> Result<(u64, usize), DecodeError> {
    match hex_prefixed(s, pos) {
        Ok(parsed) => Ok(parsed),
        Err(NumberError::NoDigits) => Err(bad_line(s, line_start, line, what)),
        Err(NumberError::TooLarge) => Err(bad_line(s, line_start, line, "a number of at most 16 hex digits")),
    }
}

/// Requires at least one blank at `pos` and returns the first byte after the
/// blanks, which must not end the line.
fn blank_then(s: &[u8], line_start: usize, pos: usize, line: u64, what: &str) -> Result<usize, DecodeError> {
    let after = skip_blanks(s, pos);
    if after == pos || end_of_line(s, after).is_some() {
        return Err(bad_line(s, line_start, line, what));
    }
    Ok(after)
}

/// Accepts the end of the line, or a blank and a comment; returns the start
/// of the next line.
fn rest_of_line(s: &[u8], line_start: usize, pos: usize, line: u64, what: &str) -> Result<usize, DecodeError> {
    if let Some(next) = end_of_line(s, pos) {
        return Ok(next);
    }
    if matches!(s[pos], b' ' | b'\t') {
        return Ok(super::text::next_line(s, pos));
    }
    Err(bad_line(s, line_start, line, what))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(text: &[u8]) -> Result<(Vec<Access>, u64), DecodeError> {
        let mut decoder = Din::default();
        let mut out = Vec::new();
        let consumed = decoder.decode(text, true, &mut out, usize::MAX)?;
        assert_eq!(consumed, text.len());
        Ok((out, decoder.skipped()))
    }

    #[test]
    fn numeric_form_maps_labels_and_ignores_comments() {
        let (got, skipped) = decode_all(b"2 0\n0 1000\n0 70f60888 a comment\n1 0x70f60890\n3 2cb5\n4 0\n").unwrap();
        assert_eq!(
            got,
            vec![
                Access::new(Kind::Fetch, 0, 0),
                Access::new(Kind::Load, 0x1000, 0),
                Access::new(Kind::Load, 0x70f60888, 0),
                Access::new(Kind::Store, 0x70f60890, 0),
                Access::new(Kind::Load, 0x2cb5, 0),
            ]
        );
        assert_eq!(skipped, 1);
    }

    #[test]
    fn extended_form_reads_sizes_in_hex_and_skips_maintenance() {
        let (got, skipped) =
            decode_all(b"i 400100 4\nR 0x7ff0 8\nw 7ff8 0x10 rest\nm 10 1\nc 20 40\nV 40 40\n").unwrap();
        assert_eq!(
            got,
            vec![
                Access::new(Kind::Fetch, 0x400100, 4),
                Access::new(Kind::Load, 0x7ff0, 8),
                Access::new(Kind::Store, 0x7ff8, 16),
                Access::new(Kind::Load, 0x10, 1),
            ]
        );
        assert_eq!(skipped, 2);
    }

    #[test]
    fn unknown_labels_and_types_are_errors() {
        let err = decode_all(b"0 10\n7 20\n").unwrap_err();
        assert_eq!(err.location, Location::Line(2));
        assert!(err.message.starts_with("unknown din label 7"), "{}", err.message);
        let err = decode_all(b"x 10 4\n").unwrap_err();
        assert!(err.message.contains("extended din access type"), "{}", err.message);
    }

    #[test]
    fn missing_fields_are_errors() {
        for text in [&b"0\n"[..], b"0 \n", b"r 10\n", b"r 10 \n", b"0 1g\n", b"r 10 10000\n"] {
            let err = decode_all(text).unwrap_err();
            assert_eq!(err.location, Location::Line(1), "{:?}", String::from_utf8_lossy(text));
        }
    }
}
