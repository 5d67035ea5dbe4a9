//! Running a plan: each workload is read and decoded once, and every chunk
//! of it goes to all of the sweep's simulators in parallel, so memory stays
//! bounded however long the trace and the results do not depend on the
//! number of threads.
//!
//! A sweep directory holds `sweep.json` (the plan), `runs/<run>/<workload>/`
//! (a run directory each, see `outputs`) and `metrics.csv` and
//! `histograms.csv` rebuilt from the runs' `summary.json` files in plan
//! order. A run directory with a `summary.json` for the same tool version,
//! config and trace bytes is complete, so a rerun skips it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use mmusim_translate::Simulator;
use rayon::prelude::*;
use serde_json::Value;

use crate::outputs::{self, Row, SUMMARY};
use crate::plan::{NamedWorkload, Plan, PlanError, PlanFile, PlannedRun, ShardFile};
use crate::run::{FileError, RunError, RunOutput};

/// Batches (of 4096 references) handed to the simulators at a time: large
/// enough that handing a chunk to every run costs little beside simulating
/// it, small enough that the chunks in flight take a few megabytes.
const CHUNK_BATCHES: usize = 16;

/// The file a sweep directory describes itself in.
pub const PLAN_FILE: &str = "sweep.json";

/// One of `count` deterministic slices of a sweep: the runs whose index in
/// the plan is `index` modulo `count`, so each shard gets a share of every
/// config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `I/N` (I counted from 0).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let parse = |s: &str| s.trim().parse::<usize>().ok();
        match text.split_once('/').map(|(i, n)| (parse(i), parse(n))) {
            Some((Some(index), Some(count))) if count > 0 && index < count => Ok(Shard { index, count }),
            _ => Err(format!("{text:?}: expected I/N with 0 <= I < N, e.g. 0/3")),
        }
    }

    /// The shard of a Slurm array task: its id (less the array's first id)
    /// out of the array's task count, if this is an array task.
    pub fn from_slurm(var: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>, String> {
        let number = |name: &str| -> Result<Option<usize>, String> {
            var(name)
                .map(|v| v.trim().parse::<usize>().map_err(|_| format!("{name}={v:?} is not a number")))
                .transpose()
        };
        let (Some(id), Some(count)) = (number("SLURM_ARRAY_TASK_ID")?, number("SLURM_ARRAY_TASK_COUNT")?) else {
            return Ok(None);
        };
        let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        match id.checked_sub(min) {
            Some(index) if index < count => Ok(Some(Shard { index, count })),
            _ => Err(format!(
                "SLURM_ARRAY_TASK_ID {id} is not one of {count} tasks from {min}: use --array=0-{} or give --shard",
                count.saturating_sub(1)
            )),
        }
    }

    pub fn holds(&self, run_index: usize) -> bool {
        run_index % self.count == self.index
    }
}

/// How to run a sweep.
#[derive(Clone, Debug)]
pub struct Options {
    pub out: PathBuf,
    /// Simulation threads; all cores when absent.
    pub threads: Option<usize>,
    pub shard: Option<Shard>,
    /// Show a progress bar on stderr (drawn only when it is a terminal).
    pub progress: bool,
    /// Answer runs that differ only in one LRU TLB array's size in one pass
    /// (see `one_pass`); off, every run is simulated on its own. The results
    /// are the same.
    pub one_pass: bool,
}

/// What a sweep did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Runs x workloads in this sweep (or shard).
    pub jobs: usize,
    /// Jobs already complete from an earlier sweep into the directory.
    pub resumed: usize,
    /// Jobs simulated now.
    pub simulated: usize,
    /// References simulated now, summed over runs.
    pub references: u64,
    pub seconds: f64,
    /// Jobs that failed, each with why.
    pub failures: Vec<String>,
    /// Jobs answered in one pass with others, by the TLB whose size varied.
    pub one_pass: std::collections::BTreeMap<String, usize>,
    /// The table's rows, in plan order.
    pub rows: Vec<Row>,
}

