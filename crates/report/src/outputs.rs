//! What a run leaves on disk, and the tables built from it.
//!
//! A run directory holds `summary.json` (everything, including the exact
//! walk-cost distributions), `metrics.csv` (its row), `histograms.csv` (the
//! distributions in long form) and one `.hgrm` file per distribution in the
//! percentile-distribution format HdrHistogram's plotters read. Every file is
//! written to a temporary name and renamed into place. A sweep's top-level
//! `metrics.csv` and `histograms.csv` are rebuilt from the runs'
//! `summary.json` files, the one source of truth, which is also what makes
//! resuming and merging shards exact.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use mmusim_translate::histogram::Distribution;
use serde_json::Value;

use crate::run::{RunError, RunOutput};
use crate::summary::Summary;

/// Names of the two distributions, as files and CSV rows name them.
pub const DISTRIBUTIONS: [&str; 2] = ["references_per_walk", "cycles_per_walk"];

/// The file that holds everything about a run, written last.
pub const SUMMARY: &str = "summary.json";

/// Every file of a run directory, `summary.json` last.
pub const RUN_FILES: [&str; 5] =
    ["metrics.csv", "histograms.csv", "references_per_walk.hgrm", "cycles_per_walk.hgrm", SUMMARY];

/// Significant digits of the hdrhistograms built for output: every value up
/// to 200,000 (far above any walk's cost) is its own bucket.
const SIGNIFICANT_DIGITS: u8 = 5;

fn io_error(path: &Path, action: &'static str, e: std::io::Error) -> RunError {
    RunError::File(crate::run::FileError::new(path, action, e))
}

fn write_file(path: &Path, text: &str) -> Result<(), RunError> {
    mmusim_trace::write_atomically(path, text.as_bytes()).map_err(|e| io_error(path, "write", e))
}

/// Writes a run's directory: summary.json, metrics.csv, histograms.csv and
/// the .hgrm files. `run_id` and `workload` name the run in the CSVs.
pub fn write_run_dir(
    dir: &Path,
    run_id: &str,
    params: &[(String, String)],
    output: &RunOutput,
) -> Result<(), RunError> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, "create", e))?;
    let summary = Summary::of(output);
    // The row is built from the summary's JSON value, as a sweep's tables
    // are rebuilt from summary.json files (so the two never disagree), but
    // without printing it and parsing it back.
    let row = Row::from_summary(run_id, params, &serde_json::to_value(&summary).expect("summaries serialize"));
    let json = summary.to_json();
    write_file(&dir.join("metrics.csv"), &metrics_csv(std::slice::from_ref(&row)))?;
    write_file(&dir.join("histograms.csv"), &histograms_csv(std::slice::from_ref(&row)))?;
    for (name, distribution) in DISTRIBUTIONS.iter().zip([&output.references, &output.cycles]) {
        write_file(&dir.join(format!("{name}.hgrm")), &hgrm(distribution))?;
    }
    // Last: a run directory with a summary.json is complete, which is what
    // resuming a sweep relies on.
    write_file(&dir.join(SUMMARY), &json)
}

/// One configuration on one workload, as the CSVs see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub run: String,
    pub workload: String,
    /// Parameter columns: the config's name, then each swept key.
    pub params: Vec<(String, String)>,
    /// Metric columns, flattened: `tlbs.l1d.misses`, `walks.cycles_percentiles.p99`.
    pub metrics: Vec<(String, Value)>,
    /// The exact distributions: (name, [(value, count)]).
    pub distributions: Vec<(String, Vec<(u64, u64)>)>,
}

