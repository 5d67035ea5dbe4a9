//! Multi-programmed workloads: several traces interleaved round-robin.
//!
//! Each trace runs for a quantum of instructions, then the next live trace
//! runs; a trace that ends leaves the rotation and the mix ends when all have
//! ended. A slice holds exactly `quantum` instruction fetches and the data
//! references that follow the last of them, so a slice boundary never splits
//! an instruction from its operands.
//!
//! Each trace is its own address space: contexts are renumbered in order of
//! first appearance of (trace, context) pairs, so two traces never share one.
//! A trace's VM is the one its spec gives, else the VM its records carry
//! (0 for every format but mmusim's own). A workload of one trace passes its
//! records through with their own contexts.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::access::{Access, Kind};
use crate::error::{Location, TraceError};
use crate::format::Format;
use crate::reader::{Batch, TraceReader, BATCH_RECORDS};

/// Something that fills batches of records: one trace, or a mix of them.
pub trait BatchSource {
    /// Refills `batch`; `false` (with `batch` empty) once the source has ended.
    fn next_batch(&mut self, batch: &mut Batch) -> Result<bool, TraceError>;
}

impl BatchSource for TraceReader {
    fn next_batch(&mut self, batch: &mut Batch) -> Result<bool, TraceError> {
        TraceReader::next_batch(self, batch)
    }
}

/// Instructions per turn when a workload does not say.
pub const DEFAULT_QUANTUM: u64 = 100_000;

fn default_quantum() -> u64 {
    DEFAULT_QUANTUM
}

/// One trace of a workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSpec {
    /// The trace file; relative paths in a workload file are relative to it.
    pub path: PathBuf,
    /// The trace's format, when it should not be told from its content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// The virtual machine the trace runs in; traces with the same VM share
    /// it. Absent: the VM the records carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<u16>,
}

impl TraceSpec {
    pub fn new(path: impl Into<PathBuf>) -> TraceSpec {
        TraceSpec { path: path.into(), format: None, vm: None }
    }
}

/// Several traces and the quantum they are interleaved with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Instructions each trace runs before the next one's turn.
    #[serde(default = "default_quantum")]
    pub quantum: u64,
    #[serde(rename = "trace")]
    pub traces: Vec<TraceSpec>,
}

impl Workload {
    pub fn new(traces: Vec<TraceSpec>, quantum: u64) -> Workload {
        Workload { quantum, traces }
    }

