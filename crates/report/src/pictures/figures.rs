//! Which figures a results directory gets, and their data: pure functions
//! of the rows, drawn by `draw` (see ARCHITECTURE.md, "Pictures").
//!
//! - Each numeric parameter that varies gets line figures of the key
//!   metrics against it: one line per workload, one panel per combination
//!   of the other varying parameters.
//! - Each categorical parameter that varies (the config, the mode, a
//!   policy) gets grouped bars of translation cycles per instruction and
//!   walks per kilo-instruction: a group per workload, a bar per value.
//! - Each run gets the cumulative distributions of references and cycles
//!   per walk, and, when it had any, its VM exits by reason.

use std::collections::BTreeSet;

use mmusim_translate::size::ByteSize;

use super::results::{number, Results};
use crate::outputs::Row;
use crate::plan::RunEntryFile;

/// One figure: a title, a line saying where its data comes from, one
/// legend shared by its panels, and the panels.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// The SVG's file name in the report directory.
    pub file: String,
    pub section: Section,
    pub title: String,
    /// The sweep or run, the parameters held fixed, and the workloads.
    pub source: String,
    /// What the legend's entries are (`workload`, `mode`, `exit reason`).
    pub legend_title: String,
    pub legend: Vec<String>,
    pub panels: Vec<Panel>,
}

/// Where a figure goes on the page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Section {
    /// A metric against a numeric parameter.
    Axis,
    /// A categorical parameter's values side by side.
    Comparison,
    /// One run's figures (walk-cost distributions, VM exits).
    Run(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    /// The other parameters' values it shows, empty when there is one panel.
    pub title: String,
    pub x: XAxis,
    pub y_label: String,
    /// A logarithmic y axis (then every value is positive).
    pub y_log: bool,
    pub plot: Plot,
}

/// Line figures whose positive values span at least this factor, with no
/// zero among them, get a logarithmic y axis: a workload that misses a
/// hundred times less than another would otherwise lie flat on the axis.
pub const LOG_Y_SPAN: f64 = 100.0;

/// Whether values call for a logarithmic axis (see `LOG_Y_SPAN`).
pub fn wants_log_axis(values: impl Iterator<Item = f64>) -> bool {
    let (mut low, mut high) = (f64::INFINITY, 0.0f64);
    for value in values {
        if value <= 0.0 {
            return false;
        }
        low = low.min(value);
        high = high.max(value);
    }
    low.is_finite() && high / low >= LOG_Y_SPAN
}

#[derive(Clone, Debug, PartialEq)]
pub enum XAxis {
    /// A continuous axis with ticks where the plotting library puts them.
    Continuous { label: String },
    /// Ticks exactly at the given positions, with the given labels: swept
    /// values (equally spaced when geometric: a log scale) or bar groups.
    Ticks { label: String, ticks: Vec<(f64, String)> },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Plot {
    /// One line per legend entry through its (x, y) points.
    Lines(Vec<Vec<(f64, f64)>>),
    /// One cumulative distribution per legend entry: (value, fraction of
    /// walks at or below it), drawn as steps.
    Steps(Vec<Vec<(f64, f64)>>),
    /// Bars: for each tick, one bar per legend entry (`None`: no data).
    Bars(Vec<Vec<Option<f64>>>),
}

/// How a parameter's values are laid out on an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Names (configs, modes, policies): bars.
    Categorical,
    /// Numbers: positioned by value.
    Linear,
    /// Numbers with a constant ratio between neighbours (at least three):
    /// equally spaced, which is a log scale.
    Geometric,
}

/// A parameter of the sweep and its distinct values, numeric ones in
/// ascending order, others in order of first appearance.
#[derive(Clone, Debug, PartialEq)]
pub struct Parameter {
    pub key: String,
    /// Its column in each run's values.
    pub column: usize,
    pub values: Vec<String>,
    pub scale: Scale,
    /// Each value as a number (bytes for sizes), when numeric.
    numbers: Vec<f64>,
}

