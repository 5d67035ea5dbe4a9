//! Decoder for mmusim's binary format (see [`crate::binary`]).

use crate::access::Access;
use crate::binary::{decode_checked_record, decode_record, Header, RECORD_BYTES};
use crate::error::{DecodeError, Location};

#[derive(Debug, Default)]
pub(crate) struct Binary {
    header: Option<Header>,
    /// Bytes consumed so far, header included.
    offset: u64,
    records: u64,
}

impl Binary {
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    pub fn decode(
        &mut self,
        bytes: &[u8],
        at_end: bool,
        out: &mut Vec<Access>,
        limit: usize,
    ) -> Result<usize, DecodeError> {
        let mut consumed = 0;
        if self.header.is_none() {
            match Header::decode(bytes) {
                Ok(Some((header, len))) => {
                    self.header = Some(header);
                    self.offset = len as u64;
                    consumed = len;
                }
                Ok(None) if at_end => {
                    return Err(DecodeError::byte(
                        bytes.len() as u64,
                        "truncated header: the file ends inside the mmusim binary header",
                    ))
                }
                Ok(None) => return Ok(0),
                Err((offset, message)) => return Err(DecodeError::byte(offset, message)),
            }
        }
        let room = limit.saturating_sub(out.len());
        let whole = (bytes.len() - consumed) / RECORD_BYTES;
        let take = whole.min(room);
        let records = &bytes[consumed..consumed + take * RECORD_BYTES];
        // Check the whole run first (a loop the compiler vectorizes), then
        // convert it without a check per record; only a run with a bad
        // record goes record by record, to name the first.
        let bad = records.chunks_exact(RECORD_BYTES).fold(false, |bad, r| bad | (r[14] > 3) | (r[15] != 0));
        if bad {
            for (i, record) in records.chunks_exact(RECORD_BYTES).enumerate() {
                let record: &[u8; RECORD_BYTES] = record.try_into().expect("exact chunk");
                if let Err(why) = decode_record(record) {
                    let offset = self.offset + (i * RECORD_BYTES) as u64;
                    return Err(DecodeError::byte(offset, format!("record {}: {why}", self.records + i as u64)));
                }
            }
        }
        out.extend(records.chunks_exact(RECORD_BYTES).map(|r| {
            let r: &[u8; RECORD_BYTES] = r.try_into().expect("exact chunk");
            decode_checked_record(r)
        }));
        consumed += take * RECORD_BYTES;
        self.offset += (take * RECORD_BYTES) as u64;
        self.records += take as u64;
        let rest = bytes.len() - consumed;
        if at_end && take == whole && rest > 0 {
            return Err(DecodeError::byte(
                self.offset,
                format!("truncated record: {rest} bytes at the end; expected a whole {RECORD_BYTES}-byte record"),
            ));
        }
        Ok(consumed)
    }

    pub fn position(&self) -> Location {
        Location::Byte { offset: self.offset, decompressed: false }
    }

    /// Checks that the records seen are the records the header promised.
    pub fn finish(&self) -> Result<(), DecodeError> {
        let Some(header) = &self.header else {
            return Err(DecodeError::byte(0, "missing header"));
        };
        if header.records != self.records {
            return Err(DecodeError::byte(
                self.offset,
                format!(
                    "the header promises {} records but the file holds {}{}",
                    header.records,
                    self.records,
                    if self.records < header.records { " (truncated?)" } else { "" }
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Kind;
    use crate::binary::encode_record;

    fn file(records: &[Access], promised: u64) -> Vec<u8> {
        let mut bytes = Header { records: promised, instructions: 0, description: "test".into() }.encode();
        for record in records {
            bytes.extend_from_slice(&encode_record(record));
        }
        bytes
    }

    #[test]
    fn decodes_records_in_limited_batches() {
        let records: Vec<Access> = (0..10).map(|i| Access::new(Kind::Load, i * 4096, 8)).collect();
        let bytes = file(&records, 10);
        let mut decoder = Binary::default();
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let before = out.len();
            pos += decoder.decode(&bytes[pos..], true, &mut out, before + 3).unwrap();
        }
        decoder.finish().unwrap();
        assert_eq!(out, records);
    }

    #[test]
    fn record_count_mismatch_and_partial_records_are_errors() {
        let records = [Access::new(Kind::Fetch, 1, 1); 3];
        let bytes = file(&records, 4);
        let mut decoder = Binary::default();
        decoder.decode(&bytes, true, &mut Vec::new(), 100).unwrap();
        let err = decoder.finish().unwrap_err();
        assert!(err.message.contains("promises 4 records but the file holds 3"), "{}", err.message);

        let mut bytes = file(&records, 3);
        bytes.pop();
        let mut decoder = Binary::default();
        let err = decoder.decode(&bytes, true, &mut Vec::new(), 100).unwrap_err();
        assert_eq!(err.location, Location::Byte { offset: 64 + 32, decompressed: false });
    }

    #[test]
    fn a_bad_record_names_its_index_and_offset() {
        let records = [Access::new(Kind::Fetch, 1, 1); 3];
        let mut bytes = file(&records, 3);
        bytes[64 + 16 + 14] = 9;
        let err = Binary::default().decode(&bytes, true, &mut Vec::new(), 100).unwrap_err();
        assert_eq!(err.location, Location::Byte { offset: 80, decompressed: false });
        assert!(err.message.starts_with("record 1: kind byte 9"), "{}", err.message);
    }
}
