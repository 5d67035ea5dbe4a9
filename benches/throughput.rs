//! `make bench`: how fast mmusim reads traces, on this machine.
//!
//! Inputs are built once under target/bench-data from the committed real
//! traces (repeated until they are large enough to time), so the benchmark
//! needs no download. Each figure is the best of several passes over a file
//! that is already in the page cache: it measures mmusim, not the disk.

// Printing the table is the point of this program.
#![allow(clippy::print_stdout)]

use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mmusim_trace::{Access, Batch, Kind, LackeyWriter, TraceReader};

/// Passes per measurement; the fastest counts.
const PASSES: usize = 5;
/// Times the real traces are repeated to make the large inputs.
const REPEATS: usize = 6;

const SAMPLES: [&str; 4] = ["sort.lackey.zst", "gzip.lackey.xz", "python-dict.lackey.gz", "randaccess.lackey.zst"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn data_dir() -> PathBuf {
    let dir = repo().join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every record of the committed real traces, in order.
fn sample_records() -> Vec<Access> {
    let mut all = Vec::new();
    for name in SAMPLES {
        let mut reader = TraceReader::open(repo().join("traces").join(name)).unwrap();
        let mut batch = Batch::new();
        while reader.next_batch(&mut batch).unwrap() {
            all.extend_from_slice(&batch);
        }
    }
    all
}

/// Builds `path` with `write` unless it exists already.
fn build(path: &Path, write: impl FnOnce(&mut BufWriter<File>)) {
    if path.exists() {
        return;
    }
    let partial = path.with_extension("partial");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&partial).unwrap());
    write(&mut out);
    out.flush().unwrap();
    std::fs::rename(&partial, path).unwrap();
}

/// One ChampSim 64-byte record per fetch, carrying up to four of the loads
/// and two of the stores that follow it (a modify is both).
fn champsim_records(records: &[Access], out: &mut impl Write) {
    let flush = |ip: u64, sources: &[u64], destinations: &[u64], out: &mut dyn Write| {
        let mut record = [0u8; 64];
        record[..8].copy_from_slice(&ip.to_le_bytes());
        for (i, addr) in destinations.iter().take(2).enumerate() {
            record[16 + 8 * i..24 + 8 * i].copy_from_slice(&addr.to_le_bytes());
        }
        for (i, addr) in sources.iter().take(4).enumerate() {
            record[32 + 8 * i..40 + 8 * i].copy_from_slice(&addr.to_le_bytes());
        }
        out.write_all(&record).unwrap();
    };
    let (mut ip, mut sources, mut destinations) = (None, Vec::new(), Vec::new());
    for access in records {
        match access.kind {
            Kind::Fetch => {
                if let Some(ip) = ip {
                    flush(ip, &sources, &destinations, out);
                }
                ip = Some(access.addr);
                sources.clear();
                destinations.clear();
            }
            Kind::Load => sources.push(access.addr),
            Kind::Store => destinations.push(access.addr),
            Kind::Modify => {
                sources.push(access.addr);
                destinations.push(access.addr);
            }
        }
    }
    if let Some(ip) = ip {
        flush(ip, &sources, &destinations, out);
    }
}

struct Inputs {
    lackey: PathBuf,
    binary: PathBuf,
    champsim: PathBuf,
}

fn inputs() -> Inputs {
    let dir = data_dir();
    let lackey = dir.join("real-x6.lackey");
    let binary = dir.join("real-x6.mmt");
    let champsim = dir.join("real-x6.champsim");
    if !(lackey.exists() && binary.exists() && champsim.exists()) {
        let records = sample_records();
        build(&lackey, |out| {
            let mut writer = LackeyWriter::new(out);
            for _ in 0..REPEATS {
                for access in &records {
                    writer.write(access).unwrap();
                }
            }
        });
        if !binary.exists() {
            let partial = binary.with_extension("partial");
            let description = "benchmark input: the committed real traces, six times";
            let mut writer = mmusim_trace::BinaryWriter::new(File::create(&partial).unwrap(), description).unwrap();
            for _ in 0..REPEATS {
                for access in &records {
                    writer.write(access).unwrap();
                }
            }
            writer.finish().unwrap();
            std::fs::rename(&partial, &binary).unwrap();
        }
        build(&champsim, |out| {
            for _ in 0..REPEATS {
                champsim_records(&records, out);
            }
        });
    }
    Inputs { lackey, binary, champsim }
}