impl Row {
    /// The row of a parsed summary.json.
    pub fn from_summary(run: &str, params: &[(String, String)], summary: &Value) -> Row {
        let mut metrics = Vec::new();
        flatten("", &summary["metrics"], &mut metrics);
        let distributions = DISTRIBUTIONS
            .iter()
            .map(|name| {
                let pairs = summary["distributions"][name]
                    .as_array()
                    .map(|pairs| {
                        pairs
                            .iter()
                            .map(|pair| (pair[0].as_u64().unwrap_or(0), pair[1].as_u64().unwrap_or(0)))
                            .collect()
                    })
                    .unwrap_or_default();
                (name.to_string(), pairs)
            })
            .collect();
        Row {
            run: run.to_owned(),
            workload: summary["workload"]["name"].as_str().unwrap_or("").to_owned(),
            params: params.to_vec(),
            metrics,
            distributions,
        }
    }
}

/// Flattens a JSON object into dotted column names; arrays of objects with a
/// `name` are keyed by it (`tlbs.l1d.misses`).
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    let join = |key: &str| if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") };
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                flatten(&join(key), inner, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                match item.get("name").and_then(Value::as_str) {
                    Some(name) => {
                        let mut rest = item.clone();
                        // shift_remove keeps the remaining keys in their order.
                        rest.as_object_mut().expect("has a name, so an object").shift_remove("name");
                        flatten(&join(name), &rest, out);
                    }
                    None => flatten(&join(&i.to_string()), item, out),
                }
            }
        }
        scalar => out.push((prefix.to_owned(), scalar.clone())),
    }
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The metrics table: one row per configuration and workload; columns `run`,
/// the parameters, `workload`, then every metric, each in the order it
/// first appears across the rows (rows lacking a column leave it empty).
pub fn metrics_csv(rows: &[Row]) -> String {
    let mut params: Vec<String> = Vec::new();
    let mut metrics: Vec<String> = Vec::new();
    for row in rows {
        for (key, _) in &row.params {
            if !params.contains(key) {
                params.push(key.clone());
            }
        }
    }
    for row in rows {
        for (key, _) in &row.metrics {
            // A metric that is also a swept parameter (`mode`) would be a
            // second column of the same name and the same values.
            if !metrics.contains(key) && !params.contains(key) {
                metrics.push(key.clone());
            }
        }
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header = std::iter::once("run").chain(params.iter().map(String::as_str)).chain(std::iter::once("workload"));
    writer.write_record(header.chain(metrics.iter().map(String::as_str))).expect("in memory");
    for row in rows {
        let mut record = vec![row.run.clone()];
        for key in &params {
            record.push(row.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default());
        }
        record.push(row.workload.clone());
        for key in &metrics {
            record.push(row.metrics.iter().find(|(k, _)| k == key).map(|(_, v)| cell(v)).unwrap_or_default());
        }
        writer.write_record(&record).expect("in memory");
    }
    String::from_utf8(writer.into_inner().expect("in memory")).expect("UTF-8 in, UTF-8 out")
}

/// The metrics in long ("tidy") form, one value per line: `run`, the
/// parameters, `workload`, `metric`, `value`, for pandas, seaborn or ggplot.
/// Only numeric metrics are there (so `value` reads as a number); text ones
/// (`mode`, a TLB's `serves`) are parameters or descriptions, and absent
/// metrics are left out rather than written empty.
pub fn metrics_long_csv(rows: &[Row]) -> String {
    let mut params: Vec<&str> = Vec::new();
    for row in rows {
        for (key, _) in &row.params {
            if !params.contains(&key.as_str()) {
                params.push(key);
            }
        }
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header = std::iter::once("run").chain(params.iter().copied()).chain(["workload", "metric", "value"]);
    writer.write_record(header).expect("in memory");
    for row in rows {
        let mut fixed: Vec<&str> = vec![&row.run];
        for key in &params {
            fixed.push(row.params.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str()));
        }
        fixed.push(&row.workload);
        for (metric, value) in &row.metrics {
            if !value.is_number() || params.contains(&metric.as_str()) {
                continue;
            }
            let text = cell(value);
            writer.write_record(fixed.iter().copied().chain([metric.as_str(), text.as_str()])).expect("in memory");
        }
    }
    String::from_utf8(writer.into_inner().expect("in memory")).expect("UTF-8 in, UTF-8 out")
}

/// The distributions in long form: run, workload, metric, value, count.
pub fn histograms_csv(rows: &[Row]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["run", "workload", "metric", "value", "count"]).expect("in memory");
    for row in rows {
        for (metric, pairs) in &row.distributions {
            for (value, count) in pairs {
                writer
                    .write_record([&row.run, &row.workload, metric, &value.to_string(), &count.to_string()])
                    .expect("in memory");
            }
        }
    }
    String::from_utf8(writer.into_inner().expect("in memory")).expect("UTF-8 in, UTF-8 out")
}

