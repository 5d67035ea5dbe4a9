//! `make bench`: where mmusim stands on this machine, as one table.
//!
//! - parse: references decoded per second, one thread, per format, plain
//!   and compressed;
//! - simulate: references per second of a Skylake-like machine in each
//!   mode, from records in memory and end to end from a file;
//! - sweep: 64 configurations over one trace, on one thread and on all;
//! - memory: peak resident memory of `mmusim run` on a generated trace of
//!   1 billion references against one of 10 million with the same
//!   footprint.
//!
//! Inputs are built once under target/bench-data from the committed real
//! traces (repeated until they are large enough to time) and from a seeded
//! synthetic generator, so the benchmark needs no download. Timed figures
//! are the best of several passes over files already in the page cache:
//! they measure mmusim, not the disk. The method and the latest figures are
//! in BENCHMARKS.md.

// Printing the table is the point of this program.
#![allow(clippy::print_stdout)]

use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mmusim_trace::{Access, Batch, Kind, LackeyWriter, TraceReader};

/// Passes per timed figure; the fastest counts.
const PASSES: usize = 3;
/// Times the real traces are repeated to make the large inputs.
const REPEATS: usize = 6;
/// References of the long synthetic trace, and of the short one.
const LONG: u64 = 1_000_000_000;
const SHORT: u64 = 10_000_000;

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
    SAMPLES.iter().flat_map(|name| read_records(&repo().join("traces").join(name))).collect()
}

/// Every record of a trace, in memory.
fn read_records(path: &Path) -> Vec<Access> {
    TraceReader::open(path).unwrap().records().collect::<Result<_, _>>().unwrap()
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
    drop(out);
    std::fs::rename(&partial, path).unwrap();
}