impl Parameter {
    fn classify(key: &str, column: usize, runs: &[RunEntryFile]) -> Parameter {
        let mut values: Vec<String> = Vec::new();
        for run in runs {
            let value = &run.values[column];
            if !values.contains(value) {
                values.push(value.clone());
            }
        }
        let numbers: Option<Vec<f64>> =
            if key == "config" { None } else { values.iter().map(|v| numeric_value(v)).collect() };
        let Some(numbers) = numbers else {
            return Parameter { key: key.to_owned(), column, values, scale: Scale::Categorical, numbers: Vec::new() };
        };
        let mut pairs: Vec<(f64, String)> = numbers.into_iter().zip(values).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (numbers, values): (Vec<f64>, Vec<String>) = pairs.into_iter().unzip();
        let scale = if is_geometric(&numbers) { Scale::Geometric } else { Scale::Linear };
        Parameter { key: key.to_owned(), column, values, scale, numbers }
    }

    fn varies(&self) -> bool {
        self.values.len() > 1
    }

    /// Where a value goes on the x axis.
    fn position(&self, value: &str) -> f64 {
        let index = self.values.iter().position(|v| v == value).expect("a value of this parameter");
        match self.scale {
            Scale::Linear => self.numbers[index],
            Scale::Geometric | Scale::Categorical => index as f64,
        }
    }

    fn axis(&self) -> XAxis {
        let unit = unit_of(&self.key, &self.values);
        let label = match (self.scale, unit) {
            (Scale::Geometric, Some(unit)) => format!("{} ({unit}, log scale)", self.key),
            (Scale::Geometric, None) => format!("{} (log scale)", self.key),
            (_, Some(unit)) => format!("{} ({unit})", self.key),
            (_, None) => self.key.clone(),
        };
        let ticks = self.values.iter().map(|v| (self.position(v), v.clone())).collect();
        XAxis::Ticks { label, ticks }
    }
}

/// A swept value as a number: plain numbers, and sizes (`2MiB`) in bytes.
fn numeric_value(text: &str) -> Option<f64> {
    if let Ok(number) = text.parse::<f64>() {
        return number.is_finite().then_some(number);
    }
    text.parse::<ByteSize>().ok().map(|size| size.bytes() as f64)
}

/// At least three positive values, each the same multiple (> 1) of the one
/// before: 384, 768, 1536 is; 1, 2, 3 is not.
fn is_geometric(sorted: &[f64]) -> bool {
    if sorted.len() < 3 || sorted[0] <= 0.0 {
        return false;
    }
    let ratio = sorted[1] / sorted[0];
    ratio > 1.0 && sorted.windows(2).all(|pair| ((pair[1] / pair[0]) / ratio - 1.0).abs() < 1e-9)
}

/// The unit a swept key's values are in, from its last segment.
fn unit_of(key: &str, values: &[String]) -> Option<&'static str> {
    let last = key.rsplit('.').next().unwrap_or(key);
    if values.iter().any(|v| v.parse::<f64>().is_err()) {
        // Written with a unit (`2MiB`): a size.
        return Some("bytes");
    }
    match last {
        "entries" => Some("entries"),
        "ways" => Some("ways"),
        "quantum" => Some("references"),
        l if l.contains("latency") || l.contains("cycles") => Some("cycles"),
        l if l.contains("size") || l.contains("bytes") => Some("bytes"),
        _ => None,
    }
}

/// A metric the figures show: its column, what it is, and its unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metric {
    pub key: String,
    pub title: String,
    pub unit: String,
}

impl Metric {
    fn new(key: impl Into<String>, title: impl Into<String>, unit: &str) -> Metric {
        Metric { key: key.into(), title: title.into(), unit: unit.to_owned() }
    }
}