/// A sweep that could not start or finish.
#[derive(Debug)]
pub enum SweepError {
    Plan(PlanError),
    /// A run's outputs could not be written.
    Run(RunError),
    /// A file of the sweep's own could not be read, written or made.
    File(FileError),
    /// The directories given to merge are not the shards of one sweep, or
    /// do not hold every run exactly once.
    NotShards(String),
    /// A file in the output directory is not what a sweep writes there.
    NotOurs {
        path: PathBuf,
        why: String,
    },
    /// The simulation threads could not be started.
    Threads(String),
    /// Another sweep or merge is writing to the output directory now.
    Busy {
        dir: PathBuf,
    },
}

impl std::fmt::Display for SweepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SweepError::Plan(e) => write!(f, "{e}"),
            SweepError::NotShards(why) => f.write_str(why),
            SweepError::Run(e) => write!(f, "{e}"),
            SweepError::File(e) => write!(f, "{e}"),
            SweepError::NotOurs { path, why } => write!(f, "{}: {why}", path.display()),
            SweepError::Threads(why) => write!(f, "cannot start the simulation threads: {why}"),
            SweepError::Busy { dir } => write!(
                f,
                "{}: another mmusim sweep or merge is writing there now (it holds {LOCK_FILE}); \
                 wait for it to finish, or give another --out",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for SweepError {}

impl From<RunError> for SweepError {
    fn from(e: RunError) -> SweepError {
        SweepError::Run(e)
    }
}

/// The file a sweep or merge locks in its output directory while it writes
/// there.
pub const LOCK_FILE: &str = ".mmusim-sweep.lock";

/// An output directory's lock, held until dropped. The system releases it
/// when the process ends, however it ends (a killed sweep leaves no stale
/// lock), so a second sweep or merge into the same directory at the same
/// time is refused instead of interleaving its files with the first's.
#[derive(Debug)]
pub struct DirectoryLock {
    _file: std::fs::File,
}

/// Takes `out`'s lock, or says who holds it.
pub fn lock_directory(out: &Path) -> Result<DirectoryLock, SweepError> {
    let path = out.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| SweepError::File(FileError::new(&path, "create", e)))?;
    match file.try_lock() {
        Ok(()) => Ok(DirectoryLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(SweepError::Busy { dir: out.to_owned() }),
        Err(std::fs::TryLockError::Error(e)) => Err(SweepError::File(FileError::new(&path, "lock", e))),
    }
}

/// Removes the temporary files (`.mmusim-*.partial`) that writers killed
/// mid-write left anywhere under `out`. Called with `out`'s lock held, when
/// no live writer can own one.
fn remove_leftovers(out: &Path) -> Result<(), SweepError> {
    let mut stack = vec![out.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| SweepError::File(FileError::new(&dir, "read", e)))?;
        for entry in entries {
            let entry = entry.map_err(|e| SweepError::File(FileError::new(&dir, "read", e)))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if name.starts_with(mmusim_trace::PARTIAL_PREFIX) && name.ends_with(mmusim_trace::PARTIAL_SUFFIX) {
                std::fs::remove_file(&path).map_err(|e| SweepError::File(FileError::new(&path, "remove", e)))?;
            }
        }
    }
    Ok(())
}

/// The directory of one run on one workload.
pub fn run_dir(out: &Path, run: &str, workload: &str) -> PathBuf {
    out.join("runs").join(run).join(workload)
}

