//! A sweep spec, and the plan it expands to: every run's id, parameters and
//! resolved config, and every workload, all checked before anything runs.
//!
//! A spec names one or more configs (the implicit first parameter,
//! `config`), the workloads (`traces`, each its own workload, and
//! `[[workload]]` tables for mixes), overrides common to every run (`[set]`)
//! and axes (`[axes]`): dotted config keys with a list of values or a range.
//! The runs are the Cartesian product of the configs and the axes, in the
//! order the spec gives them, the last axis varying fastest.

use std::fmt;
use std::path::{Path, PathBuf};

use mmusim_trace::{TraceSpec, Workload, DEFAULT_QUANTUM};
use mmusim_translate::Config;
use serde::{Deserialize, Serialize};

use crate::config_file;

/// Most runs a sweep may expand to: far more than any cluster run needs,
/// few enough that a typo (a range with step 1) is caught before it runs.
pub const MAX_RUNS: usize = 100_000;

/// A sweep spec that cannot be used: which file, where in it, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The spec cannot be read, or is not TOML of a spec's shape.
    Unreadable { spec: PathBuf, why: String },
    /// Part of the spec is wrong; `at` names it where there is a name: a
    /// key (`axes.tlb.l1d.entries`, `set.pages.size`) or a table
    /// (`workload[2]`).
    Invalid { spec: PathBuf, at: Option<String>, why: String },
    /// A config the spec lists cannot be read (`why` names the config).
    Config { spec: PathBuf, why: String },
    /// One run's config is refused (an axis value a config cannot take).
    Run { spec: PathBuf, run: String, why: String },
    /// The spec expands to more runs than a sweep may hold.
    TooManyRuns { spec: PathBuf, runs: usize },
}

impl PlanError {
    fn invalid(spec: &Path, at: impl Into<Option<String>>, why: impl fmt::Display) -> PlanError {
        PlanError::Invalid { spec: spec.to_owned(), at: at.into(), why: why.to_string() }
    }

    fn run(spec: &Path, run: &str, why: impl fmt::Display) -> PlanError {
        PlanError::Run { spec: spec.to_owned(), run: run.to_owned(), why: why.to_string() }
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Unreadable { spec, why } | PlanError::Config { spec, why } => {
                write!(f, "{}: {why}", spec.display())
            }
            PlanError::Invalid { spec, at: Some(at), why } => write!(f, "{}: {at}: {why}", spec.display()),
            PlanError::Invalid { spec, at: None, why } => write!(f, "{}: {why}", spec.display()),
            PlanError::Run { spec, run, why } => write!(f, "{}: run {run}: {why}", spec.display()),
            PlanError::TooManyRuns { spec, runs } => {
                write!(f, "{}: {runs} runs is more than the {MAX_RUNS} a sweep may hold", spec.display())
            }
        }
    }
}

impl std::error::Error for PlanError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    name: Option<String>,
    description: Option<String>,
    config: Option<PathBuf>,
    configs: Option<Vec<PathBuf>>,
    #[serde(default)]
    traces: Vec<PathBuf>,
    #[serde(default, rename = "workload")]
    workloads: Vec<WorkloadEntry>,
    #[serde(default)]
    set: toml::Table,
    #[serde(default)]
    axes: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadEntry {
    name: Option<String>,
    /// A workload file, instead of `quantum` and `trace` here.
    file: Option<PathBuf>,
    quantum: Option<u64>,
    #[serde(default)]
    trace: Vec<TraceSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Range {
    from: i64,
    to: i64,
    step: Option<i64>,
    factor: Option<i64>,
}

/// One swept key and its values, in the spec's order.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<toml::Value>,
}

/// A workload with the name its rows and directories go by.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedWorkload {
    pub name: String,
    pub workload: Workload,
}

/// One point of the sweep: a config with the axes' values laid over it.
#[derive(Clone, Debug)]
pub struct PlannedRun {
    /// Stable and readable: `skylake,tlb.l2.entries=1024,pages.policy=thp`.
    pub id: String,
    /// The parameters' values, as the plan's `parameters` name them.
    pub values: Vec<String>,
    pub config: Config,
}