/// The key metrics against a numeric axis: each TLB's misses per
/// kilo-instruction, then walks per kilo-instruction, references and cycles
/// per walk, and translation cycles per instruction.
pub fn key_metrics(rows: &[Row]) -> Vec<Metric> {
    let mut metrics: Vec<Metric> = Vec::new();
    for row in rows {
        for (key, _) in &row.metrics {
            if let Some(tlb) = key.strip_prefix("tlbs.").and_then(|k| k.strip_suffix(".mpki")) {
                if !metrics.iter().any(|m| &m.key == key) {
                    metrics.push(Metric::new(
                        key.clone(),
                        format!("{tlb} TLB misses per kilo-instruction"),
                        "misses per 1,000 instructions",
                    ));
                }
            }
        }
    }
    metrics.extend(comparison_metrics());
    metrics.push(Metric::new("walks.references_per_walk", "Memory references per page walk", "references per walk"));
    metrics.push(Metric::new("walks.cycles_per_walk", "Cycles per page walk", "cycles per walk"));
    metrics.extend(paging_metrics(rows));
    metrics
}

/// Paging's key metrics, where some run had a resident limit, and the
/// host's, where some run had a host limit.
fn paging_metrics(rows: &[Row]) -> Vec<Metric> {
    let some_run_has = |wanted: &str| rows.iter().any(|row| row.metrics.iter().any(|(key, _)| key == wanted));
    let mut metrics = Vec::new();
    if some_run_has("major_faults") {
        metrics.extend([
            Metric::new("major_faults", "Major faults (evicted pages brought back)", "faults"),
            Metric::new("invalidations", "Pages whose translations paging invalidated", "pages"),
            Metric::new("paging_cycles_per_instruction", "Paging cycles per instruction", "cycles per instruction"),
        ]);
    }
    if some_run_has("host_major_faults") {
        metrics.extend([
            Metric::new("host_major_faults", "Host major faults (guest-physical pages swapped back in)", "faults"),
            Metric::new(
                "host_paging_cycles_per_instruction",
                "Host paging cycles per instruction",
                "cycles per instruction",
            ),
        ]);
    }
    metrics
}

/// The metrics categorical parameters are compared by.
fn comparison_metrics() -> [Metric; 2] {
    [
        Metric::new(
            "translation_cycles_per_instruction",
            "Translation cycles per instruction",
            "cycles per instruction",
        ),
        Metric::new("walks.per_kilo_instruction", "Page walks per kilo-instruction", "walks per 1,000 instructions"),
    ]
}

/// Every figure of a results directory, in page order.
pub fn choose(results: &Results) -> Vec<Figure> {
    let parameters: Vec<Parameter> = results
        .parameters
        .iter()
        .enumerate()
        .map(|(column, key)| Parameter::classify(key, column, &results.runs))
        .collect();
    let mut figures = Vec::new();
    for axis in parameters.iter().filter(|p| p.varies() && p.scale != Scale::Categorical) {
        for metric in key_metrics(&results.rows) {
            figures.extend(line_figure(results, &parameters, axis, &metric));
        }
    }
    for category in parameters.iter().filter(|p| p.varies() && p.scale == Scale::Categorical) {
        for metric in comparison_metrics().into_iter().chain(paging_metrics(&results.rows)) {
            figures.extend(bar_figure(results, &parameters, category, &metric));
        }
    }
    for run in &results.runs {
        figures.extend(distribution_figure(results, &run.id));
        figures.extend(exits_figure(results, &run.id));
        figures.extend(curve_figure(results, &run.id));
    }
    name_files(&mut figures);
    figures
}

/// Runs that share the values of the varying parameters other than the
/// one a figure shows: a panel of a line figure, a group of a bar figure.
#[derive(Debug)]
struct Group<'r> {
    /// `key=value, ...` of those parameters (empty when none varies).
    title: String,
    /// Just their values, joined by `, `.
    values: String,
    runs: Vec<&'r RunEntryFile>,
}

/// The runs grouped by the values of the varying parameters other than
/// `shown`, a group per combination, in order of first appearance.
fn by_others<'r>(results: &'r Results, parameters: &[Parameter], shown: &Parameter) -> Vec<Group<'r>> {
    let others: Vec<&Parameter> = parameters.iter().filter(|p| p.varies() && p.key != shown.key).collect();
    let mut groups: Vec<(Vec<&str>, Vec<&RunEntryFile>)> = Vec::new();
    for run in &results.runs {
        let key: Vec<&str> = others.iter().map(|p| run.values[p.column].as_str()).collect();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, runs)) => runs.push(run),
            None => groups.push((key, vec![run])),
        }
    }
    groups
        .into_iter()
        .map(|(key, runs)| Group {
            title: others.iter().zip(&key).map(|(p, v)| format!("{}={v}", p.key)).collect::<Vec<_>>().join(", "),
            values: key.join(", "),
            runs,
        })
        .collect()
}