/// Builds a binary-format trace of `records` unless it exists already.
fn build_binary(path: &Path, description: &str, records: impl Iterator<Item = Access>) {
    if path.exists() {
        return;
    }
    let partial = path.with_extension("partial");
    let mut writer = mmusim_trace::BinaryWriter::new(File::create(&partial).unwrap(), description).unwrap();
    for access in records {
        writer.write(&access).unwrap();
    }
    writer.finish().unwrap();
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

/// Dinero's extended form: `i|r|w addr size`, a modify as a read and a write.
fn din_records(records: &[Access], out: &mut impl Write) {
    for a in records {
        let size = a.size.max(1);
        match a.kind {
            Kind::Fetch => writeln!(out, "i {:x} {size}", a.addr),
            Kind::Load => writeln!(out, "r {:x} {size}", a.addr),
            Kind::Store => writeln!(out, "w {:x} {size}", a.addr),
            Kind::Modify => writeln!(out, "r {:x} {size}\nw {:x} {size}", a.addr, a.addr),
        }
        .unwrap();
    }
}

/// Pin's pinatrace: `0xip: R|W 0xaddr` per data reference.
fn pinatrace_records(records: &[Access], out: &mut impl Write) {
    let mut ip = 0;
    for a in records {
        match a.kind {
            Kind::Fetch => ip = a.addr,
            Kind::Load => writeln!(out, "0x{ip:x}: R 0x{:x}", a.addr).unwrap(),
            Kind::Store => writeln!(out, "0x{ip:x}: W 0x{:x}", a.addr).unwrap(),
            Kind::Modify => writeln!(out, "0x{ip:x}: R 0x{:x}\n0x{ip:x}: W 0x{:x}", a.addr, a.addr).unwrap(),
        }
    }
    writeln!(out, "#eof").unwrap();
}

/// A seeded synthetic program: it first stores once to every page of a
/// 256 MiB heap (so every length has the same footprint), then runs a loop
/// of instructions over 64 KiB of code, about four in ten with a data
/// reference, most to a hot 2 MiB, the rest anywhere in the heap.
struct Synthetic {
    state: u64,
    left: u64,
    setup_page: u64,
    pc: u64,
    pending: Option<Access>,
}

const HEAP: u64 = 0x7f00_0000_0000;
const HEAP_BYTES: u64 = 256 << 20;
const CODE: u64 = 0x40_0000;

impl Synthetic {
    fn new(seed: u64, references: u64) -> Synthetic {
        Synthetic { state: seed, left: references, setup_page: 0, pc: CODE, pending: None }
    }

    /// SplitMix64.
    fn next_random(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Iterator for Synthetic {
    type Item = Access;

    fn next(&mut self) -> Option<Access> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        if self.setup_page < HEAP_BYTES >> 12 {
            self.setup_page += 1;
            return Some(Access::new(Kind::Store, HEAP + ((self.setup_page - 1) << 12), 8));
        }
        if let Some(access) = self.pending.take() {
            return Some(access);
        }
        let fetch = Access::new(Kind::Fetch, self.pc, 4);
        self.pc = CODE + (self.pc - CODE + 4) % (64 << 10);
        let r = self.next_random();
        if r % 10 < 4 {
            let offset = if (r >> 8) % 10 < 9 { (r >> 16) % (2 << 20) } else { (r >> 16) % HEAP_BYTES };
            let kind = if (r >> 4).is_multiple_of(3) { Kind::Store } else { Kind::Load };
            self.pending = Some(Access::new(kind, HEAP + (offset & !7), 8));
        }
        Some(fetch)
    }
}

struct Inputs {
    lackey: PathBuf,
    binary: PathBuf,
    champsim: PathBuf,
    din: PathBuf,
    pinatrace: PathBuf,
    binary_zst: PathBuf,
    champsim_xz: PathBuf,
    short: PathBuf,
    long: PathBuf,
}

fn inputs() -> Inputs {
    let dir = data_dir();
    let inputs = Inputs {
        lackey: dir.join("real-x6.lackey"),
        binary: dir.join("real-x6.mmt"),
        champsim: dir.join("real-x6.champsim"),
        din: dir.join("real-x6.din"),
        pinatrace: dir.join("real-x6.pinatrace"),
        binary_zst: dir.join("real-x6.mmt.zst"),
        champsim_xz: dir.join("real.champsim.xz"),
        short: dir.join("synthetic-10m.mmt"),
        long: dir.join("synthetic-1g.mmt"),
    };
    let repeated = std::sync::OnceLock::new();
    let records = || -> &Vec<Access> {
        repeated.get_or_init(|| {
            let once = sample_records();
            (0..REPEATS).flat_map(|_| once.iter().copied()).collect()
        })
    };
    build(&inputs.lackey, |out| {
        let mut writer = LackeyWriter::new(out);
        records().iter().for_each(|a| writer.write(a).unwrap());
    });
    if !inputs.binary.exists() {
        build_binary(
            &inputs.binary,
            "benchmark input: the committed real traces, six times",
            records().iter().copied(),
        );
    }
    build(&inputs.champsim, |out| champsim_records(records(), out));
    build(&inputs.din, |out| din_records(records(), out));
    build(&inputs.pinatrace, |out| pinatrace_records(records(), out));
    if !inputs.binary_zst.exists() {
        let summary =
            mmusim_trace::convert(&inputs.binary, None, &inputs.binary_zst, mmusim_trace::OutputFormat::Mmusim);
        summary.unwrap();
    }
    build(&inputs.champsim_xz, |out| {
        let once = sample_records();
        let mut xz = liblzma::write::XzEncoder::new(out, 6);
        champsim_records(&once, &mut xz);
        xz.finish().unwrap();
    });
    build_binary(&inputs.short, "benchmark input: synthetic, seed 1, 10M references", Synthetic::new(1, SHORT));
    build_binary(&inputs.long, "benchmark input: synthetic, seed 1, 1G references", Synthetic::new(1, LONG));
    inputs
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

fn best<T>(passes: usize, f: impl Fn() -> (T, Duration)) -> (T, Duration) {
    (0..passes).map(|_| f()).min_by_key(|(_, t)| *t).unwrap()
}

/// Simulates records already in memory; returns (references, time).
fn simulate_decoded(config: &mmusim_translate::Config, records: &[Access]) -> (u64, Duration) {
    let ((references, _), time) = simulate_counting_walks(config, records);
    (references, time)
}

/// `simulate_decoded`, also returning the walks.
fn simulate_counting_walks(config: &mmusim_translate::Config, records: &[Access]) -> ((u64, u64), Duration) {
    let start = Instant::now();
    let mut sim = mmusim_translate::Simulator::new(config).unwrap();
    for chunk in records.chunks(mmusim_trace::BATCH_RECORDS) {
        sim.run(chunk).unwrap();
    }
    let report = sim.report();
    black_box(&report);
    ((report.references(), report.walks.walks), start.elapsed())
}

/// What `mmusim run` does, provenance hashing included.
fn run_end_to_end(config: &mmusim_translate::Config, path: &Path) -> (u64, Duration) {
    let start = Instant::now();
    let workload = mmusim_trace::Workload::new(vec![mmusim_trace::TraceSpec::new(path)], 1);
    let output = mmusim_report::run::run(config, &workload).unwrap();
    black_box(&output.metrics);
    (output.metrics.references, start.elapsed())
}

fn preset(name: &str) -> mmusim_translate::Config {
    let path =
        if name.ends_with(".toml") { PathBuf::from(name) } else { repo().join("configs").join(format!("{name}.toml")) };
    mmusim_report::config_file::load(&path, &[]).unwrap()
}

/// Runs a sweep spec into a fresh directory; returns (references
/// simulated, time).
fn sweep(spec: &Path, threads: usize) -> (u64, Duration) {
    let out = data_dir().join("sweep-out");
    let _ = std::fs::remove_dir_all(&out);
    let start = Instant::now();
    let plan = mmusim_report::plan::load(spec).unwrap();
    let options = mmusim_report::sweep::Options {
        out: out.clone(),
        threads: Some(threads),
        shard: None,
        progress: false,
        one_pass: true,
    };
    let outcome = mmusim_report::sweep::execute(&plan, &options).unwrap();
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    (outcome.references, start.elapsed())
}

/// Peak resident memory (bytes) and time of `mmusim run` on `trace`, as a
/// process of its own (which reports its own peak: a child's rusage would
/// count this process's memory at the fork).
fn peak_rss(trace: &Path) -> (u64, Duration) {
    let out = data_dir().join("rss-out");
    let start = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mmusim"))
        .args(["run", "--config", "configs/skylake.toml", "--trace"])
        .arg(trace)
        .arg("--out")
        .arg(&out)
        .current_dir(repo())
        .output()
        .unwrap();
    let time = start.elapsed();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "mmusim run failed on {}: {}",
        trace.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let mib: f64 = text
        .split("peak memory ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in mmusim run's output:\n{text}"));
    ((mib * f64::from(1 << 20)) as u64, time)
}

struct Table {
    rows: Vec<[String; 5]>,
}

impl Table {
    fn row(&mut self, what: &str, input: &str, figure: String, unit: &str, time: Duration) {
        self.rows.push([what.into(), input.into(), figure, unit.into(), format!("{:.2}", time.as_secs_f64())]);
    }

    fn print(&self) {
        let widths: Vec<usize> = (0..5).map(|c| self.rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
        let header = ["what", "input", "figure", "unit", "seconds"];
        let widths: Vec<usize> = widths.iter().zip(header).map(|(w, h)| (*w).max(h.len())).collect();
        let line = |cells: &[String]| {
            println!(
                "{:<w0$}  {:<w1$}  {:>w2$}  {:<w3$}  {:>w4$}",
                cells[0],
                cells[1],
                cells[2],
                cells[3],
                cells[4],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
                w4 = widths[4]
            )
        };
        line(&header.map(String::from));
        for row in &self.rows {
            line(row);
        }
    }
}

/// Updates of the GUPS-like stream, and the table they hit.
const GUPS_UPDATES: u64 = 4_000_000;
const GUPS_TABLE: u64 = 0x1_0000_0000;
const GUPS_TABLE_BYTES: u64 = 1 << 30;

/// A GUPS-like random-update stream: `GUPS_UPDATES` read-modify-writes of
/// seeded random 8-byte words of a 1 GiB table, data only. Practically
/// every reference misses any TLB: the miss-heavy input.
fn gups_records() -> Vec<Access> {
    let mut random = Synthetic::new(2026, 0);
    (0..GUPS_UPDATES)
        .map(|_| Access::new(Kind::Modify, GUPS_TABLE + ((random.next_random() % GUPS_TABLE_BYTES) & !7), 8))
        .collect()
}

/// Dinero IV's binary input for the same references as a TLB sees them
/// (../shared/peers/lackey-to-dinero.py's layout: per reference a 32-bit
/// page number, a 16-bit size of 1, a read type and a pad byte), so that a
/// cache of one-byte blocks simulates a TLB of 4 KiB pages.
fn dinero_page_records(records: &[Access], out: &mut impl Write) {
    for access in records {
        let page = u32::try_from(access.addr >> 12).expect("page numbers of the GUPS table fit 32 bits");
        out.write_all(&page.to_le_bytes()).unwrap();
        out.write_all(&[1, 0, 0, 0]).unwrap();
    }
}

/// Miss-heavy rows: simulation speed and walks per second on streams where
/// nearly every reference walks, in memory, one thread; and the files for
/// the side-by-side run against Dinero IV (scripts/bench-dinero.sh).
fn miss_heavy(table: &mut Table) {
    let gups = gups_records();
    build_binary(&data_dir().join("gups.mmt"), "GUPS-like random updates of a 1 GiB table", gups.iter().copied());
    build(&data_dir().join("gups.dbin"), |out| dinero_page_records(&gups, out));
    let randaccess: Vec<Access> = read_records(&repo().join("traces/randaccess.lackey.zst"))
        .into_iter()
        .filter(|access| access.kind != Kind::Fetch)
        .collect();
    let randaccess_x20: Vec<Access> = (0..20).flat_map(|_| randaccess.iter().copied()).collect();
    let inputs = [
        (format!("gups, data only ({:.1} M refs)", gups.len() as f64 / 1e6), &gups),
        (format!("randaccess data x20 ({:.1} M refs)", randaccess_x20.len() as f64 / 1e6), &randaccess_x20),
    ];
    for config_name in ["bench/dinero-dtlb", "skylake"] {
        let config = preset(config_name);
        for (input, records) in &inputs {
            let ((refs, walks), time) = best(PASSES, || simulate_counting_walks(&config, records));
            let what = format!(
                "miss-heavy {}, records in memory, 1 thread, {:.1}% of refs walk",
                config_name.trim_start_matches("bench/"),
                100.0 * walks as f64 / refs as f64
            );
            table.row(&what, input, format!("{:.1}", refs as f64 / 1e6 / time.as_secs_f64()), "M refs/s", time);
            table.row(&what, input, format!("{:.1}", walks as f64 / 1e6 / time.as_secs_f64()), "M walks/s", time);
        }
    }
}

/// Native speed depends on how often references walk: each committed trace
/// alone (six times over, as in the mix), hit-heavy to walk-heavy.
fn samples(table: &mut Table) {
    let traces = repo().join("traces");
    let mrecs = |records: u64, time: Duration| format!("{:.1}", records as f64 / 1e6 / time.as_secs_f64());
    let skylake = preset("skylake");
    for name in SAMPLES {
        let once = read_records(&traces.join(name));
        let records: Vec<Access> = (0..REPEATS).flat_map(|_| once.iter().copied()).collect();
        let ((refs, walks), time) = best(PASSES, || simulate_counting_walks(&skylake, &records));
        table.row(
            &format!(
                "simulate skylake, records in memory, 1 thread, {:.3}% of refs walk",
                100.0 * walks as f64 / refs as f64
            ),
            &format!("{name} ({:.1} M refs)", refs as f64 / 1e6),
            mrecs(refs, time),
            "M refs/s",
            time,
        );
    }
}

/// What a resident limit costs the simulation: the hit-heavy sort trace
/// (six times over) on Skylake without a limit, with one it fits in, and
/// with one of 192 pages (of its 222) under each policy.
fn paging(table: &mut Table) {
    let once = read_records(&repo().join("traces/sort.lackey.zst"));
    let records: Vec<Access> = (0..REPEATS).flat_map(|_| once.iter().copied()).collect();
    let input = format!("sort.lackey.zst x{REPEATS} ({:.1} M refs)", records.len() as f64 / 1e6);
    let limits: [(&str, Option<(&str, &str)>); 6] = [
        ("no limit", None),
        ("64MiB (fits), clock", Some(("64MiB", "clock"))),
        ("768KiB, clock", Some(("768KiB", "clock"))),
        ("768KiB, fifo", Some(("768KiB", "fifo"))),
        ("768KiB, random", Some(("768KiB", "random"))),
        ("768KiB, lru", Some(("768KiB", "lru"))),
    ];
    // The LRU memory curve at 16 limits, one pass, beside the run without.
    let mut curve = preset("skylake");
    curve.memory.curve = Some((1..=16).map(|n| mmusim_translate::ByteSize((n * 64) << 10)).collect());
    let ((refs, _), time) = best(PASSES, || simulate_counting_walks(&curve, &records));
    table.row(
        "paging: skylake, memory.curve of 16 limits (64KiB to 1MiB) and no limit, in memory, 1 thread",
        &input,
        format!("{:.1}", refs as f64 / 1e6 / time.as_secs_f64()),
        "M refs/s",
        time,
    );
    for (what, limit) in limits {
        let mut config = preset("skylake");
        if let Some((resident, replacement)) = limit {
            config.memory.resident = Some(resident.parse().unwrap());
            config.memory.replacement = Some(toml::Value::from(replacement).try_into().unwrap());
        }
        let ((refs, walks), time) = best(PASSES, || simulate_counting_walks(&config, &records));
        table.row(
            &format!(
                "paging: skylake, memory.resident {what}, in memory, 1 thread, {:.3}% of refs walk",
                100.0 * walks as f64 / refs as f64
            ),
            &input,
            format!("{:.1}", refs as f64 / 1e6 / time.as_secs_f64()),
            "M refs/s",
            time,
        );
    }
}

fn main() {
    // MMUSIM_BENCH_ONLY=parse,simulate,samples,miss-heavy,paging,sweep,one-pass,memory:
    // some sections only.
    let only = std::env::var("MMUSIM_BENCH_ONLY").ok();
    let section = |name: &str| only.as_ref().is_none_or(|o| o.split(',').any(|s| s == name));
    // MMUSIM_BENCH_PROFILE=gups:<config>: only simulate the GUPS-like
    // stream, for a profiler to sample.
    if let Some(name) =
        std::env::var("MMUSIM_BENCH_PROFILE").ok().and_then(|p| p.strip_prefix("gups:").map(String::from))
    {
        // MMUSIM_BENCH_PASSES=1 for an instruction count under callgrind.
        let passes = std::env::var("MMUSIM_BENCH_PASSES").ok().and_then(|p| p.parse().ok()).unwrap_or(5);
        let records = gups_records();
        let (refs, time) = best(passes, || simulate_decoded(&preset(&name), &records));
        println!("gups, {name}: {:.1} M refs/s", refs as f64 / 1e6 / time.as_secs_f64());
        return;
    }
    let cheap = ["miss-heavy", "samples", "paging"];
    if only.as_ref().is_some_and(|o| o.split(',').all(|s| cheap.contains(&s))) {
        // Needs none of the large inputs.
        let mut table = Table { rows: Vec::new() };
        if section("samples") {
            samples(&mut table);
        }
        if section("paging") {
            paging(&mut table);
        }
        if section("miss-heavy") {
            miss_heavy(&mut table);
        }
        table.print();
        return;
    }
    let inputs = inputs();
    // MMUSIM_BENCH_PROFILE=<preset>: only simulate the in-memory records,
    // many times over, for a profiler to sample.
    if let Ok(name) = std::env::var("MMUSIM_BENCH_PROFILE") {
        let records = read_records(&inputs.binary);
        let config = preset(&name);
        let (refs, time) = best(5, || simulate_decoded(&config, &records));
        println!("{name}: {:.1} M refs/s", refs as f64 / 1e6 / time.as_secs_f64());
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut table = Table { rows: Vec::new() };
    let mrecs = |records: u64, time: Duration| format!("{:.1}", records as f64 / 1e6 / time.as_secs_f64());

    // Parse: one thread, every format.
    let traces = repo().join("traces");
    let drmemtrace = traces.join("drmemtrace");
    let parse_inputs: [(&str, &Path); 13] = [
        ("lackey text", &inputs.lackey),
        ("lackey text, zstd", &traces.join("sort.lackey.zst")),
        ("lackey text, xz", &traces.join("gzip.lackey.xz")),
        ("lackey text, gzip", &traces.join("python-dict.lackey.gz")),
        ("dinero din", &inputs.din),
        ("pin pinatrace", &inputs.pinatrace),
        ("champsim", &inputs.champsim),
        ("champsim, xz", &inputs.champsim_xz),
        ("mmusim binary (mapped)", &inputs.binary),
        ("mmusim binary, zstd", &inputs.binary_zst),
        ("mmusim binary, synthetic", &inputs.short),
        // DynamoRIO's own test traces: one thread's archive, and nine
        // threads' archives merged by timestamp.
        (
            "drmemtrace, zip",
            &drmemtrace.join("drmemtrace.threadsig.x64.tracedir/drmemtrace.threadsig.872884.3060.trace.zip"),
        ),
        ("drmemtrace, zip directory", &drmemtrace.join("drmemtrace.threadsig.x64.tracedir")),
    ];
    for (format, path) in parse_inputs.into_iter().filter(|_| section("parse")) {
        let ((records, bytes), time) = best(PASSES, || {
            let (records, bytes, time) = read_once(path);
            ((records, bytes), time)
        });
        let input = format!("{} ({:.0} MB)", path.file_name().unwrap().to_string_lossy(), bytes as f64 / 1e6);
        table.row(&format!("parse {format}"), &input, mrecs(records, time), "M refs/s", time);
        table.row(
            &format!("parse {format}"),
            &input,
            format!("{:.0}", bytes as f64 / 1e6 / time.as_secs_f64()),
            "MB/s (decoded)",
            time,
        );
    }

    // Simulate: a Skylake-like machine in each mode.
    let records = if section("simulate") || section("sweep") { read_records(&inputs.binary) } else { Vec::new() };
    let binary_records = if records.is_empty() { read_once(&inputs.binary).0 } else { records.len() as u64 };
    let input =
        format!("{} ({:.1} M refs)", inputs.binary.file_name().unwrap().to_string_lossy(), binary_records as f64 / 1e6);
    let mut native = None;
    for name in ["skylake", "skylake-nested", "skylake-shadow"].into_iter().filter(|_| section("simulate")) {
        let config = preset(name);
        let (refs, time) = best(PASSES, || simulate_decoded(&config, &records));
        let rate = refs as f64 / time.as_secs_f64();
        let vs = native.map_or(String::new(), |n: f64| format!(", {:.2}x native's time", n / rate));
        native.get_or_insert(rate);
        table.row(
            &format!("simulate {name}, records in memory, 1 thread{vs}"),
            &input,
            mrecs(refs, time),
            "M refs/s",
            time,
        );
        let (refs, time) = best(PASSES, || run_end_to_end(&config, &inputs.binary));
        table.row(&format!("simulate {name}, mmusim run from binary"), &input, mrecs(refs, time), "M refs/s", time);
    }
    if section("simulate") || section("samples") {
        samples(&mut table);
    }
    if section("paging") {
        paging(&mut table);
    }
    if section("simulate") {
        let config = preset("skylake");
        let lackey_input = format!(
            "{} ({:.0} MB)",
            inputs.lackey.file_name().unwrap().to_string_lossy(),
            std::fs::metadata(&inputs.lackey).unwrap().len() as f64 / 1e6
        );
        let (refs, time) = best(PASSES, || run_end_to_end(&config, &inputs.lackey));
        table.row("simulate skylake, mmusim run from lackey text", &lackey_input, mrecs(refs, time), "M refs/s", time);
    }

    if section("miss-heavy") {
        miss_heavy(&mut table);
    }

    // Sweep: 64 configurations of one machine over one trace.
    if section("sweep") {
        let spec = data_dir().join("sweep-64.toml");
        std::fs::write(
            &spec,
            format!(
                "name = \"bench-64\"\nconfig = \"{}\"\ntraces = [\"{}\"]\n[axes]\n\"tlb.l1d.entries\" = [32, 64]\n\
             \"pages.policy\" = [\"fixed\", \"thp\"]\n\"tlb.stlb.entries\" = {{ from = 96, to = 1536, step = 96 }}\n",
                repo().join("configs/skylake.toml").display(),
                inputs.binary.display()
            ),
        )
        .unwrap();
        let (refs, one) = sweep(&spec, 1);
        table.row("sweep 64 configs, 1 thread", &input, mrecs(refs, one), "M refs/s (all runs)", one);
        let (refs, all) = sweep(&spec, cores);
        table.row(&format!("sweep 64 configs, {cores} threads"), &input, mrecs(refs, all), "M refs/s (all runs)", all);
        table.row(
            &format!("sweep 64 configs, speed-up on {cores} threads"),
            &input,
            format!("{:.2}", one.as_secs_f64() / all.as_secs_f64()),
            "x",
            all,
        );
    }

    // One pass: 16 sizes of the STLB against one configuration.
    if section("one-pass") {
        let write_spec = |name: &str, extra: &str| {
            let spec = data_dir().join(format!("{name}.toml"));
            std::fs::write(
                &spec,
                format!(
                    "name = \"{name}\"\nconfig = \"{}\"\ntraces = [\"{}\"]\n{extra}",
                    repo().join("configs/skylake.toml").display(),
                    inputs.binary.display()
                ),
            )
            .unwrap();
            spec
        };
        let one = write_spec("bench-one", "");
        let sizes = write_spec(
            "bench-16-ways",
            "[set]\n\"tlb.stlb.sets\" = 128\n[axes]\n\"tlb.stlb.ways\" = { from = 1, to = 16, step = 1 }\n",
        );
        let (refs, single) = best(PASSES, || sweep(&one, 1));
        table.row("sweep 1 config (skylake), 1 thread", &input, mrecs(refs, single), "M refs/s", single);
        let (refs, together) = best(PASSES, || sweep(&sizes, 1));
        table.row(
            "sweep 16 STLB sizes in one pass, 1 thread",
            &input,
            mrecs(refs, together),
            "M refs/s (all runs)",
            together,
        );
        table.row(
            "one pass, 16 sizes / 1 config",
            &input,
            format!("{:.2}", together.as_secs_f64() / single.as_secs_f64()),
            "x the time",
            together,
        );
    }

    // Memory: a long streamed run against a short one, same footprint.
    if section("memory") {
        let (short_rss, short_time) = peak_rss(&inputs.short);
        let (long_rss, long_time) = peak_rss(&inputs.long);
        let mib = |bytes: u64| format!("{:.1}", bytes as f64 / (1 << 20) as f64);
        table.row("peak RSS, mmusim run skylake", "synthetic, 10 M refs", mib(short_rss), "MiB", short_time);
        table.row("peak RSS, mmusim run skylake", "synthetic, 1000 M refs", mib(long_rss), "MiB", long_time);
        table.row(
            "peak RSS, 1000 M refs / 10 M refs",
            "synthetic, 256 MiB footprint",
            format!("{:.2}", long_rss as f64 / short_rss as f64),
            "x",
            long_time,
        );
    }

    println!("mmusim benchmarks: best of {PASSES} warm passes (the memory rows run once), {cores} cores");
    table.print();
}
