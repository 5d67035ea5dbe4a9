//! One run: a workload through the machine a config describes, with the
//! provenance that makes its numbers reproducible.

use std::fmt;
use std::path::Path;

use mmusim_trace::{Format, TraceError, Workload};
use mmusim_translate::sim::SimReport;
use mmusim_translate::{Config, Simulator};
use serde::Serialize;

use crate::metrics::Metrics;

/// Where a trace came from, exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceProvenance {
    /// The path as given.
    pub path: String,
    pub format: Format,
    pub compression: mmusim_trace::Compression,
    /// Size of the file on disk.
    pub bytes: u64,
    /// xxh3-128 (`mmusim_trace::HASH_ALGORITHM`) of the file's bytes on
    /// disk (of a drmemtrace directory's files: see ARCHITECTURE.md), hex.
    pub xxh3_128: String,
    /// References read from it.
    pub records: u64,
    /// Its VM in the workload, if the workload set one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm: Option<u16>,
}

/// The workload part of the provenance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkloadProvenance {
    /// Its name in tables (the traces' file names up to their first dot,
    /// joined by `+`, unless a sweep names it).
    pub name: String,
    /// Instructions per turn (only meaningful with several traces).
    pub quantum: u64,
    pub traces: Vec<TraceProvenance>,
}

/// Everything a run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// The resolved config.
    pub config: Config,
    pub workload: WorkloadProvenance,
    pub report: SimReport,
    pub metrics: Metrics,
    /// References and cycles per walk, exactly.
    pub references: mmusim_translate::histogram::Distribution,
    pub cycles: mmusim_translate::histogram::Distribution,
}

/// A file that could not be read, written or made: which, what was tried,
/// and what the system said.
#[derive(Debug)]
pub struct FileError {
    pub path: std::path::PathBuf,
    /// "read", "write", "create", "remove".
    pub action: &'static str,
    pub source: std::io::Error,
}

impl FileError {
    pub fn new(path: &Path, action: &'static str, source: std::io::Error) -> FileError {
        FileError { path: path.to_owned(), action, source }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: cannot {}: {}", self.path.display(), self.action, self.source)
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[derive(Debug)]
pub enum RunError {
    Trace(TraceError),
    Config(mmusim_translate::ConfigError),
    /// A reference the configured page table cannot translate.
    Address {
        workload: String,
        reference: u64,
        message: String,
    },
    /// An output that could not be written.
    File(FileError),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Trace(e) => write!(f, "{e}"),
            RunError::Config(e) => write!(f, "{e}"),
            RunError::Address { workload, reference, message } => {
                write!(f, "{workload}: reference {reference}: {message}")
            }
            RunError::File(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RunError {}

impl From<TraceError> for RunError {
    fn from(e: TraceError) -> RunError {
        RunError::Trace(e)
    }
}

/// This process's peak resident memory in bytes (Linux's VmHWM), where the
/// system tells it.
pub fn peak_resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// The provenance hash of a file (or drmemtrace directory), hex.
pub fn hash_file(path: &Path) -> Result<String, RunError> {
    mmusim_trace::hash_file(path).map_err(RunError::Trace)
}

/// Batches a run's reader hands over at a time. Each hand-over may wake a
/// sleeping thread (a futex call each side): handing over one batch at a
/// time, a 484 MB Lackey run took 0.55-0.60 s, sixteen at a time 0.47-0.49
/// s, while keeping at most a few megabytes in flight.
const RUN_BATCHES_PER_CHUNK: usize = 16;

/// Runs `workload` on the machine `config` describes: the traces are read
/// and decoded on one thread while the simulation runs on this one.
pub fn run(config: &Config, workload: &Workload) -> Result<RunOutput, RunError> {
    let name = crate::outputs::workload_name(&workload.traces.iter().map(|t| t.path.clone()).collect::<Vec<_>>());
    run_named(config, workload, &name)
}

/// `run`, with the workload's name given.
pub fn run_named(config: &Config, workload: &Workload, name: &str) -> Result<RunOutput, RunError> {
    let mut sim = Simulator::new(config).map_err(RunError::Config)?;
    let names: Vec<String> = workload.traces.iter().map(|t| t.path.display().to_string()).collect();
    let mut done = 0u64;
    let provenance = stream(workload, name, RUN_BATCHES_PER_CHUNK, |chunk| {
        for batch in chunk {
            sim.run(batch).map_err(|e| RunError::Address {
                workload: names.join(" + "),
                reference: done + e.index as u64 + 1,
                message: e.to_string(),
            })?;
            done += batch.len() as u64;
        }
        Ok(())
    })?;
    Ok(finish(&sim, provenance))
}

/// Reads `workload` once, feeding it to `consume` in chunks of up to
/// `batches_per_chunk` batches while a reader thread decodes ahead, and
/// returns its provenance: plain files are hashed from disk alongside,
/// compressed ones by their readers as the bytes pass.
pub fn stream(
    workload: &Workload,
    name: &str,
    batches_per_chunk: usize,
    consume: impl FnMut(&[mmusim_trace::Batch]) -> Result<(), RunError>,
) -> Result<WorkloadProvenance, RunError> {
    let mut mix = workload.open()?;
    // Every reader hashes its file's bytes in the pass that decodes them.
    let result = crate::pipeline::for_each_chunk(&mut mix, batches_per_chunk, consume);
    match result {
        Ok(()) => {}
        Err(crate::pipeline::Stop::Trace(e)) => return Err(RunError::Trace(e)),
        Err(crate::pipeline::Stop::Consumer(e)) => return Err(e),
    }
    let traces = mix
        .readers()
        .zip(&workload.traces)
        .map(|(reader, spec)| {
            let xxh3_128 = match reader.hash() {
                Some(hash) => hash,
                // A stream the decoder did not read to its last byte: a
                // file can be read again to hash it, a pipe cannot.
                None if std::fs::metadata(&spec.path).is_ok_and(|m| m.is_file() || m.is_dir()) => {
                    hash_file(&spec.path)?
                }
                None => {
                    return Err(RunError::Trace(TraceError::new(
                        &spec.path,
                        mmusim_trace::Location::File,
                        "the stream ended before its last byte was read, so it cannot be hashed for provenance",
                    )))
                }
            };
            Ok(TraceProvenance {
                path: spec.path.display().to_string(),
                format: reader.format(),
                compression: reader.compression(),
                bytes: reader.file_bytes(),
                xxh3_128,
                records: reader.records_read(),
                vm: spec.vm,
            })
        })
        .collect::<Result<Vec<_>, RunError>>()?;
    Ok(WorkloadProvenance { name: name.to_owned(), quantum: workload.quantum, traces })
}

/// A finished simulator's outputs.
pub fn finish(sim: &Simulator, workload: WorkloadProvenance) -> RunOutput {
    finish_lane(sim, 0, workload)
}

/// The outputs of one lane of a finished simulator (see
/// `Simulator::with_lanes`).
pub fn finish_lane(sim: &Simulator, lane: usize, workload: WorkloadProvenance) -> RunOutput {
    let report = sim.lane_report(lane);
    let (references, cycles) = sim.lane_histograms(lane);
    let config = sim.lane_config(lane);
    let metrics = Metrics::new(config, &report, references, cycles);
    RunOutput {
        config: config.clone(),
        workload,
        report,
        metrics,
        references: references.clone(),
        cycles: cycles.clone(),
    }
}
