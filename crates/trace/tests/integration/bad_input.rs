//! Every class of bad input is an error naming the file and the place, never
//! a panic and never a silently shorter trace.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common::{read_all, sample};
use mmusim_trace::{Access, Format, Location, TraceError, TraceReader};

/// Reads the whole file, expecting an error.
fn error_of(path: &Path, format: Option<Format>) -> TraceError {
    match TraceReader::open_as(path, format).and_then(read_all) {
        Ok(records) => panic!("{} read as {} records; expected an error", path.display(), records.len()),
        Err(e) => e,
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The first `lines` lines of the sort sample, as plain Lackey text.
fn lackey_prefix(lines: usize) -> Vec<u8> {
    let reader = TraceReader::open(sample("sort.lackey.zst")).unwrap();
    let mut writer = mmusim_trace::LackeyWriter::new(Vec::new());
    for access in reader.records().take(lines) {
        writer.write(&access.unwrap()).unwrap();
    }
    writer.into_inner()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn xz(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 6);
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

#[test]
fn malformed_line_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = lackey_prefix(5000);
    text.extend_from_slice(b" L 1234,4\n X 99,1\n");
    let path = write(dir.path(), "bad.lackey", &text);
    let err = error_of(&path, None);
    assert_eq!(err.location(), Location::Line(5002));
    assert!(err.to_string().starts_with(&format!("{}: line 5002: expected a Lackey line", path.display())), "{err}");
}

#[test]
fn unknown_din_label_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.din", b"2 400100\n0 7ff000\n9 7ff008\n");
    let err = error_of(&path, None);
    assert_eq!(err.location(), Location::Line(3));
    assert!(err.message().starts_with("unknown din label 9"), "{err}");
}

#[test]
fn truncated_binary_records_name_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    // Three ChampSim records (the 64-byte layout), the last cut to 40 bytes.
    let mut bytes = Vec::new();
    for ip in [0x401000u64, 0x401004, 0x401008] {
        let mut record = [0u8; 64];
        record[..8].copy_from_slice(&ip.to_le_bytes());
        record[32..40].copy_from_slice(&0x7ff000u64.to_le_bytes());
        bytes.extend_from_slice(&record);
    }
    bytes.truncate(64 * 2 + 40);
    let path = write(dir.path(), "cut.champsim", &bytes);
    let err = error_of(&path, Some(Format::ChampSim));
    assert_eq!(err.location(), Location::Byte { offset: 128, decompressed: false });
    assert!(err.message().contains("truncated record"), "{err}");

    // An mmusim binary trace whose header promises more records than it has.
    let converted = dir.path().join("t.mmt");
    let source = write(dir.path(), "t.lackey", &lackey_prefix(100));
    mmusim_trace::convert(&source, None, &converted, mmusim_trace::OutputFormat::Mmusim).unwrap();
    let mut bytes = std::fs::read(&converted).unwrap();
    let full_len = bytes.len();
    bytes.truncate(full_len - 16);
    let cut = write(dir.path(), "cut.mmt", &bytes);
    let err = error_of(&cut, None);
    assert!(err.message().contains("promises 100 records but the file holds 99"), "{err}");
    bytes.truncate(full_len - 20);
    let cut = write(dir.path(), "cut2.mmt", &bytes);
    let err = error_of(&cut, None);
    assert_eq!(err.location(), Location::Byte { offset: full_len as u64 - 32, decompressed: false });
}

#[test]
fn truncated_or_corrupt_compressed_streams_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = lackey_prefix(200_000);
    let full = read_all(TraceReader::open(write(dir.path(), "full.lackey", &text)).unwrap()).unwrap();
    assert_eq!(full.len(), 200_000);
    for (name, compressed) in [("gz", gzip(&text)), ("xz", xz(&text)), ("zst", zstd(&text))] {
        let whole = write(dir.path(), &format!("whole.{name}"), &compressed);
        assert_eq!(read_all(TraceReader::open(&whole).unwrap()).unwrap(), full, "{name} reads whole");
        for cut in [compressed.len() / 2, compressed.len() - 4, compressed.len() - 1] {
            let path = write(dir.path(), &format!("cut{cut}.{name}"), &compressed[..cut]);
            let err = error_of(&path, None);
            assert!(
                matches!(err.location(), Location::Compressed { .. }) || err.message().contains("truncated"),
                "{name} cut at {cut}: {err}"
            );
        }
        let mut corrupt = compressed.clone();
        let middle = corrupt.len() / 2;
        for byte in &mut corrupt[middle..middle + 16] {
            *byte ^= 0x5a;
        }
        let path = write(dir.path(), &format!("corrupt.{name}"), &corrupt);
        let err = error_of(&path, None);
        // A decoder may turn corrupt input into garbage before its checksum
        // catches it (gzip checks at the end of a member): then the garbage
        // is what fails. Either way it is an error, never a shorter trace.
        let corrupt_stream =
            matches!(err.location(), Location::Compressed { .. }) && err.message().starts_with("corrupt or truncated");
        let garbage_line = matches!(err.location(), Location::Line(_));
        assert!(corrupt_stream || garbage_line, "{name} corrupt: {err}");
    }
}