/// An hdrhistogram holding `distribution`'s values.
pub fn hdr(distribution: &Distribution) -> Histogram<u64> {
    let high = distribution.max().unwrap_or(0).max(2);
    let mut histogram = Histogram::new_with_bounds(1, high, SIGNIFICANT_DIGITS).expect("valid bounds");
    for (value, count) in distribution.buckets() {
        histogram.record_n(value, count).expect("within the bounds");
    }
    histogram
}

/// The percentile distribution of `distribution` in HdrHistogram's text
/// format (`outputPercentileDistribution`, five ticks per half distance), as
/// its plotters read it.
pub fn hgrm(distribution: &Distribution) -> String {
    let histogram = hdr(distribution);
    let digits = usize::from(SIGNIFICANT_DIGITS);
    let mut out = format!("{:>12} {:>14} {:>10} {:>14}\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    if !histogram.is_empty() {
        let mut total = 0u64;
        for step in histogram.iter_quantiles(5) {
            total += step.count_since_last_iteration();
            let value = step.value_iterated_to() as f64;
            let quantile = step.quantile_iterated_to();
            if quantile < 1.0 {
                let _ = writeln!(out, "{value:12.digits$} {quantile:2.12} {total:10} {:14.2}", 1.0 / (1.0 - quantile));
            } else {
                let _ = writeln!(out, "{value:12.digits$} {quantile:2.12} {total:10}");
            }
        }
    }
    let (mean, stdev, max) = if histogram.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (histogram.mean(), histogram.stdev(), histogram.max() as f64)
    };
    let _ = writeln!(out, "#[Mean    = {mean:12.digits$}, StdDeviation   = {stdev:12.digits$}]");
    let _ = writeln!(out, "#[Max     = {max:12.digits$}, Total count    = {:12}]", histogram.len());
    let _ =
        writeln!(out, "#[Buckets = {:12}, SubBuckets     = {:12}]", histogram.buckets(), histogram.distinct_values());
    out
}

/// Writes the sweep-level tables into `dir`.
pub fn write_tables(dir: &Path, rows: &[Row]) -> Result<(), RunError> {
    write_file(&dir.join("metrics.csv"), &metrics_csv(rows))?;
    write_file(&dir.join("histograms.csv"), &histograms_csv(rows))
}

