//! Number and line helpers shared by the text formats.

use crate::access::Access;
use crate::error::{show_bytes, DecodeError};

/// Value of each byte as a hex digit, or `NOT_HEX`.
const NOT_HEX: u8 = 0xff;
static HEX_VALUE: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Why a number could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberError {
    NoDigits,
    TooLarge,
}

/// Reads hex digits from `pos`, returning the value and the index of the
/// first byte that is not a hex digit. `s` must hold a non-digit terminator
/// after the digits (every caller parses slices whose lines end in `\n`).
#[inline(always)]
pub(crate) fn hex(s: &[u8], pos: usize) -> Result<(u64, usize), NumberError> {
    let mut value: u64 = 0;
    let mut end = pos;
    while let Some(&byte) = s.get(end) {
        let digit = HEX_VALUE[usize::from(byte)];
        if digit == NOT_HEX {
            break;
        }
        value = (value << 4) | u64::from(digit);
        end += 1;
    }
    match end - pos {
        0 => Err(NumberError::NoDigits),
        n if n > 16 && s[pos..end - 16].iter().any(|&b| b != b'0') => Err(NumberError::TooLarge),
        _ => Ok((value, end)),
    }
}

/// Reads hex digits, allowing a `0x` or `0X` prefix (Dinero's and Pin's
/// notation).
#[inline]
pub(crate) fn hex_prefixed(s: &[u8], pos: usize) -> Result<(u64, usize), NumberError> {
    let start = match (s.get(pos), s.get(pos + 1)) {
        (Some(b'0'), Some(b'x' | b'X')) => pos + 2,
        _ => pos,
    };
    hex(s, start)
}

/// Reads decimal digits from `pos`, returning the value and the index of the
/// first non-digit byte.
#[inline(always)]
pub(crate) fn decimal(s: &[u8], pos: usize) -> Result<(u64, usize), NumberError> {
    let mut value: u64 = 0;
    let mut end = pos;
    while let Some(&byte) = s.get(end) {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        value = value.checked_mul(10).and_then(|v| v.checked_add(u64::from(digit))).ok_or(NumberError::TooLarge)?;
        end += 1;
    }
    if end == pos {
        return Err(NumberError::NoDigits);
    }
    Ok((value, end))
}

/// A size field as the 16 bits a record holds.
pub(crate) fn size_u16(value: u64) -> Option<u16> {
    u16::try_from(value).ok()
}

/// The line that starts at `start`, without its line ending.
pub(crate) fn line_at(s: &[u8], start: usize) -> &[u8] {
    let end = memchr::memchr(b'\n', &s[start..]).map_or(s.len(), |i| start + i);
    let line = &s[start..end];
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Index just past the `\n` that ends the line containing `pos`, or the end
/// of `s`.
pub(crate) fn next_line(s: &[u8], pos: usize) -> usize {
    memchr::memchr(b'\n', &s[pos..]).map_or(s.len(), |i| pos + i + 1)
}

/// Whether `pos` is at the end of a line: `\n`, `\r\n`, or the end of `s`.
/// Returns the start of the next line.
#[inline(always)]
pub(crate) fn end_of_line(s: &[u8], pos: usize) -> Option<usize> {
    match s.get(pos) {
        Some(b'\n') => Some(pos + 1),
        None => Some(pos),
        Some(b'\r') if matches!(s.get(pos + 1), Some(b'\n') | None) => Some((pos + 2).min(s.len())),
        _ => None,
    }
}

/// Index of the first byte at or after `pos` that is not a space or tab.
#[inline]
pub(crate) fn skip_blanks(s: &[u8], mut pos: usize) -> usize {
    while matches!(s.get(pos), Some(b' ' | b'\t')) {
        pos += 1;
    }
    pos
}

/// A malformed-line error that shows the line and says what was expected.
pub(crate) fn bad_line(s: &[u8], line_start: usize, line: u64, expected: &str) -> DecodeError {
    DecodeError::line(line, format!("expected {expected}, found {}", show_bytes(line_at(s, line_start))))
}

/// Decodes the complete lines of `bytes` with `parse_line` (which returns the
/// start of the next line) until `out` holds `limit` records. At the end of
/// the stream a last line without a newline is decoded too. Returns the bytes
/// consumed: always whole lines.
#[inline(always)]
pub(crate) fn decode_lines<F>(
    bytes: &[u8],
    at_end: bool,
    out: &mut Vec<Access>,
    limit: usize,
    mut parse_line: F,
) -> Result<usize, DecodeError>
where
    F: FnMut(&[u8], usize, &mut Vec<Access>) -> Result<usize, DecodeError>,
{
    let complete = if at_end { bytes.len() } else { memchr::memrchr(b'\n', bytes).map_or(0, |i| i + 1) };
    let lines = &bytes[..complete];
    let mut pos = 0;
    // A line can yield up to two records (pinatrace's inferred fetch), so stop
    // while there is still room for both.
    while pos < lines.len() && out.len() + 2 <= limit {
        pos = parse_line(lines, pos, out)?;
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_reads_digits_up_to_a_terminator() {
        assert_eq!(hex(b"04017a0,3", 0), Ok((0x04017a0, 7)));
        assert_eq!(hex(b"1ffefffd08\n", 0), Ok((0x1ffefffd08, 10)));
        assert_eq!(hex(b"DEADbeef", 0), Ok((0xdeadbeef, 8)));
        assert_eq!(hex(b",3", 0), Err(NumberError::NoDigits));
        assert_eq!(hex(b"ffffffffffffffff\n", 0), Ok((u64::MAX, 16)));
        assert_eq!(hex(b"10000000000000000\n", 0), Err(NumberError::TooLarge));
        // Leading zeros beyond sixteen digits do not overflow.
        assert_eq!(hex(b"00000000000000000001\n", 0), Ok((1, 20)));
    }

    #[test]
    fn prefixed_hex_accepts_0x() {
        assert_eq!(hex_prefixed(b"0x7ffd\n", 0), Ok((0x7ffd, 6)));
        assert_eq!(hex_prefixed(b"0X10 ", 0), Ok((0x10, 4)));
        assert_eq!(hex_prefixed(b"0 ", 0), Ok((0, 1)));
        assert_eq!(hex_prefixed(b"0x ", 0), Err(NumberError::NoDigits));
    }

    #[test]
    fn decimal_reads_and_detects_overflow() {
        assert_eq!(decimal(b"512\n", 0), Ok((512, 3)));
        assert_eq!(decimal(b"x", 0), Err(NumberError::NoDigits));
        assert_eq!(decimal(b"99999999999999999999999\n", 0), Err(NumberError::TooLarge));
    }

    #[test]
    fn line_ends_accept_lf_crlf_and_end_of_input() {
        assert_eq!(end_of_line(b"a\nb", 1), Some(2));
        assert_eq!(end_of_line(b"a\r\nb", 1), Some(3));
        assert_eq!(end_of_line(b"a", 1), Some(1));
        assert_eq!(end_of_line(b"a\r", 1), Some(2));
        assert_eq!(end_of_line(b"a b", 1), None);
    }

    #[test]
    fn line_at_strips_the_line_ending() {
        assert_eq!(line_at(b"ab\r\ncd", 0), b"ab");
        assert_eq!(line_at(b"ab\ncd", 3), b"cd");
    }
}
