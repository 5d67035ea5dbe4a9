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

/// Every record of a trace, in memory.
fn read_records(path: &Path) -> Vec<Access> {
    let mut reader = TraceReader::open(path).unwrap();
    let mut batch = Batch::new();
    let mut all = Vec::new();
    while reader.next_batch(&mut batch).unwrap() {
        all.extend_from_slice(&batch);
    }
    all
}

/// Simulates records already in memory; returns (references, time).
fn simulate_decoded(config: &mmusim_translate::Config, records: &[Access]) -> (u64, Duration) {
    let start = Instant::now();
    let mut sim = mmusim_translate::Simulator::new(config).unwrap();
    for chunk in records.chunks(mmusim_trace::BATCH_RECORDS) {
        sim.run(chunk).unwrap();
    }
    let report = sim.report();
    black_box(&report);
    (report.references(), start.elapsed())
}

fn preset(name: &str) -> mmusim_translate::Config {
    let path =
        if name.ends_with(".toml") { PathBuf::from(name) } else { repo().join("configs").join(format!("{name}.toml")) };
    mmusim_report::config_file::load(&path, &[]).unwrap()
}

fn main() {
    let inputs = inputs();
    // MMUSIM_BENCH_PROFILE=<preset>: only simulate the in-memory records,
    // many times over, for a profiler to sample.
    if let Ok(name) = std::env::var("MMUSIM_BENCH_PROFILE") {
        let records = read_records(&inputs.binary);
        let config = preset(&name);
        let (refs, time) = (0..5).map(|_| simulate_decoded(&config, &records)).min_by_key(|&(_, t)| t).unwrap();
        println!("{name}: {:.1} M refs/s", refs as f64 / 1e6 / time.as_secs_f64());
        return;
    }
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
    println!("mmusim simulation throughput (best of {PASSES}; the simulation itself always runs on one thread)");
    println!("{:<52} {:>10} {:>12} {:>10}", "preset, input, how", "M refs", "M refs/s", "seconds");
    let decoded = read_records(&inputs.binary);
    let sim_row = |label: String, refs: u64, time: Duration| {
        let secs = time.as_secs_f64();
        println!("{:<52} {:>10.1} {:>12.1} {:>10.3}", label, refs as f64 / 1e6, refs as f64 / 1e6 / secs, secs);
    };
    let best = |f: &dyn Fn() -> (u64, Duration)| (0..PASSES).map(|_| f()).min_by_key(|&(_, t)| t).unwrap();
    for name in ["skylake", "zen4"] {
        let config = preset(name);
        let (refs, time) = best(&|| simulate_decoded(&config, &decoded));
        sim_row(format!("{name}, records already in memory"), refs, time);
        for (label, path) in [("binary", &inputs.binary), ("lackey text", &inputs.lackey)] {
            let (refs, time) = best(&|| simulate_once(&config, path));
            sim_row(format!("{name}, {label}, read and simulate on one thread"), refs, time);
            let (refs, time) = best(&|| simulate_pipelined(&config, path));
            sim_row(format!("{name}, {label}, reader thread + simulation thread"), refs, time);
            let (refs, time) = best(&|| run_end_to_end(&config, path));
            sim_row(format!("{name}, {label}, mmusim run (+ SHA-256 of the file)"), refs, time);
        }
    }
}

/// The simulation fed by `run`'s reader thread, without hashing.
fn simulate_pipelined(config: &mmusim_translate::Config, path: &Path) -> (u64, Duration) {
    let start = Instant::now();
    let mut sim = mmusim_translate::Simulator::new(config).unwrap();
    let mut mix = mmusim_trace::Workload::new(vec![mmusim_trace::TraceSpec::new(path)], 1).open().unwrap();
    mmusim_report::pipeline::for_each_batch(&mut mix, |batch| sim.run(batch)).unwrap();
    let report = sim.report();
    black_box(&report);
    (report.references(), start.elapsed())
}

/// What `mmusim run` does, provenance hashing included.
fn run_end_to_end(config: &mmusim_translate::Config, path: &Path) -> (u64, Duration) {
    let start = Instant::now();
    let workload = mmusim_trace::Workload::new(vec![mmusim_trace::TraceSpec::new(path)], 1);
    let output = mmusim_report::run::run(config, &workload).unwrap();
    black_box(&output.metrics);
    (output.metrics.references, start.elapsed())
}