    /// Reads a workload file (TOML: `quantum`, and `[[trace]]` tables with
    /// `path`, optional `format` and `vm`).
    pub fn load(path: &Path) -> Result<Workload, TraceError> {
        let text = std::fs::read_to_string(path).map_err(|e| TraceError::io(path, "cannot read", &e))?;
        let mut workload: Workload = toml::from_str(&text).map_err(|e| {
            let location = e.span().map_or(Location::File, |span| {
                Location::Line(1 + text[..span.start].bytes().filter(|&b| b == b'\n').count() as u64)
            });
            TraceError::new(path, location, e.message().trim_end().to_owned())
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        for spec in &mut workload.traces {
            if spec.path.is_relative() {
                spec.path = base.join(&spec.path);
            }
        }
        workload.validate().map_err(|why| TraceError::new(path, Location::File, why))?;
        Ok(workload)
    }

    /// Checks what serde cannot: at least one trace and a non-zero quantum.
    pub fn validate(&self) -> Result<(), String> {
        if self.traces.is_empty() {
            return Err("a workload needs at least one [[trace]]".into());
        }
        if self.quantum == 0 {
            return Err("quantum must be at least 1 instruction".into());
        }
        Ok(())
    }

    /// Opens every trace and returns the interleaved stream.
    pub fn open(&self) -> Result<Mix, TraceError> {
        Mix::new(self)
    }
}

/// One trace's place in the rotation.
#[derive(Debug)]
struct Lane {
    reader: TraceReader,
    batch: Batch,
    pos: usize,
    vm: Option<u16>,
    /// (context in the trace, context in the mix), in order of appearance.
    contexts: Vec<(u16, u16)>,
    done: bool,
}

/// The interleaved records of a workload.
#[derive(Debug)]
pub struct Mix {
    lanes: Vec<Lane>,
    current: usize,
    quantum: u64,
    /// Instruction fetches of the current slice so far.
    slice_instructions: u64,
    next_context: u32,
    live: usize,
}

impl Mix {
    pub fn new(workload: &Workload) -> Result<Mix, TraceError> {
        if let Err(why) = workload.validate() {
            let path = workload.traces.first().map_or_else(PathBuf::new, |t| t.path.clone());
            return Err(TraceError::new(path, Location::File, why));
        }
        let lanes = workload
            .traces
            .iter()
            .map(|spec| {
                Ok(Lane {
                    reader: TraceReader::open_as(&spec.path, spec.format)?,
                    batch: Batch::new(),
                    pos: 0,
                    vm: spec.vm,
                    contexts: Vec::new(),
                    done: false,
                })
            })
            .collect::<Result<Vec<_>, TraceError>>()?;
        let live = lanes.len();
        Ok(Mix { lanes, current: 0, quantum: workload.quantum, slice_instructions: 0, next_context: 0, live })
    }

    /// The readers, in workload order (for their formats and byte counts).
    pub fn readers(&self) -> impl Iterator<Item = &TraceReader> {
        self.lanes.iter().map(|lane| &lane.reader)
    }

    fn rotate(&mut self) {
        self.slice_instructions = 0;
        if self.live == 0 {
            return;
        }
        let n = self.lanes.len();
        for step in 1..=n {
            let next = (self.current + step) % n;
            if !self.lanes[next].done {
                self.current = next;
                return;
            }
        }
    }

    /// The mix's context for `inner` of the current lane.
    fn context(&mut self, inner: u16) -> Result<u16, TraceError> {
        let lane = &mut self.lanes[self.current];
        if let Some(&(_, global)) = lane.contexts.iter().find(|(i, _)| *i == inner) {
            return Ok(global);
        }
        let global = u16::try_from(self.next_context).map_err(|_| {
            TraceError::new(
                lane.reader.path(),
                Location::File,
                "the workload has more than 65536 address spaces; mmusim numbers them in 16 bits",
            )
        })?;
        self.next_context += 1;
        lane.contexts.push((inner, global));
        Ok(global)
    }
}

impl BatchSource for Mix {
    fn next_batch(&mut self, out: &mut Batch) -> Result<bool, TraceError> {
        out.clear();
        let single = self.lanes.len() == 1;
        if single && self.lanes[0].pos == self.lanes[0].batch.len() {
            // One trace: read straight into the caller's batch, no copy.
            let lane = &mut self.lanes[0];
            if !lane.reader.next_batch(out)? {
                lane.done = true;
                self.live = 0;
                return Ok(false);
            }
            if let Some(vm) = lane.vm {
                for access in out.records_mut().iter_mut() {
                    access.vm = vm;
                }
            }
            return Ok(true);
        }
        while out.len() < BATCH_RECORDS && self.live > 0 {
            let current = self.current;
            let lane = &mut self.lanes[current];
            if lane.pos == lane.batch.len() {
                lane.pos = 0;
                if !lane.reader.next_batch(&mut lane.batch)? {
                    lane.done = true;
                    self.live -= 1;
                    self.rotate();
                    continue;
                }
            }
            // Renumbering is per context, which changes rarely: remember the
            // last pair instead of searching for every record.
            let mut last: Option<(u16, u16)> = None;
            let mut rotate = false;
            while out.len() < BATCH_RECORDS {
                let lane = &mut self.lanes[current];
                let Some(&access) = lane.batch.get(lane.pos) else { break };
                if access.kind == Kind::Fetch {
                    if self.slice_instructions == self.quantum && self.live > 1 {
                        rotate = true;
                        break;
                    }
                    self.slice_instructions += 1;
                }
                let vm = lane.vm.unwrap_or(access.vm);
                lane.pos += 1;
                let context = if single {
                    access.context
                } else {
                    match last {
                        Some((inner, global)) if inner == access.context => global,
                        _ => {
                            let global = self.context(access.context)?;
                            last = Some((access.context, global));
                            global
                        }
                    }
                };
                out.push(Access { context, vm, ..access });
            }
            if rotate {
                self.rotate();
            }
        }
        Ok(!out.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_files_resolve_paths_and_reject_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(&path, "quantum = 5\n[[trace]]\npath = \"a.lackey\"\nvm = 1\n[[trace]]\npath = \"/abs/b\"\n")
            .unwrap();
        let workload = Workload::load(&path).unwrap();
        assert_eq!(workload.quantum, 5);
        assert_eq!(workload.traces[0].path, dir.path().join("a.lackey"));
        assert_eq!(workload.traces[0].vm, Some(1));
        assert_eq!(workload.traces[1].path, PathBuf::from("/abs/b"));

        std::fs::write(&path, "quantum = 5\n[[trace]]\npath = \"a\"\nvmm = 1\n").unwrap();
        let err = Workload::load(&path).unwrap_err().to_string();
        assert!(err.contains("w.toml: line 4") && err.contains("vmm"), "{err}");

        std::fs::write(&path, "quantum = 0\n[[trace]]\npath = \"a\"\n").unwrap();
        assert!(Workload::load(&path).unwrap_err().to_string().contains("quantum must be at least 1"));
    }
}