/// Where a figure's data comes from: the sweep or run, the parameters that
/// do not vary, and the workloads.
fn source(results: &Results, parameters: &[Parameter], workloads: &[String]) -> String {
    let mut parts = vec![results.label.clone()];
    let fixed: Vec<String> =
        parameters.iter().filter(|p| !p.varies()).map(|p| format!("{}={}", p.key, p.values[0])).collect();
    if !fixed.is_empty() {
        parts.push(fixed.join(", "));
    }
    let noun = if workloads.len() == 1 { "workload" } else { "workloads" };
    parts.push(format!("{noun} {}", workloads.join(", ")));
    parts.join(" · ")
}

fn line_figure(results: &Results, parameters: &[Parameter], axis: &Parameter, metric: &Metric) -> Option<Figure> {
    let workloads = results.workload_names();
    let mut any = false;
    let mut panels: Vec<Panel> = by_others(results, parameters, axis)
        .into_iter()
        .map(|group| {
            let lines: Vec<Vec<(f64, f64)>> = workloads
                .iter()
                .map(|workload| {
                    let mut points: Vec<(f64, f64)> = group
                        .runs
                        .iter()
                        .filter_map(|run| {
                            let y = number(results.row(&run.id, workload)?, &metric.key)?;
                            Some((axis.position(&run.values[axis.column]), y))
                        })
                        .collect();
                    points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    points
                })
                .collect();
            any |= lines.iter().any(|line| !line.is_empty());
            Panel {
                title: group.title,
                x: axis.axis(),
                y_label: metric.unit.clone(),
                y_log: false,
                plot: Plot::Lines(lines),
            }
        })
        .collect();
    let log = wants_log_axis(panels.iter().flat_map(|panel| match &panel.plot {
        Plot::Lines(lines) => lines.iter().flatten().map(|&(_, y)| y).collect::<Vec<_>>(),
        _ => Vec::new(),
    }));
    for panel in &mut panels {
        panel.y_log = log;
        if log {
            panel.y_label.push_str(" (log scale)");
        }
    }
    any.then(|| Figure {
        file: format!("{}-{}", axis.key, metric.key),
        section: Section::Axis,
        title: format!("{} against {}", metric.title, axis.key),
        source: source(results, parameters, &workloads),
        legend_title: "workload".into(),
        legend: workloads,
        panels,
    })
}

/// Bars of a metric for each value of `category`: a panel per workload
/// (each with its own scale: workloads differ by orders of magnitude), a
/// group per combination of the other varying parameters.
fn bar_figure(results: &Results, parameters: &[Parameter], category: &Parameter, metric: &Metric) -> Option<Figure> {
    let workloads = results.workload_names();
    let groups = by_others(results, parameters, category);
    let others: Vec<&Parameter> = parameters.iter().filter(|p| p.varies() && p.key != category.key).collect();
    let x_label = match others.is_empty() {
        true => category.key.clone(),
        false => others.iter().map(|p| p.key.as_str()).collect::<Vec<_>>().join(", "),
    };
    // A group is labelled with the other parameters' values (the axis
    // label names them).
    let ticks: Vec<(f64, String)> =
        groups.iter().enumerate().map(|(i, group)| (i as f64, group.values.clone())).collect();
    let mut any = false;
    let panels: Vec<Panel> = workloads
        .iter()
        .map(|workload| {
            let bars: Vec<Vec<Option<f64>>> = groups
                .iter()
                .map(|group| {
                    category
                        .values
                        .iter()
                        .map(|value| {
                            let run = group.runs.iter().find(|run| &run.values[category.column] == value)?;
                            number(results.row(&run.id, workload)?, &metric.key)
                        })
                        .collect()
                })
                .collect();
            any |= bars.iter().flatten().any(Option::is_some);
            Panel {
                title: workload.clone(),
                x: XAxis::Ticks { label: x_label.clone(), ticks: ticks.clone() },
                y_label: metric.unit.clone(),
                y_log: false,
                plot: Plot::Bars(bars),
            }
        })
        .collect();
    any.then(|| Figure {
        file: format!("{}-{}", category.key, metric.key),
        section: Section::Comparison,
        title: format!("{} by {}", metric.title, category.key),
        source: source(results, parameters, &workloads),
        legend_title: category.key.clone(),
        legend: category.values.clone(),
        panels,
    })
}

