//! The report's `index.html`: the figures in sections, and per-run tables.
//! Self-contained: inline style, no scripts, no network; it prints.

use std::fmt::Write as _;

use super::figures::{Figure, Section};
use super::results::{number, Results};
use crate::outputs::Row;
use crate::text::thousands;

/// The long-form table's file name, beside the figures.
pub const LONG_CSV: &str = "metrics-long.csv";

const STYLE: &str = "\
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1300px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
.meta { color: #555; }
figure { margin: 1.2em 0; break-inside: avoid; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; break-inside: avoid; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
@media print { body { max-width: none; } h2 { break-after: avoid; } }
";

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn figure_html(out: &mut String, figure: &Figure) {
    let _ = writeln!(
        out,
        "<figure><img src=\"{file}\" alt=\"{title}\"><figcaption>{title}. {source}. <a href=\"{file}\">SVG</a></figcaption></figure>",
        file = escape(&figure.file),
        title = escape(&figure.title),
        source = escape(&figure.source),
    );
}

fn integer(row: &Row, key: &str) -> String {
    number(row, key).map_or_else(String::new, |n| thousands(n as u64))
}

fn rate(row: &Row, key: &str) -> String {
    number(row, key).map_or_else(String::new, |n| format!("{n:.4}"))
}

fn bytes(row: &Row, key: &str) -> String {
    number(row, key).map_or_else(String::new, |n| crate::text::bytes(n as u64))
}

/// The TLBs a row has, in its order.
fn tlb_names(row: &Row) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (key, _) in &row.metrics {
        if let Some(name) = key.strip_prefix("tlbs.").and_then(|k| k.strip_suffix(".lookups")) {
            if !name.contains(".by_kind") && !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
    }
    names
}

fn run_tables(out: &mut String, rows: &[&Row]) {
    out.push_str(
        "<table><tr><th>workload</th><th>TLB</th><th>lookups</th><th>misses</th><th>miss rate</th><th>misses per 1,000 instructions</th></tr>\n",
    );
    for row in rows {
        for tlb in tlb_names(row) {
            let key = |metric: &str| format!("tlbs.{tlb}.{metric}");
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                escape(&row.workload),
                escape(&tlb),
                integer(row, &key("lookups")),
                integer(row, &key("misses")),
                rate(row, &key("miss_rate")),
                rate(row, &key("mpki")),
            );
        }
    }
    out.push_str("</table>\n");
    let host = rows.iter().any(|row| number(row, "host_page_tables.bytes").is_some());
    out.push_str("<table><tr><th>workload</th><th>walks</th><th>walks per 1,000 instructions</th><th>references per walk</th><th>cycles per walk</th><th>translation cycles per instruction</th><th>page-table memory</th>");
    if host {
        out.push_str("<th>host page-table memory</th>");
    }
    out.push_str("</tr>\n");
    for row in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td>",
            escape(&row.workload),
            integer(row, "walks.walks"),
            rate(row, "walks.per_kilo_instruction"),
            rate(row, "walks.references_per_walk"),
            rate(row, "walks.cycles_per_walk"),
            rate(row, "translation_cycles_per_instruction"),
            bytes(row, "page_tables.bytes"),
        );
        if host {
            let _ = write!(out, "<td class=n>{}</td>", bytes(row, "host_page_tables.bytes"));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// The page.
pub fn index_html(results: &Results, figures: &[Figure]) -> String {
    let mut out = String::new();
    let title = format!("mmusim report: {}", results.label);
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>",
        escape(&title)
    );
    let _ = writeln!(out, "<h1>{}</h1>", escape(&title));
    if let Some(description) = &results.description {
        let _ = writeln!(out, "<p>{}</p>", escape(description));
    }
    let _ = writeln!(
        out,
        "<p class=meta>{} of the plan's {} runs on its workloads are in {}. Written by mmusim {}. Every metric, one per line: <a href=\"{LONG_CSV}\">{LONG_CSV}</a> (run, parameters, workload, metric, value).</p>",
        results.rows.len(),
        results.planned_rows,
        escape(&results.dir.display().to_string()),
        env!("CARGO_PKG_VERSION"),
    );

    out.push_str("<h2>Workloads</h2>\n<table><tr><th>workload</th><th>traces</th><th>references</th><th>instructions</th></tr>\n");
    for workload in &results.workloads {
        let row = results.rows.iter().find(|r| r.workload == workload.name);
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            escape(&workload.name),
            escape(&workload.traces.join(", ")),
            row.map(|r| integer(r, "references")).unwrap_or_default(),
            row.map(|r| integer(r, "instructions")).unwrap_or_default(),
        );
    }
    out.push_str("</table>\n");
    if results.runs.len() > 1 {
        out.push_str("<h2>Parameters</h2>\n<table><tr><th>parameter</th><th>values</th></tr>\n");
        for (column, key) in results.parameters.iter().enumerate() {
            let mut values: Vec<&str> = Vec::new();
            for run in &results.runs {
                if !values.contains(&run.values[column].as_str()) {
                    values.push(&run.values[column]);
                }
            }
            let _ = writeln!(out, "<tr><td>{}</td><td>{}</td></tr>", escape(key), escape(&values.join(", ")));
        }
        out.push_str("</table>\n");
    }

    for (section, heading) in [
        (Section::Axis, "Metrics against each numeric parameter"),
        (Section::Comparison, "Comparisons of each categorical parameter"),
    ] {
        let mut chosen = figures.iter().filter(|f| f.section == section).peekable();
        if chosen.peek().is_some() {
            let _ = writeln!(out, "<h2>{heading}</h2>");
            chosen.for_each(|figure| figure_html(&mut out, figure));
        }
    }

    out.push_str("<h2>Runs</h2>\n");
    for entry in &results.runs {
        let (run, values) = (&entry.id, &entry.values);
        let rows: Vec<&Row> = results.rows.iter().filter(|r| &r.run == run).collect();
        let _ = writeln!(out, "<section>\n<h3>{}</h3>", escape(run));
        let parameters: Vec<String> =
            results.parameters.iter().zip(values).map(|(k, v)| format!("{k} = {v}")).collect();
        let _ = writeln!(out, "<p class=meta>{}</p>", escape(&parameters.join(", ")));
        if rows.is_empty() {
            out.push_str("<p>Not run yet (or in another shard).</p>\n</section>\n");
            continue;
        }
        run_tables(&mut out, &rows);
        for figure in figures.iter().filter(|f| f.section == Section::Run(run.clone())) {
            figure_html(&mut out, figure);
        }
        out.push_str("</section>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(escape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
    }
}
