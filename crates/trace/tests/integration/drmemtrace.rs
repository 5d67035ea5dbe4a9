//! DynamoRIO drmemtrace traces that DynamoRIO itself wrote (traces/drmemtrace/,
//! BSD-licensed), read as single files, zip archives and a per-thread
//! directory, against a second, deliberately simple reading in this file:
//! the archive's members through the zip crate's own random-access reader,
//! each 12-byte record classified by DynamoRIO's type numbers.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::common::{read_all, sample};
use mmusim_trace::{Format, Kind, TraceError, TraceReader};

/// A reference as the simple reading sees it: kind, address, address space.
type Reference = (Kind, u64, u16);

fn drmemtrace(name: &str) -> PathBuf {
    sample("drmemtrace").join(name)
}

/// A file's records: a zip archive's members in name order, or the file.
fn records_of(path: &Path) -> Vec<(u16, u16, u64)> {
    let bytes = std::fs::read(path).unwrap();
    let data = if bytes.starts_with(b"PK") {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut names: Vec<String> = archive.file_names().map(|n| n.unwrap().into_owned()).collect();
        names.sort();
        let mut data = Vec::new();
        for name in names {
            archive.by_name(&name).unwrap().read_to_end(&mut data).unwrap();
        }
        data
    } else {
        bytes
    };
    assert_eq!(data.len() % 12, 0);
    data.chunks_exact(12)
        .map(|r| {
            (
                u16::from_le_bytes([r[0], r[1]]),
                u16::from_le_bytes([r[2], r[3]]),
                u64::from_le_bytes(r[4..].try_into().unwrap()),
            )
        })
        .collect()
}

/// The references of a record list, as DynamoRIO classifies its types:
/// fetched instructions (10-16 plain and branches, 31 sysenter, 48 and 49
/// taken and untaken jumps), reads (0) and writes (1); every pid record
/// (24) switches the address space (processes numbered as they appear).
fn references(records: &[(u16, u16, u64)]) -> Vec<Reference> {
    let mut pids: Vec<u64> = Vec::new();
    let mut context = 0u16;
    let mut out = Vec::new();
    for &(kind, size, addr) in records {
        let kind = match kind {
            10..=16 | 31 | 48 | 49 => Kind::Fetch,
            0 => Kind::Load,
            1 => Kind::Store,
            24 => {
                if !pids.contains(&addr) {
                    pids.push(addr);
                }
                context = pids.iter().position(|&p| p == addr).unwrap() as u16;
                continue;
            }
            17 => panic!("no bundles in these traces"),
            _ => continue,
        };
        let _ = size;
        out.push((kind, addr, context));
    }
    out
}

fn read(path: &Path) -> Vec<Reference> {
    let reader = TraceReader::open(path).unwrap();
    assert_eq!(reader.format(), Format::Drmemtrace);
    read_all(reader).unwrap().iter().map(|a| (a.kind, a.addr, a.context)).collect()
}

#[test]
fn single_files_give_their_records_references_plain_and_zipped() {
    for name in ["drmemtrace.small.x64.trace", "drmemtrace.allasm_x86_64.trace.zip"] {
        let path = drmemtrace(name);
        let expected = references(&records_of(&path));
        assert!(!expected.is_empty());
        assert_eq!(read(&path), expected, "{name}");
    }
    // Counts the traces' READMEs state (by the simple reading): the small
    // trace has 173 fetches, 42 loads, 14 stores; allasm 133 fetches only.
    let kinds = |path: &Path| {
        let refs = read(path);
        [Kind::Fetch, Kind::Load, Kind::Store].map(|k| refs.iter().filter(|r| r.0 == k).count())
    };
    assert_eq!(kinds(&drmemtrace("drmemtrace.small.x64.trace")), [173, 42, 14]);
    assert_eq!(kinds(&drmemtrace("drmemtrace.allasm_x86_64.trace.zip")), [133, 0, 0]);
}