/// The source line of a figure about one run.
fn run_source(results: &Results, run: &str, workloads: &[String]) -> String {
    let noun = if workloads.len() == 1 { "workload" } else { "workloads" };
    let within = if results.runs.len() > 1 { format!("{} · ", results.label) } else { String::new() };
    let traces: Vec<String> = results
        .workloads
        .iter()
        .filter(|w| workloads.contains(&w.name))
        .map(|w| format!("{} ({})", w.name, w.traces.join(" + ")))
        .collect();
    format!("{within}run {run} · {noun} {}", traces.join(", "))
}

/// The cumulative distributions of references and cycles per walk of one
/// run, a line per workload.
fn distribution_figure(results: &Results, run: &str) -> Option<Figure> {
    let rows: Vec<&Row> = results.rows.iter().filter(|r| r.run == run).collect();
    if rows.is_empty() {
        return None;
    }
    let workloads: Vec<String> = rows.iter().map(|r| r.workload.clone()).collect();
    let panels = [("references_per_walk", "memory references per walk"), ("cycles_per_walk", "cycles per walk")]
        .into_iter()
        .map(|(name, label)| Panel {
            title: String::new(),
            x: XAxis::Continuous { label: label.to_owned() },
            y_label: "fraction of walks at or below".to_owned(),
            y_log: false,
            plot: Plot::Steps(
                rows.iter()
                    .map(|row| {
                        let pairs = row.distributions.iter().find(|(n, _)| n == name).map(|(_, p)| p.as_slice());
                        cumulative(pairs.unwrap_or(&[]))
                    })
                    .collect(),
            ),
        })
        .collect();
    Some(Figure {
        file: format!("walks-{run}"),
        section: Section::Run(run.to_owned()),
        title: format!("Walk cost distributions of {run}"),
        source: run_source(results, run, &workloads),
        legend_title: "workload".into(),
        legend: workloads,
        panels,
    })
}

/// (value, fraction of the total at or below it) of an exact distribution.
pub fn cumulative(pairs: &[(u64, u64)]) -> Vec<(f64, f64)> {
    let total: u64 = pairs.iter().map(|(_, count)| count).sum();
    let mut below = 0u64;
    pairs
        .iter()
        .map(|&(value, count)| {
            below += count;
            (value as f64, below as f64 / total as f64)
        })
        .collect()
}

/// A run's VM exits per kilo-instruction by reason, a group per workload;
/// none when the run had no exits.
fn exits_figure(results: &Results, run: &str) -> Option<Figure> {
    let rows: Vec<&Row> = results.rows.iter().filter(|r| r.run == run).collect();
    if !rows.iter().any(|row| number(row, "vm_exits.exits").is_some_and(|n| n > 0.0)) {
        return None;
    }
    let mut reasons: Vec<String> = Vec::new();
    for row in &rows {
        for (key, _) in &row.metrics {
            if let Some(reason) = key.strip_prefix("vm_exits.by_reason.") {
                if !reasons.iter().any(|r| r == reason) {
                    reasons.push(reason.to_owned());
                }
            }
        }
    }
    let workloads: Vec<String> = rows.iter().map(|r| r.workload.clone()).collect();
    let bars = rows
        .iter()
        .map(|row| {
            let instructions = number(row, "instructions").filter(|&n| n > 0.0);
            reasons
                .iter()
                .map(|reason| Some(number(row, &format!("vm_exits.by_reason.{reason}"))? * 1000.0 / instructions?))
                .collect()
        })
        .collect();
    Some(Figure {
        file: format!("exits-{run}"),
        section: Section::Run(run.to_owned()),
        title: format!("VM exits by reason in {run}"),
        source: run_source(results, run, &workloads),
        legend_title: "exit reason".into(),
        legend: reasons,
        panels: vec![Panel {
            title: String::new(),
            x: XAxis::Ticks {
                label: "workload".into(),
                ticks: workloads.iter().enumerate().map(|(i, w)| (i as f64, w.clone())).collect(),
            },
            y_label: "exits per 1,000 instructions".into(),
            y_log: false,
            plot: Plot::Bars(bars),
        }],
    })
}