/// Everything a sweep will do.
#[derive(Clone, Debug)]
pub struct Plan {
    pub name: String,
    pub description: Option<String>,
    /// The spec as given on the command line.
    pub spec: PathBuf,
    /// `config`, then each axis's key.
    pub parameters: Vec<String>,
    pub runs: Vec<PlannedRun>,
    pub workloads: Vec<NamedWorkload>,
}

impl PlannedRun {
    /// (parameter, value) pairs, as the tables' parameter columns hold them.
    pub fn params(&self, plan: &Plan) -> Vec<(String, String)> {
        plan.parameters.iter().cloned().zip(self.values.iter().cloned()).collect()
    }
}

/// `dir/path` without the `x/..` steps the join leaves, when the shorter
/// path names the same file (it may not, through a symlink), so provenance
/// reads `traces/sort.lackey.zst`, not `configs/sweeps/../../traces/...`.
pub fn tidy_join(dir: &Path, path: &Path) -> PathBuf {
    let joined = dir.join(path);
    let mut tidy = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::ParentDir
                if matches!(tidy.components().next_back(), Some(std::path::Component::Normal(_))) =>
            {
                tidy.pop();
            }
            std::path::Component::CurDir => {}
            other => tidy.push(other),
        }
    }
    if tidy.as_os_str().is_empty() {
        tidy.push(".");
    }
    match (std::fs::canonicalize(&joined), std::fs::canonicalize(&tidy)) {
        (Ok(a), Ok(b)) if a == b => tidy,
        _ => joined,
    }
}

/// A trace path of a spec: relative to the spec's directory, except `-`
/// (standard input).
fn trace_path(dir: &Path, path: &Path) -> PathBuf {
    if path == Path::new(mmusim_trace::STDIN) {
        path.to_owned()
    } else {
        tidy_join(dir, path)
    }
}