/// A directory's threads, interleaved by the rule of ARCHITECTURE.md,
/// computed here from each file alone: segments that start at a timestamp
/// marker (type 28, sub-type 2), in order of (timestamp, file).
#[test]
fn a_directory_interleaves_its_threads_by_timestamp() {
    let dir = drmemtrace("drmemtrace.threadsig.x64.tracedir");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".trace.zip"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 9);
    let mut segments: Vec<(u64, usize, Vec<Reference>)> = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let records = records_of(file);
        let mut start = records.iter().position(|r| r.0 == 28 && r.1 == 2).unwrap();
        let preamble = references(&records[..start]);
        assert!(preamble.is_empty(), "no references before the first timestamp");
        loop {
            let end = records[start + 1..].iter().position(|r| r.0 == 28 && r.1 == 2).map(|i| start + 1 + i);
            let body = &records[start..end.unwrap_or(records.len())];
            segments.push((records[start].2, index, references(body)));
            match end {
                Some(end) => start = end,
                None => break,
            }
        }
    }
    segments.sort_by_key(|(timestamp, index, _)| (*timestamp, *index));
    let expected: Vec<Reference> = segments.into_iter().flat_map(|(_, _, refs)| refs).collect();
    assert_eq!(expected.len(), 650_576 + 172_208 + 100_150, "fetches, loads and stores of the nine files");
    assert_eq!(read(&dir), expected);

    let info = mmusim_trace::TraceInfo::collect(TraceReader::open(&dir).unwrap()).unwrap();
    let counts = info.drmemtrace.unwrap();
    assert_eq!((counts.threads, counts.processes), (9, 1));
    assert_eq!(counts.non_fetched_instructions, 126);
    assert_eq!(counts.encodings, 22_246);
    // Every marker of every file, counted by the simple reading.
    let markers: usize = files.iter().map(|f| records_of(f).iter().filter(|r| r.0 == 28).count()).sum();
    assert_eq!(counts.markers, markers as u64);
    assert_eq!(info.file_bytes, files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum::<u64>());
}

#[test]
fn a_directory_is_hashed_as_xxhsum_of_its_files_hashed() {
    let dir = drmemtrace("drmemtrace.threadsig.x64.tracedir");
    let mut lines = String::new();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".trace.zip"))
        .collect();
    names.sort();
    for name in &names {
        lines.push_str(&format!("{}  {name}\n", mmusim_trace::hash_file(&dir.join(name)).unwrap()));
    }
    let expected = mmusim_trace::hash_file(&write_temp(lines.as_bytes())).unwrap();
    assert_eq!(mmusim_trace::hash_file(&dir).unwrap(), expected);
    // ... and the reader computes the same as it reads.
    let mut reader = TraceReader::open(&dir).unwrap();
    let mut batch = mmusim_trace::Batch::new();
    while reader.next_batch(&mut batch).unwrap() {}
    assert_eq!(reader.hash(), Some(expected));
}

fn write_temp(bytes: &[u8]) -> PathBuf {
    let file = tempfile::NamedTempFile::new().unwrap();
    let (mut file, path) = file.keep().unwrap();
    file.write_all(bytes).unwrap();
    path
}

fn record(kind: u16, size: u16, addr: u64) -> Vec<u8> {
    let mut bytes = kind.to_le_bytes().to_vec();
    bytes.extend(size.to_le_bytes());
    bytes.extend(addr.to_le_bytes());
    bytes
}

/// A valid little trace: header, version, thread, pid, a timestamp, two
/// instructions and a load, footer.
fn little_trace() -> Vec<u8> {
    [
        record(25, 0, 7),
        record(28, 12, 7),
        record(22, 4, 9),
        record(24, 4, 9),
        record(28, 2, 1000),
        record(10, 4, 0x1000),
        record(0, 8, 0x8000),
        record(10, 2, 0x1004),
        record(26, 0, 0),
    ]
    .concat()
}