/// Runs the plan's runs (those of `options.shard`) into `options.out`.
pub fn execute(plan: &Plan, options: &Options) -> Result<Outcome, SweepError> {
    let start = Instant::now();
    let selected: Vec<&PlannedRun> = plan
        .runs
        .iter()
        .enumerate()
        .filter(|(i, _)| options.shard.is_none_or(|s| s.holds(*i)))
        .map(|(_, r)| r)
        .collect();
    let shard = options.shard.map(|s| ShardFile {
        index: s.index,
        count: s.count,
        runs: selected.iter().map(|r| r.id.clone()).collect(),
    });
    std::fs::create_dir_all(&options.out).map_err(|e| SweepError::File(FileError::new(&options.out, "create", e)))?;
    let _lock = lock_directory(&options.out)?;
    remove_leftovers(&options.out)?;
    write_plan(&options.out, &plan.file(shard))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads.unwrap_or(0))
        .build()
        .map_err(|e| SweepError::Threads(e.to_string()))?;
    let mut outcome = Outcome { jobs: selected.len() * plan.workloads.len(), ..Outcome::default() };
    let progress = Progress::new(options.progress, outcome.jobs as u64);
    for workload in &plan.workloads {
        let mut pending = Vec::new();
        let mut hashes: Option<Result<Vec<String>, RunError>> = None;
        for run in &selected {
            let dir = run_dir(&options.out, &run.id, &workload.name);
            let summary = dir.join(SUMMARY);
            if summary.exists() {
                let hashes = hashes.get_or_insert_with(|| trace_hashes(workload));
                if let Ok(hashes) = hashes {
                    if is_complete(&summary, run, workload, hashes) {
                        outcome.resumed += 1;
                        progress.job_done();
                        continue;
                    }
                }
                // Stale (another config, other trace bytes, another
                // version): it must not outlive a failed rerun.
                std::fs::remove_file(&summary).map_err(|e| SweepError::File(FileError::new(&summary, "remove", e)))?;
            }
            remove_partial_files(&dir);
            pending.push(*run);
        }
        if pending.is_empty() {
            continue;
        }
        let (references, failures) =
            simulate(plan, &pending, workload, options, &pool, &progress, &mut outcome.one_pass);
        outcome.simulated += pending.len() - failures.len();
        outcome.references += references;
        outcome.failures.extend(failures);
    }
    progress.finish();
    outcome.rows = collect_rows(&options.out, plan, &selected, false)?;
    outputs::write_tables(&options.out, &outcome.rows)?;
    outcome.seconds = start.elapsed().as_secs_f64();
    Ok(outcome)
}

/// A simulator and the runs it answers (one, or a lane each), and how far
/// it got.
struct Slot<'p> {
    runs: Vec<&'p PlannedRun>,
    sim: Simulator,
    done: u64,
    error: Option<RunError>,
}

