//! Regression checks: one `metrics.csv` against a baseline's, metric by
//! metric, within tolerances.
//!
//! Rows are matched by run id and workload; columns by name. Every cell of
//! the baseline gets a status: `pass` (within tolerance), `regressed`,
//! `improved` (beyond tolerance in the better direction, when the metric
//! has one), or `missing` (no such row, column or value now); cells only the
//! current table has are `new`. Regressed or missing cells fail the check.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The default relative tolerance of a float metric: the last bits of a
/// rate computed from exact counters, so a different summation order is
/// not a regression but any real change is.
pub const FLOAT_RELATIVE_TOLERANCE: f64 = 1e-9;

/// A check that cannot be made: which file, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// A file cannot be read, or the blessed baseline cannot be written
    /// (`action`: read, create, write).
    File { path: PathBuf, action: &'static str, why: String },
    /// A tolerance file is not valid (`why` names the key).
    Tolerances { path: PathBuf, why: String },
    /// A metrics table is not valid (`why` names the line where there is
    /// one).
    Table { path: PathBuf, why: String },
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckError::File { path, action, why } => write!(f, "{}: cannot {action}: {why}", path.display()),
            CheckError::Tolerances { path, why } | CheckError::Table { path, why } => {
                write!(f, "{}: {why}", path.display())
            }
        }
    }
}

impl std::error::Error for CheckError {}

/// Which way is better.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Any change beyond the tolerance is a regression.
    #[default]
    Either,
    /// Lower is better (misses, cycles): a rise is a regression, a fall an
    /// improvement.
    Lower,
    /// Higher is better (hit rates).
    Higher,
}

/// How far a metric may move.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    /// Allowed absolute change.
    pub abs: Option<f64>,
    /// Allowed change relative to the baseline's value (0.01 is 1%).
    pub rel: Option<f64>,
    #[serde(default)]
    pub direction: Option<Direction>,
}

/// A tolerances file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerances {
    /// For every metric no entry of `metrics` matches; absent: exact for
    /// integers, a relative 1e-9 for floats, either direction.
    pub default: Option<Tolerance>,
    /// Metric names, or patterns where `*` matches any run of characters
    /// (`tlbs.*.misses`), to tolerances. An exact name wins over patterns;
    /// among patterns, the first in the file.
    #[serde(default)]
    pub metrics: toml::map::Map<String, toml::Value>,
    #[serde(skip)]
    parsed: Vec<(String, Tolerance)>,
}

impl Tolerances {
    pub fn load(path: &Path) -> Result<Tolerances, CheckError> {
        let text = std::fs::read_to_string(path).map_err(|e| CheckError::File {
            path: path.to_owned(),
            action: "read",
            why: e.to_string(),
        })?;
        Tolerances::parse(&text).map_err(|why| CheckError::Tolerances { path: path.to_owned(), why })
    }

    pub fn parse(text: &str) -> Result<Tolerances, String> {
        let mut tolerances: Tolerances = crate::config_file::parse_toml(text)?;
        for (pattern, value) in &tolerances.metrics {
            let tolerance: Tolerance =
                crate::config_file::deserialize(value.clone()).map_err(|e| format!("metrics.{pattern:?}: {e}"))?;
            check_tolerance(&tolerance).map_err(|m| format!("metrics.{pattern:?}: {m}"))?;
            tolerances.parsed.push((pattern.clone(), tolerance));
        }
        if let Some(default) = &tolerances.default {
            check_tolerance(default).map_err(|m| format!("default: {m}"))?;
        }
        Ok(tolerances)
    }

    /// The tolerance of `metric`, and whether a file gave it.
    fn of(&self, metric: &str) -> Option<Tolerance> {
        self.parsed
            .iter()
            .find(|(pattern, _)| pattern == metric)
            .or_else(|| self.parsed.iter().find(|(pattern, _)| pattern.contains('*') && glob(pattern, metric)))
            .map(|(_, t)| *t)
            .or(self.default)
    }
}