/// A run's LRU memory curve (`memory.curve`): major faults per
/// kilo-instruction at each resident limit, a line per workload; none
/// without a curve. Limits spanning a factor of 16 or more are spaced by
/// their logarithm.
fn curve_figure(results: &Results, run: &str) -> Option<Figure> {
    let rows: Vec<&Row> = results.rows.iter().filter(|r| r.run == run).collect();
    let mut limits: Vec<(String, f64)> = Vec::new();
    for row in &rows {
        for (key, _) in &row.metrics {
            let Some(limit) = key.strip_prefix("memory_curve.").and_then(|k| k.strip_suffix(".major_faults")) else {
                continue;
            };
            if !limits.iter().any(|(name, _)| name == limit) {
                limits.push((limit.to_owned(), numeric_value(limit)?));
            }
        }
    }
    if limits.is_empty() {
        return None;
    }
    limits.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (low, high) = (limits[0].1, limits[limits.len() - 1].1);
    let log_x = high / low >= 16.0;
    let position = |bytes: f64| if log_x { bytes.log2() } else { bytes };
    let workloads: Vec<String> = rows.iter().map(|r| r.workload.clone()).collect();
    let lines: Vec<Vec<(f64, f64)>> = rows
        .iter()
        .map(|row| {
            let instructions = number(row, "instructions").filter(|&n| n > 0.0);
            limits
                .iter()
                .filter_map(|(name, bytes)| {
                    let faults = number(row, &format!("memory_curve.{name}.major_faults"))?;
                    Some((position(*bytes), faults * 1000.0 / instructions?))
                })
                .collect()
        })
        .collect();
    let y_log = wants_log_axis(lines.iter().flatten().map(|&(_, y)| y));
    let scale = if log_x { " (log scale)" } else { "" };
    Some(Figure {
        file: format!("memory-curve-{run}"),
        section: Section::Run(run.to_owned()),
        title: format!("LRU memory curve of {run}"),
        source: run_source(results, run, &workloads),
        legend_title: "workload".into(),
        legend: workloads,
        panels: vec![Panel {
            title: String::new(),
            x: XAxis::Ticks {
                label: format!("memory.resident{scale}"),
                ticks: limits.iter().map(|(name, bytes)| (position(*bytes), name.clone())).collect(),
            },
            y_label: format!("major faults per 1,000 instructions{}", if y_log { " (log scale)" } else { "" }),
            y_log,
            plot: Plot::Lines(lines),
        }],
    })
}