/// Simulates `runs` on `workload`, writing each run's directory; returns
/// the references simulated and the failures.
fn simulate(
    plan: &Plan,
    runs: &[&PlannedRun],
    workload: &NamedWorkload,
    options: &Options,
    pool: &rayon::ThreadPool,
    progress: &Progress,
    passes: &mut std::collections::BTreeMap<String, usize>,
) -> (u64, Vec<String>) {
    let out = &options.out;
    let mut failures = Vec::new();
    let mut slots: Vec<Slot> = Vec::with_capacity(runs.len());
    let groups = if options.one_pass {
        crate::one_pass::groups(&runs.iter().map(|r| &r.config).collect::<Vec<_>>())
    } else {
        (0..runs.len()).map(|i| crate::one_pass::Group { swept: None, runs: vec![i] }).collect()
    };
    for group in groups {
        let members: Vec<&PlannedRun> = group.runs.iter().map(|&i| runs[i]).collect();
        let sim = match &group.swept {
            Some(tlb) => {
                let configs: Vec<_> = members.iter().map(|r| r.config.clone()).collect();
                Simulator::with_lanes(&configs, tlb).map_err(|e| e.to_string())
            }
            None => Simulator::new(&members[0].config).map_err(|e| e.to_string()),
        };
        match sim {
            Ok(sim) => {
                if let Some(tlb) = &group.swept {
                    *passes.entry(tlb.clone()).or_insert(0) += members.len();
                }
                slots.push(Slot { runs: members, sim, done: 0, error: None });
            }
            Err(e) => failures.extend(members.iter().map(|run| format!("{} on {}: {e}", run.id, workload.name))),
        }
    }
    let traces = workload.workload.traces.iter().map(|t| t.path.display().to_string()).collect::<Vec<_>>().join(" + ");
    let mut references = 0u64;
    let mut read = 0u64;
    let streamed = crate::run::stream(&workload.workload, &workload.name, CHUNK_BATCHES, |chunk| {
        let records: u64 = chunk.iter().map(|b| b.len() as u64).sum();
        pool.install(|| {
            slots.par_iter_mut().filter(|slot| slot.error.is_none()).for_each(|slot| {
                for batch in chunk {
                    if let Err(e) = slot.sim.run(batch) {
                        slot.error = Some(RunError::Address {
                            workload: traces.clone(),
                            reference: slot.done + e.index as u64 + 1,
                            message: e.to_string(),
                        });
                        return;
                    }
                    slot.done += batch.len() as u64;
                }
            });
        });
        let live = slots.iter().filter(|s| s.error.is_none()).map(|s| s.runs.len()).sum::<usize>() as u64;
        references += records * live;
        read += records;
        progress.simulated(&workload.name, read, records * live);
        Ok(())
    });
    let provenance = match streamed {
        Ok(provenance) => provenance,
        Err(e) => {
            for run in slots.iter().flat_map(|slot| &slot.runs) {
                failures.push(format!("{} on {}: {e}", run.id, workload.name));
                progress.job_done();
            }
            return (references, failures);
        }
    };
    let lanes: Vec<(&Slot, usize)> =
        slots.iter().flat_map(|slot| (0..slot.runs.len()).map(move |lane| (slot, lane))).collect();
    let written: Vec<Result<(), String>> = pool.install(|| {
        lanes
            .par_iter()
            .map(|&(slot, lane)| {
                let run = slot.runs[lane];
                let result = match &slot.error {
                    Some(e) => Err(e.to_string()),
                    None => {
                        let output: RunOutput = crate::run::finish_lane(&slot.sim, lane, provenance.clone());
                        let dir = run_dir(out, &run.id, &workload.name);
                        outputs::write_run_dir(&dir, &run.id, &run.params(plan), &output).map_err(|e| e.to_string())
                    }
                };
                progress.job_done();
                result.map_err(|e| format!("{} on {}: {e}", run.id, workload.name))
            })
            .collect()
    });
    failures.extend(written.into_iter().filter_map(Result::err));
    (references, failures)
}

/// The provenance hash of each of a workload's traces. Standard input
/// cannot be hashed before it is read (it can be read only once), so a
/// workload read from it is never taken as done: it runs again.
fn trace_hashes(workload: &NamedWorkload) -> Result<Vec<String>, RunError> {
    if let Some(stdin) = workload.workload.traces.iter().find(|t| t.path == Path::new(mmusim_trace::STDIN)) {
        return Err(RunError::Trace(mmusim_trace::TraceError::new(
            &stdin.path,
            mmusim_trace::Location::File,
            "standard input cannot be hashed before it is read",
        )));
    }
    workload.workload.traces.par_iter().map(|t| crate::run::hash_file(&t.path)).collect()
}

/// Whether `summary` holds this run on this workload: same tool version,
/// same resolved config, same traces with the same bytes.
fn is_complete(summary: &Path, run: &PlannedRun, workload: &NamedWorkload, hashes: &[String]) -> bool {
    let Ok(text) = std::fs::read_to_string(summary) else { return false };
    let Ok(json) = serde_json::from_str::<Value>(&text) else { return false };
    let config = serde_json::to_value(&run.config).expect("configs serialize");
    let traces = json["workload"]["traces"].as_array().map(Vec::as_slice).unwrap_or_default();
    json["tool"]["version"] == env!("CARGO_PKG_VERSION")
        && json["config"] == config
        && json["workload"]["name"] == workload.name.as_str()
        && json["workload"]["quantum"] == workload.workload.quantum
        && traces.len() == hashes.len()
        && traces.iter().zip(&workload.workload.traces).zip(hashes).all(|((t, spec), hash)| {
            t["path"] == spec.path.display().to_string().as_str() && t["xxh3_128"] == hash.as_str()
        })
}