fn check_tolerance(t: &Tolerance) -> Result<(), String> {
    for (name, value) in [("abs", t.abs), ("rel", t.rel)] {
        if value.is_some_and(|v| !(v >= 0.0 && v.is_finite())) {
            return Err(format!("{name} must be a finite number >= 0"));
        }
    }
    Ok(())
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = parts.split_first().expect("split yields one part at least");
    let Some(mut remaining) = text.strip_prefix(first) else { return false };
    let Some((last, middle)) = rest.split_last() else { return remaining.is_empty() };
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

/// A metrics table as read from disk.
#[derive(Debug)]
pub struct Table {
    pub path: PathBuf,
    pub metrics: Vec<String>,
    /// (run, workload) to the metric cells, in `metrics` order, with the
    /// row's line.
    pub rows: Vec<((String, String), Vec<String>)>,
}

/// The metrics table at `path`: a `metrics.csv`, or a directory holding one.
pub fn read_table(path: &Path) -> Result<Table, CheckError> {
    let file = if path.is_dir() { path.join("metrics.csv") } else { path.to_owned() };
    let at = |why: String| CheckError::Table { path: file.clone(), why };
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_path(&file).map_err(|e| CheckError::File {
        path: file.clone(),
        action: "read",
        why: csv_message(&e),
    })?;
    let header: Vec<String> = reader.headers().map_err(|e| at(csv_message(&e)))?.iter().map(str::to_owned).collect();
    let workload_column = header.iter().position(|h| h == "workload");
    let (Some("run"), Some(workload_column)) = (header.first().map(String::as_str), workload_column) else {
        return Err(at("expected a metrics table: a header starting with `run`, with a `workload` column".into()));
    };
    let metrics = header[workload_column + 1..].to_vec();
    let mut rows = Vec::new();
    let mut seen: HashMap<(String, String), u64> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| at(csv_message(&e)))?;
        let line = record.position().map_or(0, |p| p.line());
        let key = (record[0].to_owned(), record[workload_column].to_owned());
        if let Some(first) = seen.insert(key.clone(), line) {
            return Err(at(format!("line {line}: run {} on {} is also on line {first}", key.0, key.1)));
        }
        rows.push((key, record.iter().skip(workload_column + 1).map(str::to_owned).collect()));
    }
    Ok(Table { path: file, metrics, rows })
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => {
            format!("line {}: {len} fields where the header has {expected_len}", pos.as_ref().map_or(0, |p| p.line()))
        }
        _ => e.to_string(),
    }
}

/// What happened to one cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Regressed,
    Improved,
    Missing,
    New,
}

impl Status {
    pub const ALL: [Status; 5] = [Status::Pass, Status::Regressed, Status::Improved, Status::Missing, Status::New];

    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Regressed => "regressed",
            Status::Improved => "improved",
            Status::Missing => "missing",
            Status::New => "new",
        }
    }

    pub fn fails(self) -> bool {
        matches!(self, Status::Regressed | Status::Missing)
    }
}

/// One compared cell (or a whole row, when `metric` is absent).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub run: String,
    pub workload: String,
    pub metric: Option<String>,
    pub status: Status,
    pub baseline: Option<String>,
    pub current: Option<String>,
    /// current - baseline, for numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<f64>,
    /// The largest change the tolerance allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<f64>,
}

/// A whole comparison.
#[derive(Debug, Serialize)]
pub struct Report {
    pub baseline: String,
    pub current: String,
    pub counts: crate::metrics::Ordered<u64>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn count(&self, status: Status) -> u64 {
        self.counts.get(status.name()).copied().unwrap_or(0)
    }

    pub fn failed(&self) -> bool {
        Status::ALL.iter().any(|s| s.fails() && self.count(*s) > 0)
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("reports serialize");
        text.push('\n');
        text
    }
}

/// Compares one value: (status, change, allowed).
pub fn compare(baseline: &str, current: &str, tolerance: Option<Tolerance>) -> (Status, Option<f64>, Option<f64>) {
    match (baseline.is_empty(), current.is_empty()) {
        (true, true) => return (Status::Pass, None, None),
        (false, true) => return (Status::Missing, None, None),
        (true, false) => return (Status::New, None, None),
        (false, false) => {}
    }
    let direction = tolerance.and_then(|t| t.direction).unwrap_or_default();
    // Integers compare exactly as integers: an f64 cannot hold every u64.
    if let (Ok(b), Ok(c)) = (baseline.parse::<i128>(), current.parse::<i128>()) {
        let (abs, rel) = tolerance.map_or((0.0, 0.0), |t| (t.abs.unwrap_or(0.0), t.rel.unwrap_or(0.0)));
        let allowed = abs.max(rel * b.unsigned_abs() as f64);
        let change = c - b;
        let status = if change.unsigned_abs() as f64 <= allowed {
            Status::Pass
        } else {
            beyond(change.signum() as i8, direction)
        };
        return (status, Some(change as f64), Some(allowed));
    }
    if let (Ok(b), Ok(c)) = (baseline.parse::<f64>(), current.parse::<f64>()) {
        let (abs, rel) =
            tolerance.map_or((0.0, FLOAT_RELATIVE_TOLERANCE), |t| (t.abs.unwrap_or(0.0), t.rel.unwrap_or(0.0)));
        let allowed = abs.max(rel * b.abs());
        let change = c - b;
        let status =
            if change.abs() <= allowed { Status::Pass } else { beyond(if change > 0.0 { 1 } else { -1 }, direction) };
        return (status, Some(change), Some(allowed));
    }
    // Text (a mode's name): equal, or changed.
    (if baseline == current { Status::Pass } else { Status::Regressed }, None, None)
}