#[test]
fn concatenated_gzip_members_and_xz_streams_are_all_read() {
    let dir = tempfile::tempdir().unwrap();
    let text = lackey_prefix(3000);
    let split = text[..20_000].iter().rposition(|&c| c == b'\n').unwrap() + 1;
    let (first, second) = text.split_at(split);
    let whole = read_all(TraceReader::open(write(dir.path(), "w.lackey", &text)).unwrap()).unwrap();
    for (name, join) in [("gz", gzip as fn(&[u8]) -> Vec<u8>), ("xz", xz), ("zst", zstd)] {
        let mut bytes = join(first);
        bytes.extend(join(second));
        let path = write(dir.path(), &format!("two.{name}"), &bytes);
        assert_eq!(read_all(TraceReader::open(&path).unwrap()).unwrap(), whole, "{name}");
    }
}

#[test]
fn empty_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = error_of(&write(dir.path(), "empty", b""), None);
    assert_eq!(err.to_string(), format!("{}: empty file; expected a trace", dir.path().join("empty").display()));
    let err = error_of(&write(dir.path(), "empty.gz", &gzip(b"")), None);
    assert!(err.message().contains("decompresses to nothing"), "{err}");
    let err = error_of(&write(dir.path(), "empty.zst", &zstd(b"")), None);
    assert!(err.message().contains("decompresses to nothing"), "{err}");
}

#[test]
fn unknown_formats_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = error_of(&write(dir.path(), "notes.txt", b"hello, world\nnot a trace\n"), None);
    assert!(err.message().starts_with("cannot tell the trace format"), "{err}");
    assert!(err.message().ends_with("give --format"), "{err}");
    let err = error_of(&write(dir.path(), "noise.bin", &[0xffu8; 4096]), None);
    assert!(err.message().contains("neither an mmusim trace"), "{err}");
    let err = error_of(&dir.path().join("missing.lackey"), None);
    assert!(err.message().starts_with("cannot open"), "{err}");
}

#[test]
fn an_overlong_line_is_an_error_not_unbounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = b"I  0400,3\n".to_vec();
    text.extend(std::iter::repeat_n(b'7', 3 << 20));
    text.push(b'\n');
    let path = write(dir.path(), "long.lackey.gz", &gzip(&text));
    let err = error_of(&path, None);
    assert_eq!(err.location(), Location::Line(2));
    assert!(err.message().starts_with("line longer than"), "{err}");
}

#[test]
fn records_after_an_error_are_not_yielded() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "t.lackey", b"I  10,1\nI  20,1\nbad\nI  30,1\n");
    let results: Vec<Result<Access, TraceError>> = TraceReader::open(&path).unwrap().records().collect();
    assert_eq!(results.len(), 1, "the error comes before any record of its batch is yielded");
    assert!(results[0].is_err());
}

#[test]
fn a_mapped_trace_that_grows_while_read_is_read_as_it_was_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    // More lines than one batch holds, so that the file grows mid-read.
    let lines = 2 * mmusim_trace::BATCH_RECORDS;
    let original = lackey_prefix(lines);
    let path = write(dir.path(), "growing.lackey", &original);
    let mut reader = TraceReader::open(&path).unwrap();
    let mut batch = mmusim_trace::Batch::new();
    let mut records = 0;
    let mut appended = false;
    while reader.next_batch(&mut batch).unwrap() {
        records += batch.len();
        if !appended {
            // The program being traced writes on, after the reader began.
            let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            file.write_all(&lackey_prefix(500)).unwrap();
            appended = true;
        }
    }
    assert!(appended);
    assert_eq!(records, lines, "the lines appended after opening are not read");
    // The provenance is of the bytes read, not of the file as it is now.
    let snapshot = write(dir.path(), "snapshot.lackey", &original);
    assert_eq!(reader.hash(), Some(mmusim_trace::hash_file(&snapshot).unwrap()));
    assert_ne!(reader.hash(), Some(mmusim_trace::hash_file(&path).unwrap()));
}