fn write_plan(out: &Path, file: &PlanFile) -> Result<(), SweepError> {
    let mut text = serde_json::to_string_pretty(file).expect("plans serialize");
    text.push('\n');
    let path = out.join(PLAN_FILE);
    mmusim_trace::write_atomically(&path, text.as_bytes())
        .map_err(|e| SweepError::File(FileError::new(&path, "write", e)))
}

/// Reads a sweep directory's `sweep.json`.
pub fn read_plan(dir: &Path) -> Result<PlanFile, SweepError> {
    let path = dir.join(PLAN_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| SweepError::NotOurs {
        path: path.clone(),
        why: format!("cannot read ({e}); is this a sweep's output directory?"),
    })?;
    serde_json::from_str(&text).map_err(|e| SweepError::NotOurs { path, why: format!("not a sweep plan: {e}") })
}

/// The rows of `runs` x the plan's workloads found in `dir`, in plan order;
/// with `require`, a missing one is an error.
fn collect_rows(dir: &Path, plan: &Plan, runs: &[&PlannedRun], require: bool) -> Result<Vec<Row>, SweepError> {
    let entries: Vec<(String, Vec<(String, String)>)> = runs.iter().map(|r| (r.id.clone(), r.params(plan))).collect();
    let workloads: Vec<String> = plan.workloads.iter().map(|w| w.name.clone()).collect();
    rows_from(dir, &entries, &workloads, require)
}

/// The rows of the given runs (id and parameters) x workloads in `dir`.
pub fn rows_from(
    dir: &Path,
    runs: &[(String, Vec<(String, String)>)],
    workloads: &[String],
    require: bool,
) -> Result<Vec<Row>, SweepError> {
    let mut rows = Vec::new();
    for (id, params) in runs {
        for workload in workloads {
            let path = run_dir(dir, id, workload).join(SUMMARY);
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !require => continue,
                Err(e) => return Err(SweepError::File(FileError::new(&path, "read", e))),
            };
            let json: Value = serde_json::from_str(&text)
                .map_err(|e| SweepError::NotOurs { path: path.clone(), why: format!("not a run summary: {e}") })?;
            rows.push(Row::from_summary(id, params, &json));
        }
    }
    Ok(rows)
}

/// What `--dry-run` prints: the runs and workloads a spec expands to.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = format!(
        "sweep {}: {} runs x {} workloads\n  parameters: {}\n  workloads:\n",
        plan.name,
        plan.runs.len(),
        plan.workloads.len(),
        plan.parameters.join(", ")
    );
    for w in &plan.workloads {
        let traces: Vec<String> = w.workload.traces.iter().map(|t| t.path.display().to_string()).collect();
        let _ = writeln!(out, "    {}: {}", w.name, traces.join(" + "));
    }
    out.push_str("  runs:\n");
    for run in &plan.runs {
        let _ = writeln!(out, "    {} ({} mode)", run.id, run.config.mode.name());
    }
    out
}

/// Metric columns of the short table a sweep prints.
const HEADLINE: [(&str, &str); 4] = [
    ("walks.per_kilo_instruction", "walks/kI"),
    ("walks.references_per_walk", "refs/walk"),
    ("walks.cycles_per_walk", "cycles/walk"),
    ("translation_cycles_per_instruction", "cycles/instr"),
];