fn beyond(sign: i8, direction: Direction) -> Status {
    match (direction, sign > 0) {
        (Direction::Either, _) | (Direction::Lower, true) | (Direction::Higher, false) => Status::Regressed,
        _ => Status::Improved,
    }
}

/// Compares `current` with `baseline`, cell by cell.
pub fn check(baseline: &Table, current: &Table, tolerances: &Tolerances) -> Report {
    let mut findings = Vec::new();
    let current_rows: HashMap<&(String, String), &Vec<String>> = current.rows.iter().map(|(k, v)| (k, v)).collect();
    let current_columns: HashMap<&str, usize> =
        current.metrics.iter().enumerate().map(|(i, name)| (name.as_str(), i)).collect();
    let tolerance: Vec<Option<Tolerance>> = baseline.metrics.iter().map(|m| tolerances.of(m)).collect();
    let finding = |(run, workload): &(String, String),
                   metric: Option<&str>,
                   status,
                   baseline: Option<&str>,
                   current: Option<&str>| Finding {
        run: run.clone(),
        workload: workload.clone(),
        metric: metric.map(str::to_owned),
        status,
        baseline: baseline.map(str::to_owned),
        current: current.map(str::to_owned),
        change: None,
        allowed: None,
    };
    for (key, cells) in &baseline.rows {
        let Some(now) = current_rows.get(key) else {
            findings.push(finding(key, None, Status::Missing, None, None));
            continue;
        };
        for ((metric, value), tolerance) in baseline.metrics.iter().zip(cells).zip(&tolerance) {
            let Some(&column) = current_columns.get(metric.as_str()) else {
                findings.push(finding(key, Some(metric), Status::Missing, Some(value), None));
                continue;
            };
            let (status, change, allowed) = compare(value, &now[column], *tolerance);
            let mut f = finding(key, Some(metric), status, Some(value), Some(&now[column]));
            f.change = change;
            f.allowed = allowed;
            findings.push(f);
        }
        let baseline_columns: std::collections::HashSet<&str> = baseline.metrics.iter().map(String::as_str).collect();
        for (metric, value) in current.metrics.iter().zip(now.iter()) {
            if !baseline_columns.contains(metric.as_str()) && !value.is_empty() {
                findings.push(finding(key, Some(metric), Status::New, None, Some(value)));
            }
        }
    }
    let baseline_rows: std::collections::HashSet<&(String, String)> = baseline.rows.iter().map(|(k, _)| k).collect();
    for (key, _) in &current.rows {
        if !baseline_rows.contains(key) {
            findings.push(finding(key, None, Status::New, None, None));
        }
    }
    let counts = crate::metrics::Ordered(
        Status::ALL
            .iter()
            .map(|s| (s.name().to_owned(), findings.iter().filter(|f| f.status == *s).count() as u64))
            .collect(),
    );
    Report {
        baseline: baseline.path.display().to_string(),
        current: current.path.display().to_string(),
        counts,
        findings,
    }
}

/// Makes `current` the baseline at `baseline`: a `.csv` file, or a
/// directory (created if need be) that gets a `metrics.csv`. Returns the
/// file written.
pub fn bless(baseline: &Path, current: &Table) -> Result<PathBuf, CheckError> {
    let is_file = !baseline.is_dir() && baseline.extension().is_some_and(|e| e == "csv");
    let dest = if is_file { baseline.to_owned() } else { baseline.join("metrics.csv") };
    let io = |path: &Path, action: &'static str, e: std::io::Error| CheckError::File {
        path: path.to_owned(),
        action,
        why: e.to_string(),
    };
    let bytes = std::fs::read(&current.path).map_err(|e| io(&current.path, "read", e))?;
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, "create", e))?;
    }
    mmusim_trace::write_atomically(&dest, &bytes).map_err(|e| io(&dest, "write", e))?;
    Ok(dest)
}