/// Reads a sweep spec and expands it into a plan, resolving every run's
/// config, so a misspelt key or an impossible geometry stops the sweep
/// before anything runs.
pub fn load(spec: &Path) -> Result<Plan, PlanError> {
    let unreadable = |why: String| PlanError::Unreadable { spec: spec.to_owned(), why };
    let text = std::fs::read_to_string(spec).map_err(|e| unreadable(format!("cannot read: {e}")))?;
    let file: SpecFile = config_file::parse_toml(&text).map_err(unreadable)?;
    let dir = spec.parent().unwrap_or(Path::new(""));
    let configs = match (file.config, file.configs) {
        (Some(one), None) => vec![one],
        (None, Some(many)) if !many.is_empty() => many,
        (None, None) | (None, Some(_)) => {
            return Err(PlanError::invalid(spec, None, "expected `config = \"FILE\"` or `configs = [\"FILE\", ...]`"))
        }
        (Some(_), Some(_)) => return Err(PlanError::invalid(spec, None, "give `config` or `configs`, not both")),
    };
    let workloads = workloads(spec, dir, file.traces, file.workloads)?;
    let mut set = Vec::new();
    flatten_set("", file.set, &mut set);
    let mut axes = Vec::new();
    flatten_axes(spec, "", file.axes, &mut axes)?;
    let name =
        file.name.unwrap_or_else(|| spec.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
    let configs: Vec<PathBuf> = configs.iter().map(|c| tidy_join(dir, c)).collect();
    expand(spec, name, file.description, &configs, &set, &axes, workloads)
}

fn workloads(
    spec: &Path,
    dir: &Path,
    traces: Vec<PathBuf>,
    entries: Vec<WorkloadEntry>,
) -> Result<Vec<NamedWorkload>, PlanError> {
    let mut out: Vec<NamedWorkload> = traces
        .into_iter()
        .map(|trace| {
            let path = trace_path(dir, &trace);
            NamedWorkload {
                name: crate::outputs::workload_name(std::slice::from_ref(&path)),
                workload: Workload::new(vec![TraceSpec::new(path)], DEFAULT_QUANTUM),
            }
        })
        .collect();
    for (i, entry) in entries.into_iter().enumerate() {
        let at = |message: String| PlanError::invalid(spec, format!("workload[{i}]"), message);
        let workload = match entry.file {
            Some(file) => {
                if entry.quantum.is_some() || !entry.trace.is_empty() {
                    return Err(at("give `file` or `quantum` and `trace`, not both".into()));
                }
                let mut workload = Workload::load(&tidy_join(dir, &file)).map_err(|e| at(e.to_string()))?;
                for t in &mut workload.traces {
                    t.path = tidy_join(Path::new(""), &t.path);
                }
                workload
            }
            None => {
                let traces = entry
                    .trace
                    .into_iter()
                    .map(|mut t| {
                        t.path = trace_path(dir, &t.path);
                        t
                    })
                    .collect();
                let workload = Workload::new(traces, entry.quantum.unwrap_or(DEFAULT_QUANTUM));
                workload.validate().map_err(at)?;
                workload
            }
        };
        let paths: Vec<PathBuf> = workload.traces.iter().map(|t| t.path.clone()).collect();
        let name = entry.name.unwrap_or_else(|| crate::outputs::workload_name(&paths));
        out.push(NamedWorkload { name, workload });
    }
    if out.is_empty() {
        return Err(PlanError::invalid(spec, None, "no workloads: give `traces = [...]` or [[workload]] tables"));
    }
    let from_stdin =
        out.iter().flat_map(|w| &w.workload.traces).filter(|t| t.path == Path::new(mmusim_trace::STDIN)).count();
    if from_stdin > 1 {
        return Err(PlanError::invalid(
            spec,
            None,
            "standard input (`-`) is read once: it can be the trace of one workload only",
        ));
    }
    for (i, w) in out.iter().enumerate() {
        if w.name.is_empty() || w.name.contains(['/', '\\']) || w.name.starts_with('.') {
            return Err(PlanError::invalid(spec, None, format!("workload name {:?} cannot name a directory", w.name)));
        }
        if out[..i].iter().any(|other| other.name == w.name) {
            return Err(PlanError::invalid(
                spec,
                None,
                format!("two workloads are named {:?}; give [[workload]] tables distinct `name`s", w.name),
            ));
        }
    }
    Ok(out)
}

/// `[set]` as dotted keys: `pages.policy = "thp"` and `"pages.policy" =
/// "thp"` are the same override.
fn flatten_set(prefix: &str, table: toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (key, value) in table {
        let key = join(prefix, &key);
        match value {
            toml::Value::Table(inner) => flatten_set(&key, inner, out),
            leaf => out.push((key, leaf)),
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// `[axes]` as dotted keys with their values, in document order.
fn flatten_axes(spec: &Path, prefix: &str, table: toml::Table, out: &mut Vec<Axis>) -> Result<(), PlanError> {
    for (key, value) in table {
        let key = join(prefix, &key);
        let at = |message: &str| PlanError::invalid(spec, format!("axes.{key}"), message);
        let values =
            match value {
                toml::Value::Table(inner) if inner.contains_key("from") => range(inner).map_err(|m| at(&m))?,
                toml::Value::Table(inner) => {
                    flatten_axes(spec, &key, inner, out)?;
                    continue;
                }
                toml::Value::Array(values) => values,
                _ => return Err(at(
                    "expected a list of values or a range {from, to, step or factor}; a single value belongs in [set]",
                )),
            };
        if values.is_empty() {
            return Err(at("has no values"));
        }
        if values.iter().any(|v| matches!(v, toml::Value::Table(_))) {
            return Err(at("values must be numbers, strings, booleans or lists, not tables"));
        }
        for (i, v) in values.iter().enumerate() {
            if values[..i].contains(v) {
                return Err(at(&format!("the value {v} is given twice")));
            }
        }
        if key == "config" {
            return Err(at("`config` is the configs list's parameter; list the files in `configs`"));
        }
        if out.iter().any(|axis| axis.key == key) {
            return Err(at("is given twice"));
        }
        out.push(Axis { key, values });
    }
    Ok(())
}

/// The integers of `{from, to, step}` (an arithmetic series) or `{from, to,
/// factor}` (a geometric one), up to and including `to` when it is hit.
fn range(table: toml::Table) -> Result<Vec<toml::Value>, String> {
    let range: Range = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| e.message().to_owned())?;
    if range.from > range.to {
        return Err(format!("from {} is above to {}", range.from, range.to));
    }
    let mut values = Vec::new();
    let mut value = range.from;
    let next: Box<dyn Fn(i64) -> Option<i64>> = match (range.step, range.factor) {
        (Some(step), None) if step > 0 => Box::new(move |v: i64| v.checked_add(step)),
        (None, Some(factor)) if factor >= 2 && range.from > 0 => Box::new(move |v: i64| v.checked_mul(factor)),
        (None, Some(_)) => return Err("a geometric range needs factor >= 2 and from >= 1".into()),
        (Some(_), None) => return Err("step must be at least 1".into()),
        _ => return Err("give exactly one of `step` and `factor`".into()),
    };
    while value <= range.to {
        values.push(toml::Value::Integer(value));
        if values.len() > MAX_RUNS {
            return Err(format!("more than {MAX_RUNS} values"));
        }
        match next(value) {
            Some(v) => value = v,
            None => break,
        }
    }
    Ok(values)
}

/// A parameter's value as tables and run ids show it: strings bare, lists
/// joined by `+`.
pub fn render(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(items) => items.iter().map(render).collect::<Vec<_>>().join("+"),
        other => other.to_string(),
    }
}

/// A run id made safe to be a directory name: anything but letters,
/// digits and `._+=,-` becomes `_`.
fn run_id(parts: &[String]) -> String {
    parts.join(",").chars().map(|c| if c.is_ascii_alphanumeric() || "._+=,-".contains(c) { c } else { '_' }).collect()
}

fn expand(
    spec: &Path,
    name: String,
    description: Option<String>,
    configs: &[PathBuf],
    set: &[(String, toml::Value)],
    axes: &[Axis],
    workloads: Vec<NamedWorkload>,
) -> Result<Plan, PlanError> {
    let points: usize =
        axes.iter().map(|a| a.values.len()).try_fold(configs.len(), |n, len| n.checked_mul(len)).unwrap_or(usize::MAX);
    if points > MAX_RUNS {
        return Err(PlanError::TooManyRuns { spec: spec.to_owned(), runs: points });
    }
    // `mode` first: it drops the sections its mode has no use for, which
    // the other axes may then set.
    let mut order: Vec<usize> = (0..axes.len()).collect();
    order.sort_by_key(|&i| axes[i].key != "mode");
    let mut runs = Vec::with_capacity(points);
    let mut config_names: Vec<String> = Vec::new();
    for path in configs {
        let base = config_file::read_table(path)
            .map_err(|e| PlanError::Config { spec: spec.to_owned(), why: e.to_string() })?;
        let config_name = match base.get("name").and_then(toml::Value::as_str) {
            Some(name) => name.to_owned(),
            None => path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        };
        if config_names.contains(&config_name) {
            return Err(PlanError::invalid(spec, None, format!("two configs are named {config_name:?}")));
        }
        config_names.push(config_name.clone());
        let mut with_set = base;
        for (key, value) in set {
            config_file::set_value(&mut with_set, key, value.clone())
                .map_err(|e| PlanError::invalid(spec, None, format!("set.{e}")))?;
        }
        let mut choice = vec![0usize; axes.len()];
        loop {
            let mut table = with_set.clone();
            let mut values = vec![config_name.clone()];
            let mut id_parts = vec![config_name.clone()];
            for (axis, &i) in axes.iter().zip(&choice) {
                values.push(render(&axis.values[i]));
                id_parts.push(format!("{}={}", axis.key, render(&axis.values[i])));
            }
            let id = run_id(&id_parts);
            for &a in &order {
                config_file::set_value(&mut table, &axes[a].key, axes[a].values[choice[a]].clone())
                    .map_err(|e| PlanError::run(spec, &id, e))?;
            }
            let config = config_file::config_from_table(table, path).map_err(|e| {
                let hints: Vec<String> = set
                    .iter()
                    .map(|(k, _)| k)
                    .chain(axes.iter().map(|a| &a.key))
                    .filter_map(|key| missing_table(&with_set, key))
                    .collect();
                let hint = if hints.is_empty() { String::new() } else { format!(" ({})", hints.join("; ")) };
                PlanError::run(spec, &id, format!("{e}{hint}"))
            })?;
            let chosen = axes.iter().zip(&choice).map(|(axis, &i)| (axis.key.as_str(), &axis.values[i]));
            check_keys_exist(&config, set.iter().map(|(k, v)| (k.as_str(), v)).chain(chosen)).map_err(|key| {
                PlanError::run(spec, &id, format!("{key} is not a key of the resolved config (misspelt?)"))
            })?;
            runs.push(PlannedRun { id, values, config });
            // The odometer: the last axis turns fastest.
            let mut axis = axes.len();
            loop {
                if axis == 0 {
                    break;
                }
                axis -= 1;
                choice[axis] += 1;
                if choice[axis] < axes[axis].values.len() {
                    break;
                }
                choice[axis] = 0;
            }
            if choice.iter().all(|&c| c == 0) {
                break;
            }
        }
    }
    for (i, run) in runs.iter().enumerate() {
        if let Some(other) = runs[..i].iter().find(|r| r.id == run.id) {
            return Err(PlanError::invalid(
                spec,
                None,
                format!(
                    "two runs have the id {:?} ({:?} and {:?} differ only in characters a directory name cannot hold)",
                    run.id, other.values, run.values
                ),
            ));
        }
    }
    let mut parameters = vec!["config".to_owned()];
    parameters.extend(axes.iter().map(|a| a.key.clone()));
    Ok(Plan { name, description, spec: spec.to_owned(), parameters, runs, workloads })
}

/// Why a dotted key may have gone astray: the first table on its path
/// that the config lacks, with the ones it has (`tlb has no l2; it has
/// l1i, l1d, stlb`).
fn missing_table(config: &toml::Table, key: &str) -> Option<String> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut node = config;
    for (depth, part) in parts[..parts.len().saturating_sub(1)].iter().enumerate() {
        match node.get(*part) {
            Some(toml::Value::Table(inner)) => node = inner,
            Some(_) => return None,
            None if depth == 0 => return Some(format!("{key}: the config has no `{part}` section")),
            None => {
                let has: Vec<&str> = node.keys().map(String::as_str).collect();
                return Some(format!("{key}: {} has no `{part}`; it has {}", parts[..depth].join("."), has.join(", ")));
            }
        }
    }
    None
}

/// The first of `keys` that the resolved config does not hold: a key that
/// deserialized but means nothing (a table of named TLBs takes any name)
/// or that resolution dropped.
fn check_keys_exist<'k>(config: &Config, keys: impl Iterator<Item = (&'k str, &'k toml::Value)>) -> Result<(), String> {
    let resolved = serde_json::to_value(config).expect("configs serialize");
    for (key, value) in keys {
        let mut node = &resolved;
        let parts: Vec<&str> = key.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            match node.get(part) {
                Some(inner) => node = inner,
                // A flag left off is not written out (`host.share_zero_pages
                // = false`); its section exists, and a misspelt field of a
                // section is refused when the config is read.
                None if i + 1 == parts.len() && node.is_object() && *value == toml::Value::Boolean(false) => {}
                None => return Err(key.to_owned()),
            }
        }
    }
    Ok(())
}

