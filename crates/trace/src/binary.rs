//! mmusim's own binary trace format: a versioned header, then fixed-size
//! little-endian records, so that a trace can be memory-mapped and decoded at
//! memory speed.
//!
//! Header (all integers little-endian):
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 8 | magic `MMUSIMTR` |
//! | 8 | 2 | format version, 1 |
//! | 10 | 2 | record size in bytes, 16 |
//! | 12 | 4 | header size in bytes: where the records start; a multiple of 16 |
//! | 16 | 8 | record count |
//! | 24 | 8 | instruction count (fetch records) |
//! | 32 | 4 | length of the source description |
//! | 36 | 12 | reserved, zero |
//! | 48 | n | source description, UTF-8 (what the trace was made from) |
//! | 48 + n | | zero padding up to the header size |
//!
//! Record (16 bytes): address (u64), size (u16, 0 = unknown), context (u16),
//! VM (u16), kind (u8: 0 fetch, 1 load, 2 store, 3 modify), flags (u8, zero in
//! version 1).

use crate::access::{Access, Kind};

pub const MAGIC: &[u8; 8] = b"MMUSIMTR";
pub const VERSION: u16 = 1;
pub const RECORD_BYTES: usize = 16;
/// Fixed part of the header, before the description.
pub const FIXED_HEADER_BYTES: usize = 48;
/// Longest source description a header may hold.
pub const MAX_DESCRIPTION_BYTES: usize = 64 * 1024;

/// The header's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub records: u64,
    pub instructions: u64,
    pub description: String,
}

impl Header {
    /// Bytes the encoded header takes, records start here.
    pub fn encoded_len(&self) -> usize {
        (FIXED_HEADER_BYTES + self.description.len()).next_multiple_of(RECORD_BYTES)
    }

    pub fn encode(&self) -> Vec<u8> {
        let len = self.encoded_len();
        let mut bytes = Vec::with_capacity(len);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&(RECORD_BYTES as u16).to_le_bytes());
        bytes.extend_from_slice(&(len as u32).to_le_bytes());
        bytes.extend_from_slice(&self.records.to_le_bytes());
        bytes.extend_from_slice(&self.instructions.to_le_bytes());
        bytes.extend_from_slice(&(self.description.len() as u32).to_le_bytes());
        bytes.resize(FIXED_HEADER_BYTES, 0);
        bytes.extend_from_slice(self.description.as_bytes());
        bytes.resize(len, 0);
        bytes
    }

    /// Decodes a header from the start of `bytes`. `Ok(None)` means more
    /// bytes are needed; errors say what is wrong and at which offset.
    pub fn decode(bytes: &[u8]) -> Result<Option<(Header, usize)>, (u64, String)> {
        if bytes.len() < FIXED_HEADER_BYTES {
            return Ok(None);
        }
        let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"));
        if &bytes[..8] != MAGIC {
            return Err((0, format!("expected the magic bytes {:?}", String::from_utf8_lossy(MAGIC))));
        }
        let version = u16_at(8);
        if version != VERSION {
            return Err((8, format!("format version {version}; this mmusim reads version {VERSION}")));
        }
        let record_bytes = u16_at(10);
        if usize::from(record_bytes) != RECORD_BYTES {
            return Err((10, format!("record size {record_bytes}; version 1 records are {RECORD_BYTES} bytes")));
        }
        let header_bytes = u32_at(12) as usize;
        let description_len = u32_at(32) as usize;
        if description_len > MAX_DESCRIPTION_BYTES {
            return Err((32, format!("description of {description_len} bytes; at most {MAX_DESCRIPTION_BYTES}")));
        }
        let expected_header = (FIXED_HEADER_BYTES + description_len).next_multiple_of(RECORD_BYTES);
        if header_bytes != expected_header {
            return Err((
                12,
                format!("header size {header_bytes}; a {description_len}-byte description makes it {expected_header}"),
            ));
        }
        if bytes[36..48].iter().any(|&b| b != 0) {
            return Err((36, "non-zero reserved header bytes; expected zeros in version 1".into()));
        }
        if bytes.len() < header_bytes {
            return Ok(None);
        }
        let description = std::str::from_utf8(&bytes[FIXED_HEADER_BYTES..FIXED_HEADER_BYTES + description_len])
            .map_err(|e| (FIXED_HEADER_BYTES as u64, format!("source description is not UTF-8: {e}")))?
            .to_owned();
        let header = Header { records: u64_at(16), instructions: u64_at(24), description };
        Ok(Some((header, header_bytes)))
    }
}