/// What a sweep prints when it is done: what ran, a short table of every
/// row, and where the results are.
pub fn render(plan: &Plan, options: &Options, outcome: &Outcome) -> String {
    let mut out = String::new();
    let shard = options.shard.map_or(String::new(), |s| format!(" (shard {}/{})", s.index, s.count));
    let _ = writeln!(
        out,
        "sweep {}{shard}: {} runs on {} workloads: {} simulated, {} already done, {} failed; {} references in {:.1} s ({:.1} M/s)",
        plan.name,
        outcome.jobs / plan.workloads.len().max(1),
        plan.workloads.len(),
        outcome.simulated,
        outcome.resumed,
        outcome.failures.len(),
        crate::text::thousands(outcome.references),
        outcome.seconds,
        outcome.references as f64 / outcome.seconds.max(1e-9) / 1e6
    );
    for (tlb, jobs) in &outcome.one_pass {
        let _ = writeln!(
            out,
            "  one pass: {jobs} runs x workloads that differ only in tlb.{tlb}'s ways were simulated together (LRU stack distances)"
        );
    }
    let configs: Vec<&mmusim_translate::Config> = plan.runs.iter().map(|r| &r.config).collect();
    if let Some(limits) = crate::one_pass::memory_curve_candidates(&configs) {
        let list: Vec<String> = limits.iter().map(|l| format!("\"{l}\"")).collect();
        let _ = writeln!(
            out,
            "  memory.resident under lru: each limit simulated on its own (evictions invalidate translations, so TLB metrics differ by limit); \
             for the paging metrics alone, one run with memory.curve = [{}] answers every limit in one pass",
            list.join(", ")
        );
    }
    let width = outcome.rows.iter().map(|r| r.run.len()).max().unwrap_or(3).max(3);
    let wwidth = outcome.rows.iter().map(|r| r.workload.len()).max().unwrap_or(8).max(8);
    let _ = write!(out, "  {:<width$}  {:<wwidth$}", "run", "workload");
    for (_, title) in HEADLINE {
        let _ = write!(out, " {title:>12}");
    }
    out.push('\n');
    for row in &outcome.rows {
        let _ = write!(out, "  {:<width$}  {:<wwidth$}", row.run, row.workload);
        for (key, _) in HEADLINE {
            let value = row.metrics.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.as_f64());
            let _ = write!(out, " {:>12}", value.map_or_else(|| "-".to_owned(), |v| format!("{v:.4}")));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "  wrote metrics.csv, histograms.csv, sweep.json and runs/ to {}", options.out.display());
    out
}

/// Runs done and references per second, on stderr when it is a terminal.
struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    references: std::sync::atomic::AtomicU64,
}