/// The name a workload goes by: a trace's file name up to its first dot
/// (`traces/sort.lackey.zst` is `sort`), after DynamoRIO's `drmemtrace.`
/// prefix (`drmemtrace.threadsig.x64.tracedir` is `threadsig`), several
/// joined by `+`.
pub fn workload_name(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| {
            if p.as_os_str() == mmusim_trace::STDIN {
                return "stdin".to_owned();
            }
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let name = name.strip_prefix("drmemtrace.").filter(|rest| !rest.is_empty()).unwrap_or(&name);
            name.split('.').next().unwrap_or_default().to_owned()
        })
        .collect::<Vec<_>>()
        .join("+")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattening_keys_arrays_by_name() {
        let value = serde_json::json!({
            "references": 9,
            "tlbs": [{"name": "l1d", "misses": 3, "by_kind": {"load": {"hits": 2}}}, {"name": "l2", "misses": 1}],
            "walks": {"p": {"p99.9": 4}, "rate": null}
        });
        let mut out = Vec::new();
        flatten("", &value, &mut out);
        let keys: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "references",
                "tlbs.l1d.misses",
                "tlbs.l1d.by_kind.load.hits",
                "tlbs.l2.misses",
                "walks.p.p99.9",
                "walks.rate"
            ]
        );
    }

    #[test]
    fn the_metrics_table_unions_columns_in_order_of_appearance() {
        let row = |run: &str, metrics: Vec<(&str, Value)>| Row {
            run: run.into(),
            workload: "w".into(),
            params: vec![("config".into(), run.into())],
            metrics: metrics.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            distributions: vec![("references_per_walk".into(), vec![(1, 5), (4, 2)])],
        };
        let rows = [
            row("a", vec![("x", Value::from(1)), ("y", Value::from(0.5))]),
            row("b", vec![("x", Value::from(2)), ("z", Value::Null), ("y", Value::from(1.25))]),
        ];
        assert_eq!(metrics_csv(&rows), "run,config,workload,x,y,z\na,a,w,1,0.5,\nb,b,w,2,1.25,\n");
        assert_eq!(
            histograms_csv(&rows[..1]),
            "run,workload,metric,value,count\na,w,references_per_walk,1,5\na,w,references_per_walk,4,2\n"
        );
    }

    #[test]
    fn hgrm_rows_climb_to_the_maximum_at_percentile_one() {
        let mut distribution = Distribution::default();
        for (value, times) in [(1u64, 10u64), (2, 5), (4, 4), (40, 1)] {
            for _ in 0..times {
                distribution.record(value);
            }
        }
        let text = hgrm(&distribution);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "       Value     Percentile TotalCount 1/(1-Percentile)");
        assert_eq!(lines[2], "     1.00000 0.000000000000         10           1.00");
        let last_row = lines.iter().rev().find(|l| !l.starts_with('#')).unwrap();
        assert_eq!(*last_row, "    40.00000 1.000000000000         20");
        assert!(text.contains("#[Max     =     40.00000, Total count    =           20]"), "{text}");
        // Mean of 10x1 + 5x2 + 4x4 + 1x40 over 20 values: 3.8.
        assert!(text.contains("#[Mean    =      3.80000"), "{text}");
    }

    proptest::proptest! {
        /// The summary's exact nearest-rank percentiles are what
        /// hdrhistogram itself reads off the histogram the .hgrm files
        /// come from: a second method for every percentile we report.
        #[test]
        fn hdrhistogram_agrees_with_the_exact_percentiles(
            values in proptest::collection::vec((1u64..200_000, 1u64..50), 1..60)
        ) {
            let mut distribution = Distribution::default();
            for &(value, times) in &values {
                for _ in 0..times {
                    distribution.record(value);
                }
            }
            let histogram = hdr(&distribution);
            let exact = crate::metrics::Percentiles::of(&distribution).unwrap();
            proptest::prop_assert_eq!(histogram.len(), distribution.len());
            for (quantile, value) in [(0.5, exact.p50), (0.9, exact.p90), (0.99, exact.p99), (0.999, exact.p99_9), (1.0, exact.max)] {
                proptest::prop_assert_eq!(histogram.value_at_quantile(quantile), value, "quantile {}", quantile);
            }
        }
    }

    #[test]
    fn workloads_are_named_by_their_traces() {
        assert_eq!(workload_name(&[PathBuf::from("traces/sort.lackey.zst")]), "sort");
        assert_eq!(workload_name(&[PathBuf::from("a/x.mmt"), PathBuf::from("gzip.lackey.xz")]), "x+gzip");
        assert_eq!(workload_name(&[PathBuf::from("t/drmemtrace.threadsig.x64.tracedir")]), "threadsig");
        assert_eq!(workload_name(&[PathBuf::from("drmemtrace.allasm_x86_64.trace.zip")]), "allasm_x86_64");
    }
}