/// A zip archive (stored, not deflated) of the given members.
fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in members {
        writer.start_file(*name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn error_of(path: &Path) -> TraceError {
    match TraceReader::open(path).and_then(read_all) {
        Ok(records) => panic!("{} read as {} records; expected an error", path.display(), records.len()),
        Err(e) => e,
    }
}

#[test]
fn bad_archives_and_records_name_the_file_the_member_and_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let trace = little_trace();
    let (first, second) = trace.split_at(48);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        // The baseline: two members read as one trace.
        ("good.trace.zip", zip_of(&[("chunk.0000", first), ("chunk.0001", second)]), ""),
        ("missing.trace.zip", zip_of(&[("chunk.0000", first), ("chunk.0002", second)]), "expected chunk.0001"),
        ("odd.trace.zip", zip_of(&[("chunk.0000", &trace[..trace.len() - 5])]), "ends inside a record (7 bytes)"),
        (
            "unknown.trace.zip",
            zip_of(&[("chunk.0000", first), ("chunk.0001", &[record(99, 0, 0), second.to_vec()].concat())]),
            "zip member chunk.0001, byte offset 0 of it: unknown record type 99",
        ),
        ("newer.trace", [record(25, 0, 8), trace[12..].to_vec()].concat(), "trace version 8"),
        ("cut.trace", trace[..trace.len() - 12].to_vec(), "without its footer"),
        ("mid.trace", trace[..trace.len() - 3].to_vec(), "ends inside a record (9 bytes)"),
    ];
    for (name, bytes, says) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        if says.is_empty() {
            assert_eq!(read(&path).len(), 3);
            continue;
        }
        let err = error_of(&path).to_string();
        assert!(err.contains(name) && err.contains(says), "{name}: {err}");
    }
    // A member whose bytes were damaged: its CRC no longer matches.
    let mut damaged = zip_of(&[("chunk.0000", &trace)]);
    let at = damaged.windows(4).position(|w| w == [0x00, 0x10, 0x00, 0x00]).expect("the fetch's address");
    damaged[at + 1] ^= 0x40;
    let path = dir.path().join("damaged.trace.zip");
    std::fs::write(&path, &damaged).unwrap();
    let err = error_of(&path).to_string();
    assert!(err.contains("damaged.trace.zip") && err.contains("chunk.0000"), "{err}");

    // In a directory, the file is named.
    let threads = dir.path().join("threads");
    std::fs::create_dir(&threads).unwrap();
    std::fs::write(threads.join("a.trace"), &trace).unwrap();
    std::fs::write(threads.join("b.trace"), &trace[..trace.len() - 12]).unwrap();
    let err = error_of(&threads).to_string();
    assert!(err.contains("b.trace") && err.contains("without its footer"), "{err}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = error_of(&empty).to_string();
    assert!(err.contains("without drmemtrace trace files"), "{err}");
}

/// A core-sharded directory (`drmemtrace.core.NNNNNN.trace.zip`, one file
/// per core, each switching between threads of different processes): the
/// same rule merges it. Core 0 runs thread 1 of process 100, then thread 2
/// of process 200; core 1 runs thread 3 of process 100 throughout.
#[test]
fn a_core_sharded_directory_interleaves_its_cores_by_timestamp_with_each_threads_process() {
    let core0 = [
        record(25, 0, 7),
        record(28, 12, 7),
        record(22, 4, 1),
        record(24, 4, 100),
        record(28, 2, 10),
        record(0, 8, 0xa000),
        // The switch: the next thread's records, then its timestamp.
        record(22, 4, 2),
        record(24, 4, 200),
        record(28, 2, 30),
        record(1, 8, 0xb000),
        record(26, 0, 0),
    ]
    .concat();
    let core1 = [
        record(25, 0, 7),
        record(28, 12, 7),
        record(22, 4, 3),
        record(24, 4, 100),
        record(28, 2, 20),
        record(0, 8, 0xc000),
        record(28, 2, 40),
        record(0, 8, 0xc008),
        record(26, 0, 0),
    ]
    .concat();
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [("drmemtrace.core.000000.trace.zip", &core0), ("drmemtrace.core.000001.trace.zip", &core1)] {
        std::fs::write(dir.path().join(name), zip_of(&[("chunk.0000", bytes)])).unwrap();
    }
    // By timestamp: core 0's first segment (10), core 1's (20), core 0's
    // second (30, process 200), core 1's second (40, process 100 again).
    assert_eq!(
        read(dir.path()),
        [(Kind::Load, 0xa000, 0), (Kind::Load, 0xc000, 0), (Kind::Store, 0xb000, 1), (Kind::Load, 0xc008, 0)]
    );
    let info = mmusim_trace::TraceInfo::collect(TraceReader::open(dir.path()).unwrap()).unwrap();
    let counts = info.drmemtrace.unwrap();
    assert_eq!((counts.threads, counts.processes), (3, 2));
}