impl Progress {
    fn new(show: bool, jobs: u64) -> Progress {
        let bar = show.then(|| {
            let bar = ProgressBar::new(jobs);
            bar.set_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:20}] {pos}/{len} runs  {msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar
        });
        Progress { bar, start: Instant::now(), references: 0.into() }
    }

    /// `read` references of `workload` so far; `simulated` more in all.
    fn simulated(&self, workload: &str, read: u64, simulated: u64) {
        let total = self.references.fetch_add(simulated, std::sync::atomic::Ordering::Relaxed) + simulated;
        if let Some(bar) = &self.bar {
            let rate = total as f64 / self.start.elapsed().as_secs_f64().max(1e-9) / 1e6;
            bar.set_message(format!("{workload}: {:.1}M refs read, {rate:.0}M refs/s", read as f64 / 1e6));
        }
    }

    fn job_done(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Merges the output directories of a sweep's shards into `out`, checking
/// that they are shards of one plan and hold every run exactly once. The
/// result is what the unsharded sweep writes, byte for byte.
pub fn merge(out: &Path, shards: &[PathBuf]) -> Result<usize, SweepError> {
    let bad = SweepError::NotShards;
    let mut plan: Option<(PathBuf, PlanFile)> = None;
    let mut holder: std::collections::HashMap<String, &Path> = std::collections::HashMap::new();
    for dir in shards {
        let mut file = read_plan(dir)?;
        let shard = file.shard.take();
        match &plan {
            None => plan = Some((dir.clone(), file.clone())),
            Some((first, expected)) if *expected != file => {
                return Err(bad(format!(
                    "{} and {} are not shards of the same sweep (their sweep.json plans differ)",
                    first.display(),
                    dir.display()
                )));
            }
            Some(_) => {}
        }
        let ids = shard.map_or_else(|| file.runs.iter().map(|r| r.id.clone()).collect(), |s| s.runs);
        for id in ids {
            if let Some(other) = holder.insert(id.clone(), dir) {
                return Err(bad(format!("run {id} is in both {} and {}", other.display(), dir.display())));
            }
        }
    }
    let Some((_, plan)) = plan else { return Err(bad("no shard directories given".into())) };
    let missing: Vec<&str> = plan.runs.iter().map(|r| r.id.as_str()).filter(|id| !holder.contains_key(*id)).collect();
    if !missing.is_empty() {
        return Err(bad(format!(
            "{} of {} runs are in no shard: {}{}",
            missing.len(),
            plan.runs.len(),
            missing.iter().take(5).copied().collect::<Vec<_>>().join(", "),
            if missing.len() > 5 { ", ..." } else { "" }
        )));
    }
    let workloads: Vec<String> = plan.workloads.iter().map(|w| w.name.clone()).collect();
    for run in &plan.runs {
        let shard = holder[&run.id];
        for workload in &workloads {
            let from = run_dir(shard, &run.id, workload);
            if !from.join(SUMMARY).exists() {
                return Err(bad(format!(
                    "{}: run {} on {} did not finish (no {SUMMARY}); rerun that shard, which resumes",
                    shard.display(),
                    run.id,
                    workload
                )));
            }
        }
    }
    std::fs::create_dir_all(out).map_err(|e| SweepError::File(FileError::new(out, "create", e)))?;
    let _lock = lock_directory(out)?;
    remove_leftovers(out)?;
    for run in &plan.runs {
        let shard = holder[&run.id];
        for workload in &workloads {
            copy_run_dir(&run_dir(shard, &run.id, workload), &run_dir(out, &run.id, workload))?;
        }
    }
    write_plan(out, &plan)?;
    let entries: Vec<(String, Vec<(String, String)>)> = plan
        .runs
        .iter()
        .map(|r| (r.id.clone(), plan.parameters.iter().cloned().zip(r.values.iter().cloned()).collect()))
        .collect();
    let rows = rows_from(out, &entries, &workloads, true)?;
    outputs::write_tables(out, &rows)?;
    Ok(plan.runs.len())
}

/// Copies a run directory's files, `summary.json` last so that the copy is
/// complete exactly when it has one.
fn copy_run_dir(from: &Path, to: &Path) -> Result<(), SweepError> {
    if from == to {
        return Ok(());
    }
    let io = |path: &Path, action: &'static str, e: std::io::Error| SweepError::File(FileError::new(path, action, e));
    std::fs::create_dir_all(to).map_err(|e| io(to, "create", e))?;
    for name in outputs::RUN_FILES {
        let source = from.join(name);
        let bytes = std::fs::read(&source).map_err(|e| io(&source, "read", e))?;
        let dest = to.join(name);
        mmusim_trace::write_atomically(&dest, &bytes).map_err(|e| io(&dest, "write", e))?;
    }
    Ok(())
}

/// Removes what an interrupted write left in a run directory: temporary
/// files that never got renamed into place.
fn remove_partial_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(mmusim_trace::PARTIAL_PREFIX) && name.ends_with(mmusim_trace::PARTIAL_SUFFIX) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_partition_round_robin() {
        assert_eq!(Shard::parse("1/3"), Ok(Shard { index: 1, count: 3 }));
        for bad in ["3/3", "1", "a/3", "0/0", "-1/3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let shards: Vec<Shard> = (0..3).map(|index| Shard { index, count: 3 }).collect();
        for run in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.holds(run)).count(), 1);
        }
        assert!(shards[1].holds(4) && shards[1].holds(7));
    }

    #[test]
    fn slurm_array_variables_give_the_shard() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        assert_eq!(Shard::from_slurm(env(&[])), Ok(None));
        assert_eq!(
            Shard::from_slurm(env(&[("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_COUNT", "3")])),
            Ok(Some(Shard { index: 2, count: 3 }))
        );
        // --array=1-3: ids count from the array's first.
        assert_eq!(
            Shard::from_slurm(env(&[
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
                ("SLURM_ARRAY_TASK_MIN", "1")
            ])),
            Ok(Some(Shard { index: 0, count: 3 }))
        );
        assert!(Shard::from_slurm(env(&[("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_COUNT", "3")])).is_err());
        assert!(Shard::from_slurm(env(&[("SLURM_ARRAY_TASK_ID", "x"), ("SLURM_ARRAY_TASK_COUNT", "3")])).is_err());
    }
}