/// Encodes one record.
#[inline(always)]
pub fn encode_record(access: &Access) -> [u8; RECORD_BYTES] {
    let mut bytes = [0u8; RECORD_BYTES];
    bytes[..8].copy_from_slice(&access.addr.to_le_bytes());
    bytes[8..10].copy_from_slice(&access.size.to_le_bytes());
    bytes[10..12].copy_from_slice(&access.context.to_le_bytes());
    bytes[12..14].copy_from_slice(&access.vm.to_le_bytes());
    bytes[14] = access.kind as u8;
    bytes
}

/// A record whose kind byte (0 to 3) and flags byte have been checked.
#[inline(always)]
pub fn decode_checked_record(bytes: &[u8; RECORD_BYTES]) -> Access {
    const KINDS: [Kind; 4] = Kind::ALL;
    Access {
        addr: u64::from_le_bytes(bytes[..8].try_into().expect("eight bytes")),
        size: u16::from_le_bytes([bytes[8], bytes[9]]),
        context: u16::from_le_bytes([bytes[10], bytes[11]]),
        vm: u16::from_le_bytes([bytes[12], bytes[13]]),
        kind: KINDS[usize::from(bytes[14] & 3)],
    }
}

/// Decodes one 16-byte record; `Err` says which byte is invalid.
#[inline(always)]
pub fn decode_record(bytes: &[u8; RECORD_BYTES]) -> Result<Access, String> {
    let kind = Kind::from_byte(bytes[14]).ok_or_else(|| format!("kind byte {}; expected 0 to 3", bytes[14]))?;
    if bytes[15] != 0 {
        return Err(format!("flags byte {}; expected 0 in version 1", bytes[15]));
    }
    Ok(Access {
        addr: u64::from_le_bytes(bytes[..8].try_into().expect("eight bytes")),
        size: u16::from_le_bytes([bytes[8], bytes[9]]),
        context: u16::from_le_bytes([bytes[10], bytes[11]]),
        vm: u16::from_le_bytes([bytes[12], bytes[13]]),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_is_aligned() {
        let header = Header { records: 7, instructions: 3, description: "made by hand".into() };
        let bytes = header.encode();
        assert_eq!(bytes.len() % RECORD_BYTES, 0);
        assert_eq!(bytes.len(), 64);
        assert_eq!(Header::decode(&bytes).unwrap(), Some((header, 64)));
        assert_eq!(Header::decode(&bytes[..40]).unwrap(), None);
        assert_eq!(Header::decode(&bytes[..50]).unwrap(), None);
    }

    #[test]
    fn header_errors_name_the_offending_field() {
        let good = Header { records: 1, instructions: 0, description: String::new() }.encode();
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(Header::decode(&bad).unwrap_err().0, 0);
        let mut bad = good.clone();
        bad[8] = 9;
        assert!(Header::decode(&bad).unwrap_err().1.contains("version 9"));
        let mut bad = good.clone();
        bad[10] = 32;
        assert_eq!(Header::decode(&bad).unwrap_err().0, 10);
        let mut bad = good;
        bad[12] = 64;
        assert_eq!(Header::decode(&bad).unwrap_err().0, 12);
    }

    #[test]
    fn records_round_trip_and_bad_kinds_are_rejected() {
        let access = Access { addr: 0x7fff_1234_5678, size: 512, context: 3, vm: 2, kind: Kind::Modify };
        let mut bytes = encode_record(&access);
        assert_eq!(decode_record(&bytes), Ok(access));
        bytes[14] = 4;
        assert!(decode_record(&bytes).unwrap_err().contains("kind byte 4"));
        bytes[14] = 0;
        bytes[15] = 1;
        assert!(decode_record(&bytes).unwrap_err().contains("flags byte 1"));
    }
}