/// Rows of a failed check shown on the terminal; the JSON has them all.
const SHOWN: usize = 40;

/// The terminal summary: counts, then the cells that failed or improved.
pub fn render(report: &Report, rows: usize) -> String {
    let mut out = String::new();
    let counts: Vec<String> = Status::ALL.iter().map(|s| format!("{} {}", report.count(*s), s.name())).collect();
    let _ = writeln!(out, "{} against {}: {} rows; {}", report.current, report.baseline, rows, counts.join(", "));
    let notable: Vec<&Finding> =
        report.findings.iter().filter(|f| f.status != Status::Pass && f.status != Status::New).collect();
    if !notable.is_empty() {
        let _ = writeln!(
            out,
            "  {:<10} {:<32} {:<14} {:<40} {:>14} {:>14} {:>12} {:>12}",
            "status", "run", "workload", "metric", "baseline", "current", "change", "allowed"
        );
    }
    let number = |v: Option<f64>| {
        v.map_or_else(|| "-".to_owned(), |v| format!("{v:.6}").trim_end_matches('0').trim_end_matches('.').to_owned())
    };
    for f in notable.iter().take(SHOWN) {
        let _ = writeln!(
            out,
            "  {:<10} {:<32} {:<14} {:<40} {:>14} {:>14} {:>12} {:>12}",
            f.status.name(),
            f.run,
            f.workload,
            f.metric.as_deref().unwrap_or("(whole row)"),
            f.baseline.as_deref().unwrap_or("-"),
            f.current.as_deref().unwrap_or("-"),
            number(f.change),
            number(f.allowed)
        );
    }
    if notable.len() > SHOWN {
        let _ = writeln!(out, "  ... and {} more (--json FILE writes them all)", notable.len() - SHOWN);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tolerance(abs: Option<f64>, rel: Option<f64>, direction: Direction) -> Option<Tolerance> {
        Some(Tolerance { abs, rel, direction: Some(direction) })
    }

    #[test]
    fn integers_are_exact_by_default_and_floats_nearly_so() {
        assert_eq!(compare("1000", "1000", None), (Status::Pass, Some(0.0), Some(0.0)));
        assert_eq!(compare("1000", "1001", None).0, Status::Regressed);
        assert_eq!(compare("1000", "999", None).0, Status::Regressed);
        // u64 values an f64 cannot tell apart are still different.
        assert_eq!(compare("18446744073709551615", "18446744073709551614", None).0, Status::Regressed);
        assert_eq!(compare("0.25", "0.25000000000000006", None).0, Status::Pass);
        assert_eq!(compare("0.25", "0.2500001", None).0, Status::Regressed);
        assert_eq!(compare("native", "native", None).0, Status::Pass);
        assert_eq!(compare("native", "nested", None).0, Status::Regressed);
        assert_eq!(compare("", "", None).0, Status::Pass);
        assert_eq!(compare("3", "", None).0, Status::Missing);
        assert_eq!(compare("", "3", None).0, Status::New);
    }

    #[test]
    fn tolerances_allow_the_larger_of_absolute_and_relative() {
        // 2% of 1000 is 20, more than the absolute 5.
        let t = tolerance(Some(5.0), Some(0.02), Direction::Either);
        assert_eq!(compare("1000", "1020", t), (Status::Pass, Some(20.0), Some(20.0)));
        assert_eq!(compare("1000", "979", t), (Status::Regressed, Some(-21.0), Some(20.0)));
        // Near zero the absolute tolerance is what allows anything.
        assert_eq!(compare("2", "7", t).0, Status::Pass);
        assert_eq!(compare("2", "8", t).0, Status::Regressed);
        let t = tolerance(None, Some(0.1), Direction::Lower);
        assert_eq!(compare("0.5", "0.54", t).0, Status::Pass);
        assert_eq!(compare("0.5", "0.56", t).0, Status::Regressed);
        assert_eq!(compare("0.5", "0.44", t).0, Status::Improved);
        let t = tolerance(Some(0.0), None, Direction::Higher);
        assert_eq!(compare("10", "11", t).0, Status::Improved);
        assert_eq!(compare("10", "9", t).0, Status::Regressed);
    }

    #[test]
    fn patterns_match_and_exact_names_win() {
        assert!(glob("tlbs.*.misses", "tlbs.l1d.misses"));
        assert!(glob("tlbs.*.misses", "tlbs.l2.by_kind.load.misses"));
        assert!(!glob("tlbs.*.misses", "tlbs.l1d.misses_by_page_size.4KiB"));
        assert!(glob("*", "anything") && glob("walks.*", "walks.") && !glob("a*b", "ab_"));
        assert!(glob("a*b*c", "a_b_b_c") && !glob("abc", "abcd"));
        let t = Tolerances::parse(
            "[default]\nrel = 0.5\n[metrics]\n\"tlbs.*.misses\" = { rel = 0.1, direction = \"lower\" }\n\
             \"tlbs.l2.misses\" = { abs = 3 }\n",
        )
        .unwrap();
        assert_eq!(t.of("tlbs.l2.misses").unwrap().abs, Some(3.0));
        assert_eq!(t.of("tlbs.l1d.misses").unwrap().rel, Some(0.1));
        assert_eq!(t.of("walks.walks").unwrap().rel, Some(0.5));
        assert!(Tolerances::parse("[metrics]\nx = { rel = -1 }\n").unwrap_err().contains("rel must be"));
        assert!(Tolerances::parse("[metrics]\nx = { relative = 1 }\n")
            .unwrap_err()
            .contains("unknown field `relative`"));
        assert!(Tolerances::parse("[defaults]\n").unwrap_err().contains("unknown field `defaults`"));
        assert!(Tolerances::parse("[metrics]\nx = { direction = \"down\" }\n")
            .unwrap_err()
            .contains("unknown variant"));
    }

    fn table(text: &str) -> Table {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        std::fs::write(&path, text).unwrap();
        read_table(dir.path()).unwrap()
    }

    #[test]
    fn cells_rows_and_columns_get_every_status() {
        let baseline = table("run,config,workload,a,b,gone\nr1,m,w,10,0.5,1\nr2,m,w,20,0.5,1\nr3,m,w,1,1,1\n");
        let current = table("run,config,workload,a,b,added\nr1,m,w,10,0.4,7\nr2,m,w,21,0.5,7\nr4,m,w,1,1,1\n");
        let t = Tolerances::parse("[metrics]\nb = { rel = 0.01, direction = \"higher\" }\n").unwrap();
        let report = check(&baseline, &current, &t);
        let statuses: Vec<(&str, Option<&str>, Status)> =
            report.findings.iter().map(|f| (f.run.as_str(), f.metric.as_deref(), f.status)).collect();
        assert_eq!(
            statuses,
            [
                ("r1", Some("a"), Status::Pass),
                ("r1", Some("b"), Status::Regressed),
                ("r1", Some("gone"), Status::Missing),
                ("r1", Some("added"), Status::New),
                ("r2", Some("a"), Status::Regressed),
                ("r2", Some("b"), Status::Pass),
                ("r2", Some("gone"), Status::Missing),
                ("r2", Some("added"), Status::New),
                ("r3", None, Status::Missing),
                ("r4", None, Status::New),
            ]
        );
        assert_eq!(report.counts.0.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [2, 2, 0, 3, 3]);
        assert!(report.failed());
        let same = check(&baseline, &baseline, &Tolerances::default());
        assert!(!same.failed());
        assert_eq!(same.count(Status::Pass), 9);
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["counts"]["regressed"], 2);
        assert_eq!(json["findings"][4]["change"], 1.0);
    }

    #[test]
    fn malformed_tables_are_errors_with_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("run,workload,a\nr,w,1\nr,w,2\n", "line 3: run r on w is also on line 2"),
            ("run,workload,a\nr,w,1,9\n", "line 2: 4 fields where the header has 3"),
            ("name,a\nx,1\n", "expected a metrics table"),
        ];
        for (text, want) in cases {
            let path = dir.path().join("m.csv");
            std::fs::write(&path, text).unwrap();
            let err = read_table(&path).unwrap_err();
            assert!(matches!(&err, CheckError::Table { path: at, .. } if *at == path), "{err:?}");
            let err = err.to_string();
            assert!(err.contains(want) && err.contains("m.csv"), "{err}");
        }
        let missing = dir.path().join("none.csv");
        let err = read_table(&missing).unwrap_err();
        assert!(matches!(&err, CheckError::File { path, action: "read", .. } if *path == missing), "{err:?}");
        assert!(err.to_string().contains("cannot read"));
    }
}