/// Turns each figure's name into a file name: safe characters only, unique,
/// numbered in page order so a directory listing follows the page.
fn name_files(figures: &mut [Figure]) {
    let mut taken = BTreeSet::new();
    for (index, figure) in figures.iter_mut().enumerate() {
        let slug: String = figure
            .file
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' })
            .collect();
        let mut name = format!("{:03}-{slug}.svg", index + 1);
        while !taken.insert(name.clone()) {
            name.insert(0, '_');
        }
        figure.file = name;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(values: &[&str]) -> Vec<RunEntryFile> {
        values
            .iter()
            .map(|v| RunEntryFile { id: format!("r{v}"), values: vec!["c".to_owned(), (*v).to_owned()] })
            .collect()
    }

    #[test]
    fn parameters_are_classified_by_their_values() {
        let geometric = Parameter::classify("tlb.stlb.entries", 1, &runs(&["1536", "384", "768"]));
        assert_eq!(geometric.scale, Scale::Geometric);
        assert_eq!(geometric.values, ["384", "768", "1536"]);
        assert_eq!(geometric.position("1536"), 2.0);
        let linear = Parameter::classify("tlb.l1d.ways", 1, &runs(&["1", "2", "3"]));
        assert_eq!(linear.scale, Scale::Linear);
        assert_eq!(linear.position("3"), 3.0);
        let two = Parameter::classify("x", 1, &runs(&["4", "8"]));
        assert_eq!(two.scale, Scale::Linear, "two values do not make a geometric series");
        let sizes = Parameter::classify("memory.size", 1, &runs(&["4GiB", "1GiB", "2GiB"]));
        assert_eq!(
            (sizes.scale, sizes.values.clone()),
            (Scale::Geometric, vec!["1GiB".into(), "2GiB".into(), "4GiB".into()])
        );
        assert_eq!(
            sizes.axis(),
            XAxis::Ticks {
                label: "memory.size (bytes, log scale)".into(),
                ticks: vec![(0.0, "1GiB".into()), (1.0, "2GiB".into()), (2.0, "4GiB".into())]
            }
        );
        let modes = Parameter::classify("mode", 1, &runs(&["shadow", "native", "shadow"]));
        assert_eq!((modes.scale, modes.values), (Scale::Categorical, vec!["shadow".into(), "native".into()]));
        let configs = Parameter::classify("config", 1, &runs(&["1", "2"]));
        assert_eq!(configs.scale, Scale::Categorical, "configs are names even when they look like numbers");
    }

    #[test]
    fn only_positive_values_spanning_a_hundredfold_get_a_log_axis() {
        assert!(wants_log_axis([0.19, 130.0].into_iter()));
        assert!(!wants_log_axis([2.0, 130.0].into_iter()));
        assert!(!wants_log_axis([0.0, 0.19, 130.0].into_iter()), "zero has no place on a log axis");
        assert!(!wants_log_axis(std::iter::empty()));
    }

    #[test]
    fn paging_metrics_are_drawn_only_where_a_run_paged() {
        let row = |metrics: &[&str]| Row {
            run: "r".into(),
            workload: "w".into(),
            params: Vec::new(),
            metrics: metrics.iter().map(|&key| (key.to_owned(), serde_json::json!(1))).collect(),
            distributions: Vec::new(),
        };
        let keys = |rows: &[Row]| key_metrics(rows).into_iter().map(|m| m.key).collect::<Vec<_>>();
        assert!(!keys(&[row(&["walks.walks"])]).contains(&"major_faults".to_owned()));
        let paged = keys(&[row(&["walks.walks"]), row(&["major_faults"])]);
        assert!(paged.ends_with(&[
            "major_faults".into(),
            "invalidations".into(),
            "paging_cycles_per_instruction".into()
        ]));
        assert!(!paged.contains(&"host_major_faults".to_owned()));
        let overcommitted = keys(&[row(&["major_faults"]), row(&["host_major_faults"])]);
        assert!(overcommitted.ends_with(&[
            "paging_cycles_per_instruction".into(),
            "host_major_faults".into(),
            "host_paging_cycles_per_instruction".into()
        ]));
    }

    #[test]
    fn cumulative_fractions_end_at_one() {
        assert_eq!(cumulative(&[(1, 2), (3, 1), (7, 1)]), [(1.0, 0.5), (3.0, 0.75), (7.0, 1.0)]);
        assert!(cumulative(&[]).is_empty());
    }

    #[test]
    fn file_names_are_safe_unique_and_in_page_order() {
        let figure = |file: &str| Figure {
            file: file.into(),
            section: Section::Axis,
            title: String::new(),
            source: String::new(),
            legend_title: String::new(),
            legend: Vec::new(),
            panels: Vec::new(),
        };
        let mut figures = vec![figure("walks-skylake,pages.policy=thp"), figure("a/b"), figure("a/b")];
        name_files(&mut figures);
        let names: Vec<&str> = figures.iter().map(|f| f.file.as_str()).collect();
        assert_eq!(names, ["001-walks-skylake_pages.policy_thp.svg", "002-a_b.svg", "003-a_b.svg"]);
    }
}
