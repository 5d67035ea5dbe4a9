//! What a results directory holds, read back for pictures: a sweep's plan
//! and the rows of its runs, or one run.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::outputs::{Row, SUMMARY};
use crate::plan::{PlanFile, RunEntryFile};
use crate::run::FileError;
use crate::sweep::{self, SweepError};

/// A run or a sweep, as its directory holds it.
#[derive(Clone, Debug)]
pub struct Results {
    pub dir: PathBuf,
    /// `sweep NAME` or `run NAME`, for titles.
    pub label: String,
    pub description: Option<String>,
    /// The parameter columns (`config`, then each axis's key).
    pub parameters: Vec<String>,
    /// Each run's id and parameter values, in plan order.
    pub runs: Vec<RunEntryFile>,
    pub workloads: Vec<WorkloadInfo>,
    /// The rows found, in plan order (a sweep still running, or a shard,
    /// may lack some).
    pub rows: Vec<Row>,
    /// How many rows the plan has.
    pub planned_rows: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadInfo {
    pub name: String,
    pub traces: Vec<String>,
}

/// Why a directory cannot be pictured.
#[derive(Debug)]
pub enum ReportError {
    /// Neither a sweep's nor a run's directory, or one whose files are not ours.
    NotResults { path: PathBuf, why: String },
    /// A sweep directory's files could not be read.
    Sweep(SweepError),
    /// A file could not be read or written.
    File(FileError),
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportError::NotResults { path, why } => write!(f, "{}: {why}", path.display()),
            ReportError::Sweep(e) => write!(f, "{e}"),
            ReportError::File(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReportError {}

impl Results {
    /// Reads a sweep directory (it has `sweep.json`) or a run directory (it
    /// has `summary.json`).
    pub fn read(dir: &Path) -> Result<Results, ReportError> {
        if dir.join(sweep::PLAN_FILE).exists() {
            let plan = sweep::read_plan(dir).map_err(ReportError::Sweep)?;
            Results::of_sweep(dir, plan)
        } else if dir.join(SUMMARY).exists() {
            Results::of_run(dir)
        } else if !dir.is_dir() {
            Err(ReportError::NotResults { path: dir.to_owned(), why: "not a directory".into() })
        } else {
            Err(ReportError::NotResults {
                path: dir.to_owned(),
                why: format!("holds neither {} (a sweep's output) nor {SUMMARY} (a run's output)", sweep::PLAN_FILE),
            })
        }
    }

    fn of_sweep(dir: &Path, plan: PlanFile) -> Result<Results, ReportError> {
        let runs = plan.runs.clone();
        let entries: Vec<(String, Vec<(String, String)>)> = runs
            .iter()
            .map(|run| (run.id.clone(), plan.parameters.iter().cloned().zip(run.values.iter().cloned()).collect()))
            .collect();
        let names: Vec<String> = plan.workloads.iter().map(|w| w.name.clone()).collect();
        let rows = sweep::rows_from(dir, &entries, &names, false).map_err(ReportError::Sweep)?;
        let shard_runs = plan.shard.as_ref().map_or(runs.len(), |s| s.runs.len());
        Ok(Results {
            dir: dir.to_owned(),
            label: format!("sweep {}", plan.sweep),
            description: plan.description.clone(),
            parameters: plan.parameters.clone(),
            runs,
            workloads: plan
                .workloads
                .iter()
                .map(|w| WorkloadInfo { name: w.name.clone(), traces: w.traces.clone() })
                .collect(),
            rows,
            planned_rows: shard_runs * names.len(),
        })
    }

    fn of_run(dir: &Path) -> Result<Results, ReportError> {
        let path = dir.join(SUMMARY);
        let text = std::fs::read_to_string(&path).map_err(|e| ReportError::File(FileError::new(&path, "read", e)))?;
        let summary: Value = serde_json::from_str(&text)
            .map_err(|e| ReportError::NotResults { path: path.clone(), why: format!("not a run summary: {e}") })?;
        let config = summary["config"]["name"].as_str().unwrap_or("run").to_owned();
        let workload = &summary["workload"];
        let info = WorkloadInfo {
            name: workload["name"].as_str().unwrap_or("").to_owned(),
            traces: workload["traces"]
                .as_array()
                .map(|traces| traces.iter().filter_map(|t| t["path"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
        };
        // A run's CSV row has the config's name as its run id and its one
        // parameter, as `mmusim run` writes it.
        let params = vec![("config".to_owned(), config.clone())];
        let row = Row::from_summary(&config, &params, &summary);
        Ok(Results {
            dir: dir.to_owned(),
            label: format!("run {config}"),
            description: summary["config"]["description"].as_str().map(str::to_owned),
            parameters: vec!["config".to_owned()],
            runs: vec![RunEntryFile { id: config.clone(), values: vec![config] }],
            workloads: vec![info],
            rows: vec![row],
            planned_rows: 1,
        })
    }

    /// The row of a run on a workload, if the directory has it.
    pub fn row(&self, run: &str, workload: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.run == run && r.workload == workload)
    }

    /// The workloads' names, in plan order.
    pub fn workload_names(&self) -> Vec<String> {
        self.workloads.iter().map(|w| w.name.clone()).collect()
    }
}

/// A metric of a row as a number: absent, null and text metrics are `None`.
pub fn number(row: &Row, metric: &str) -> Option<f64> {
    row.metrics.iter().find(|(k, _)| k == metric).and_then(|(_, v)| v.as_f64())
}