/// Reads the whole trace; returns (records, decoded bytes, time).
fn read_once(path: &Path) -> (u64, u64, Duration) {
    let start = Instant::now();
    let mut reader = TraceReader::open(path).unwrap();
    let mut batch = Batch::new();
    let (mut records, mut checksum) = (0u64, 0u64);
    while reader.next_batch(&mut batch).unwrap() {
        records += batch.len() as u64;
        checksum = checksum.wrapping_add(batch.iter().fold(0, |s, a| s ^ a.addr));
    }
    black_box(checksum);
    (records, reader.decoded_bytes(), start.elapsed())
}

fn best_of(path: &Path, passes: usize) -> (u64, u64, Duration) {
    (0..passes).map(|_| read_once(path)).min_by_key(|&(_, _, t)| t).unwrap()
}

/// Reads and simulates the whole trace with `config`; returns (references,
/// time).
fn simulate_once(config: &mmusim_translate::Config, path: &Path) -> (u64, Duration) {
    let start = Instant::now();
    let mut sim = mmusim_translate::Simulator::new(config).unwrap();
    let mut reader = TraceReader::open(path).unwrap();
    let mut batch = Batch::new();
    while reader.next_batch(&mut batch).unwrap() {
        sim.run(&batch).unwrap();
    }
    let report = sim.report();
    black_box(&report);
    (report.references(), start.elapsed())
}

fn preset(name: &str) -> mmusim_translate::Config {
    let path = repo().join("configs").join(format!("{name}.toml"));
    mmusim_report::config_file::load(&path, &[]).unwrap()
}

fn main() {
    let inputs = inputs();
    println!("mmusim read throughput (single thread, best of {PASSES} warm passes)");
    println!("{:<34} {:>12} {:>12} {:>14} {:>10}", "input", "MB", "MB/s", "M records/s", "seconds");
    let row = |label: &str, path: &Path, passes: usize| {
        let (records, bytes, time) = best_of(path, passes);
        let secs = time.as_secs_f64();
        println!(
            "{:<34} {:>12.1} {:>12.0} {:>14.1} {:>10.3}",
            label,
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / secs,
            records as f64 / 1e6 / secs,
            secs
        );
    };
    row("lackey text (plain)", &inputs.lackey, PASSES);
    row("mmusim binary (plain, mapped)", &inputs.binary, PASSES);
    row("champsim 64-byte (plain)", &inputs.champsim, PASSES);
    for name in SAMPLES {
        row(&format!("{name} (compressed)"), &repo().join("traces").join(name), 3);
    }

    println!();
    println!("mmusim simulation throughput (single thread, read + simulate, best of {PASSES})");
    println!("{:<34} {:>12} {:>14} {:>10}", "preset on input", "M refs", "M refs/s", "seconds");
    for name in ["skylake", "zen4"] {
        let config = preset(name);
        for (label, path) in [("binary", &inputs.binary), ("lackey text", &inputs.lackey)] {
            let (refs, time) = (0..PASSES).map(|_| simulate_once(&config, path)).min_by_key(|&(_, t)| t).unwrap();
            let secs = time.as_secs_f64();
            println!(
                "{:<34} {:>12.1} {:>14.1} {:>10.3}",
                format!("{name}, {label}"),
                refs as f64 / 1e6,
                refs as f64 / 1e6 / secs,
                secs
            );
        }
    }
}