/// What `sweep.json` says of the plan: enough to merge shards and to know
/// what every row is, without the configs (each run's summary.json has its
/// own).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    pub tool: String,
    pub sweep: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub spec: String,
    pub parameters: Vec<String>,
    pub workloads: Vec<WorkloadEntryFile>,
    pub runs: Vec<RunEntryFile>,
    /// Which runs this directory holds, when it is one shard of the sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardFile>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadEntryFile {
    pub name: String,
    pub quantum: u64,
    pub traces: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunEntryFile {
    pub id: String,
    pub values: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardFile {
    pub index: usize,
    pub count: usize,
    pub runs: Vec<String>,
}

impl Plan {
    /// The plan as `sweep.json` records it.
    pub fn file(&self, shard: Option<ShardFile>) -> PlanFile {
        PlanFile {
            tool: format!("mmusim {}", env!("CARGO_PKG_VERSION")),
            sweep: self.name.clone(),
            description: self.description.clone(),
            spec: self.spec.display().to_string(),
            parameters: self.parameters.clone(),
            workloads: self
                .workloads
                .iter()
                .map(|w| WorkloadEntryFile {
                    name: w.name.clone(),
                    quantum: w.workload.quantum,
                    traces: w.workload.traces.iter().map(|t| t.path.display().to_string()).collect(),
                })
                .collect(),
            runs: self.runs.iter().map(|r| RunEntryFile { id: r.id.clone(), values: r.values.clone() }).collect(),
            shard,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const MACHINE: &str = "name = \"m\"\n[tlb.l1d]\nlevel = 1\nserves = \"data\"\nentries = 64\nways = 4\n\
        [tlb.l2]\nlevel = 2\nserves = \"unified\"\nentries = 1536\nways = 12\n";

    /// The plan of `spec`, or its error's message with the directory as
    /// `DIR`.
    fn plan(spec: &str) -> Result<Plan, String> {
        plan_or_error(spec).map_err(|(message, _)| message)
    }

    fn plan_or_error(spec: &str) -> Result<Plan, (String, PlanError)> {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "m.toml", MACHINE);
        write(dir.path(), "n.toml", &MACHINE.replace("\"m\"", "\"n\""));
        let path = write(dir.path(), "s.toml", spec);
        load(&path).map_err(|e| (e.to_string().replace(&dir.path().display().to_string(), "DIR"), e))
    }

    #[test]
    fn runs_are_the_product_of_configs_and_axes_last_axis_fastest() {
        let plan = plan(
            "configs = [\"m.toml\", \"n.toml\"]\ntraces = [\"a.lackey\"]\n[axes]\ntlb.l2.entries = [768, 1536]\n\
             \"pages.size\" = [\"4KiB\", \"2MiB\", \"1GiB\"]\n",
        )
        .unwrap();
        let ids: Vec<&str> = plan.runs.iter().map(|r| r.id.as_str()).collect();
        let mut want = Vec::new();
        for config in ["m", "n"] {
            for entries in [768, 1536] {
                for size in ["4KiB", "2MiB", "1GiB"] {
                    want.push(format!("{config},tlb.l2.entries={entries},pages.size={size}"));
                }
            }
        }
        assert_eq!(ids, want);
        assert_eq!(plan.parameters, ["config", "tlb.l2.entries", "pages.size"]);
        let run = &plan.runs[4];
        assert_eq!(run.values, ["m", "1536", "2MiB"]);
        assert_eq!(run.config.tlb["l2"].entries, Some(1536));
        assert_eq!(run.config.pages.size.unwrap().0, 2 << 20);
        assert_eq!(plan.workloads[0].name, "a");
        assert_eq!(plan.name, "s");
    }

    #[test]
    fn ranges_expand_arithmetically_or_geometrically() {
        let plan = plan(
            "config = \"m.toml\"\ntraces = [\"a.lackey\"]\n[axes]\ntlb.l1d.entries = { from = 16, to = 128, factor = 2 }\n\
             tlb.l1d.ways = { from = 1, to = 4, step = 3 }\n",
        )
        .unwrap();
        let values: Vec<Vec<String>> = plan.runs.iter().map(|r| r.values[1..].to_vec()).collect();
        let want: Vec<Vec<String>> = [16, 32, 64, 128]
            .iter()
            .flat_map(|e| [1, 4].iter().map(move |w| vec![e.to_string(), w.to_string()]))
            .collect();
        assert_eq!(values, want);
    }

    #[test]
    fn set_applies_to_every_run_and_values_render_plainly() {
        let plan = plan(
            "config = \"m.toml\"\ntraces = [\"a.lackey\"]\n[set]\ntlb.l2.ways = 6\n[axes]\n\
             tlb.l1d.page_sizes = [[\"4KiB\"], [\"4KiB\", \"2MiB\"]]\n",
        )
        .unwrap();
        assert!(plan.runs.iter().all(|r| r.config.tlb["l2"].ways == Some(6)));
        let ids: Vec<&str> = plan.runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["m,tlb.l1d.page_sizes=4KiB", "m,tlb.l1d.page_sizes=4KiB+2MiB"]);
    }

    #[test]
    fn a_mode_axis_runs_one_virtualized_config_in_every_mode() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "m.toml", MACHINE);
        write(
            dir.path(),
            "v.toml",
            "base = \"m.toml\"\nname = \"v\"\nmode = \"nested\"\n[nested.tlb]\nentries = 16\nways = 4\n",
        );
        let spec = write(
            dir.path(),
            "s.toml",
            "config = \"v.toml\"\ntraces = [\"t.lackey\"]\n[axes]\nmode = [\"native\", \"nested\", \"shadow\"]\n",
        );
        let plan = load(&spec).unwrap();
        let modes: Vec<(&str, bool, bool)> = plan
            .runs
            .iter()
            .map(|r| (r.config.mode.name(), r.config.host.is_some(), r.config.nested.is_some()))
            .collect();
        assert_eq!(modes, [("native", false, false), ("nested", true, true), ("shadow", true, false)]);
    }

    #[test]
    fn bad_specs_are_refused_before_anything_runs() {
        let cases = [
            (
                "config = \"m.toml\"\ntraces = [\"a\"]\n[axes]\ntlb.l2.entires = [1, 2]\n",
                "run m,tlb.l2.entires=1: DIR/m.toml: tlb.l2.entires: unknown field `entires`",
            ),
            (
                "config = \"m.toml\"\ntraces = [\"a\"]\n[axes]\ntlb.l2.entries = [100]\n",
                "tlb.l2: 100 entries are not divisible into sets of 12 ways",
            ),
            (
                "config = \"m.toml\"\ntraces = [\"a\"]\n[axes]\ntlb.l2.entries = 1536\n",
                "axes.tlb.l2.entries: expected a list of values or a range",
            ),
            (
                "config = \"m.toml\"\ntraces = [\"a\"]\n[axes]\ntlb.l2.entries = []\n",
                "axes.tlb.l2.entries: has no values",
            ),
            (
                "config = \"m.toml\"\ntraces = [\"a\"]\n[axes]\ntlb.l2.entries = [768, 768]\n",
                "the value 768 is given twice",
            ),
            (
                "config = \"m.toml\"\ntraces = [\"a\"]\n[axes]\ntlb.l2.entries = { from = 8, to = 4, step = 1 }\n",
                "from 8 is above to 4",
            ),
            (
                "config = \"m.toml\"\ntraces = [\"a\"]\n[axes]\ntlb.l2.entries = { from = 1, to = 4 }\n",
                "give exactly one of `step` and `factor`",
            ),
            (
                "config = \"m.toml\"\ntraces = [\"a\"]\n[axes]\ntlb.l2.entries = { from = 1, to = 4, stride = 1 }\n",
                "unknown field `stride`",
            ),
            ("config = \"m.toml\"\ntraces = [\"a\"]\nsweep = 1\n", "DIR/s.toml: sweep: unknown field `sweep`"),
            ("traces = [\"a\"]\n", "expected `config = \"FILE\"` or `configs"),
            ("config = \"m.toml\"\n", "no workloads"),
            ("config = \"m.toml\"\ntraces = [\"x/a.lackey\", \"y/a.lackey\"]\n", "two workloads are named \"a\""),
            ("configs = [\"m.toml\", \"m.toml\"]\ntraces = [\"a\"]\n", "two configs are named \"m\""),
            (
                "config = \"m.toml\"\ntraces = [\"a\"]\n[[workload]]\nquantum = 0\ntrace = [{ path = \"b\" }]\n",
                "workload[0]: quantum must be at least 1",
            ),
            ("config = \"gone.toml\"\ntraces = [\"a\"]\n", "DIR/gone.toml: cannot read"),
            (
                "config = \"m.toml\"\ntraces = [\"a\"]\n[axes]\nconfig = [\"x\"]\n",
                "`config` is the configs list's parameter",
            ),
        ];
        for (spec, want) in cases {
            let err = plan(spec).unwrap_err();
            assert!(err.contains(want), "{spec:?}\ngave {err:?}\nwanted {want:?}");
            assert!(err.starts_with("DIR/s.toml: "), "{err}");
        }
    }

    #[test]
    fn errors_say_what_failed_and_where() {
        let kind = |spec: &str| plan_or_error(spec).map(|_| ()).unwrap_err().1;
        assert!(matches!(kind("config = \"m.toml\"\ntraces = [\"a\"]\n[axes]\nx = []\n"),
            PlanError::Invalid { at: Some(at), .. } if at == "axes.x"));
        assert!(matches!(kind("config = \"gone.toml\"\ntraces = [\"a\"]\n"), PlanError::Config { .. }));
        assert!(matches!(kind("config = \"m.toml\"\ntraces = [\"a\"]\nsweep = 1\n"), PlanError::Unreadable { .. }));
        assert!(matches!(
            kind("config = \"m.toml\"\ntraces = [\"a\"]\n[axes]\ntlb.l2.ways = [5]\n"),
            PlanError::Run { run, .. } if run == "m,tlb.l2.ways=5"
        ));
        assert!(matches!(
            kind(
                "config = \"m.toml\"\ntraces = [\"a\"]\n[axes]\na = { from = 1, to = 400, step = 1 }\n\
                  b = { from = 1, to = 400, step = 1 }\n"
            ),
            PlanError::TooManyRuns { runs: 160_000, .. }
        ));
    }

    #[test]
    fn keys_that_deserialize_but_mean_nothing_are_refused() {
        // `tlb` is a table of named TLBs, so a misspelt TLB name would
        // deserialize as a new TLB; it is missing its level, and says so.
        let err = plan("config = \"m.toml\"\ntraces = [\"a\"]\n[axes]\ntlb.l3.entries = [64]\n").unwrap_err();
        assert!(
            err.ends_with("tlb.l3: missing field `level` (tlb.l3.entries: tlb has no `l3`; it has l1d, l2)"),
            "{err}"
        );
    }

    #[test]
    fn a_flag_swept_off_and_on_plans_though_off_is_not_written_out() {
        let planned = plan(
            "config = \"m.toml\"\ntraces = [\"a\"]\n[set]\nmode = \"nested\"\n[axes]\nhost.share_zero_pages = [false, true]\n",
        )
        .unwrap();
        let flags: Vec<bool> = planned.runs.iter().map(|r| r.config.host.as_ref().unwrap().share_zero_pages).collect();
        assert_eq!(flags, [false, true]);
        let err = plan(
            "config = \"m.toml\"\ntraces = [\"a\"]\n[set]\nmode = \"nested\"\n[axes]\nhost.share_zero_page = [false]\n",
        )
        .unwrap_err();
        assert!(err.contains("share_zero_page"), "{err}");
    }

    #[test]
    fn joined_paths_lose_their_detours_only_when_that_names_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("configs/sweeps")).unwrap();
        std::fs::create_dir_all(root.join("traces")).unwrap();
        std::fs::write(root.join("traces/t.lackey"), "").unwrap();
        assert_eq!(
            tidy_join(&root.join("configs/sweeps"), Path::new("../../traces/t.lackey")),
            root.join("traces/t.lackey")
        );
        // Through a symlink, `link/..` is not where `link` is.
        std::fs::create_dir_all(root.join("elsewhere/deep/traces")).unwrap();
        std::fs::write(root.join("elsewhere/deep/traces/t.lackey"), "").unwrap();
        std::os::unix::fs::symlink(root.join("elsewhere/deep/inner"), root.join("link")).unwrap();
        std::fs::create_dir_all(root.join("elsewhere/deep/inner")).unwrap();
        let joined = tidy_join(&root.join("link"), Path::new("../traces/t.lackey"));
        assert_eq!(joined, root.join("link/../traces/t.lackey"));
        assert!(joined.exists());
        assert_eq!(tidy_join(Path::new(""), Path::new("./a/../b")), PathBuf::from("./a/../b"));
    }

    #[test]
    fn run_ids_are_directory_names() {
        assert_eq!(run_id(&["m".into(), "k=a/b c".into()]), "m,k=a_b_c");
        assert_eq!(render(&toml::Value::Array(vec!["4KiB".into(), 2.into()])), "4KiB+2");
    }
}
