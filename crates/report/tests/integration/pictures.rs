//! `mmusim report` on a real sweep: every figure it should draw, each
//! well-formed and labelled; a page that references them all; a long table
//! holding every number of the wide one; and a real browser that draws it.
//! Expectations come from the sweep's design and its metrics.csv, not from
//! the report's own code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use mmusim_report::pictures;
use mmusim_report::plan;
use mmusim_report::sweep::{self, Options};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const ENTRIES: [&str; 3] = ["384", "768", "1536"];
const MODES: [&str; 2] = ["native", "nested"];
const WORKLOADS: [&str; 2] = ["python-dict", "sort"];

/// A sweep with a geometric numeric axis (the STLB's entries) and a
/// categorical one (the mode) over two real traces; returns its directory.
fn sweep_into(dir: &Path) -> PathBuf {
    let root = repo();
    let text = format!(
        "name = \"pictures\"\nconfig = \"{c}/skylake.toml\"\n\
         traces = [\"{t}/python-dict.lackey.gz\", \"{t}/sort.lackey.zst\"]\n\
         [axes]\ntlb.stlb.entries = [{entries}]\nmode = [\"native\", \"nested\"]\n",
        c = root.join("configs").display(),
        t = root.join("traces").display(),
        entries = ENTRIES.join(", "),
    );
    let spec = dir.join("spec.toml");
    std::fs::write(&spec, text).unwrap();
    let plan = plan::load(&spec).unwrap();
    let out = dir.join("sweep");
    let options = Options { out: out.clone(), threads: Some(2), shard: None, progress: false, one_pass: true };
    let outcome = sweep::execute(&plan, &options).unwrap();
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    out
}

/// What a figure says and draws.
#[derive(Debug)]
struct Svg {
    /// Every text element, trimmed; the first is the title.
    texts: Vec<String>,
    /// Data lines: polylines drawn at the series stroke width.
    series: usize,
    /// Filled rectangles other than the white background: legend swatches
    /// and bars.
    filled: usize,
}

fn parse_svg(path: &Path) -> Svg {
    let text = std::fs::read_to_string(path).unwrap();
    let document =
        roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{} is not well-formed XML: {e}", path.display()));
    assert_eq!(document.root_element().tag_name().name(), "svg", "{}", path.display());
    let elements = || document.descendants().filter(roxmltree::Node::is_element);
    let stroke = pictures::draw::SERIES_STROKE.to_string();
    Svg {
        texts: elements()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| n.text().unwrap_or("").trim().to_owned())
            .collect(),
        series: elements()
            .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke-width") == Some(stroke.as_str()))
            .count(),
        filled: elements()
            .filter(|n| n.has_tag_name("rect") && n.attribute("fill").is_some_and(|f| f != "#FFFFFF"))
            .count(),
    }
}

/// The report's figures by title.
fn figures(report: &Path) -> BTreeMap<String, (String, Svg)> {
    let mut figures = BTreeMap::new();
    for entry in std::fs::read_dir(report).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "svg") {
            let svg = parse_svg(&path);
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let title = svg.texts[0].clone();
            assert!(figures.insert(title.clone(), (name, svg)).is_none(), "two figures titled {title}");
        }
    }
    figures
}

/// The sweep's metrics.csv: its header and rows.
fn wide_table(out: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(out.join("metrics.csv")).unwrap();
    let header = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect();
    (header, rows)
}

fn has(svg: &Svg, text: &str) -> bool {
    svg.texts.iter().any(|t| t == text)
}

#[test]
fn a_sweeps_report_draws_every_figure_it_should() {
    let dir = tempfile::tempdir().unwrap();
    let out = sweep_into(dir.path());
    let written = pictures::write(&out).unwrap();
    assert_eq!((written.rows, written.planned_rows), (12, 12));
    let report = out.join("report");
    let figures = figures(&report);

    let (header, rows) = wide_table(&out);
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let tlbs: Vec<&str> = header.iter().filter_map(|h| h.strip_prefix("tlbs.")?.strip_suffix(".mpki")).collect();
    assert_eq!(tlbs, ["l1d", "l1i", "stlb"], "Skylake's TLBs");
    let runs: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    let exits = column("vm_exits.exits");
    let runs_with_exits: BTreeSet<&str> =
        rows.iter().filter(|r| r[exits].parse::<u64>().is_ok_and(|n| n > 0)).map(|r| r[0].as_str()).collect();
    assert_eq!(runs_with_exits.len(), 3, "each nested run exits to the host at first touches");

    let against = |what: &str| format!("{what} against tlb.stlb.entries");
    let mut expected: BTreeSet<String> =
        tlbs.iter().map(|tlb| against(&format!("{tlb} TLB misses per kilo-instruction"))).collect();
    for what in [
        "Translation cycles per instruction",
        "Page walks per kilo-instruction",
        "Memory references per page walk",
        "Cycles per page walk",
    ] {
        expected.insert(against(what));
    }
    expected.insert("Translation cycles per instruction by mode".into());
    expected.insert("Page walks per kilo-instruction by mode".into());
    for run in &runs {
        expected.insert(format!("Walk cost distributions of {run}"));
    }
    for run in &runs_with_exits {
        expected.insert(format!("VM exits by reason in {run}"));
    }
    assert_eq!(figures.keys().cloned().collect::<BTreeSet<_>>(), expected);

    for (title, (file, svg)) in &figures {
        let source = &svg.texts[1];
        assert!(source.starts_with("sweep pictures"), "{file}: source line {source:?}");
        assert!(WORKLOADS.iter().all(|w| source.contains(w)), "{file}: source line {source:?}");
        if title.contains(" against ") {
            assert!(source.contains("config=skylake"), "{file}: the fixed config is named: {source:?}");
            assert!(has(svg, "tlb.stlb.entries (entries, log scale)"), "{file}: x label: {:?}", svg.texts);
            assert!(MODES.iter().all(|m| has(svg, &format!("mode={m}"))), "{file}: a panel per mode");
            assert!(ENTRIES.iter().all(|e| has(svg, e)), "{file}: a tick per swept value");
            assert!(WORKLOADS.iter().all(|w| has(svg, w)), "{file}: a legend entry per workload");
            assert_eq!(svg.series, MODES.len() * WORKLOADS.len(), "{file}: a line per workload per panel");
        } else if title.ends_with(" by mode") {
            assert!(MODES.iter().all(|m| has(svg, m)), "{file}: a legend entry per mode");
            assert!(WORKLOADS.iter().all(|w| has(svg, w)), "{file}: a panel per workload");
            assert!(has(svg, "tlb.stlb.entries"), "{file}: groups named by the other axis");
            let bars = WORKLOADS.len() * ENTRIES.len() * MODES.len();
            assert_eq!(svg.filled, MODES.len() + bars, "{file}: legend swatches and bars");
        } else if title.starts_with("Walk cost") {
            assert!(has(svg, "memory references per walk") && has(svg, "cycles per walk"), "{file}");
            assert!(has(svg, "fraction of walks at or below"), "{file}");
            assert_eq!(svg.series, 2 * WORKLOADS.len(), "{file}: a distribution per workload per panel");
        } else {
            assert!(has(svg, "host_page_fault") && has(svg, "exits per 1,000 instructions"), "{file}");
        }
    }

    // The page shows every figure and nothing that is not there.
    let page = std::fs::read_to_string(report.join("index.html")).unwrap();
    let sources: BTreeSet<String> =
        page.split("src=\"").skip(1).map(|rest| rest[..rest.find('"').unwrap()].to_owned()).collect();
    let files: BTreeSet<String> = figures.values().map(|(file, _)| file.clone()).collect();
    assert_eq!(sources, files);
    assert!(page.contains("href=\"metrics-long.csv\""));
    for run in &runs {
        assert!(page.contains(&format!("<h3>{run}</h3>")), "a section for {run}");
    }
}

#[test]
fn a_memory_curve_is_drawn_per_run_with_a_line_per_workload() {
    let dir = tempfile::tempdir().unwrap();
    let root = repo();
    let limits = ["64KiB", "128KiB", "256KiB", "1MiB", "4MiB"];
    let quoted: Vec<String> = limits.iter().map(|l| format!("\"{l}\"")).collect();
    let text = format!(
        "name = \"curve\"\nconfig = \"{c}/skylake.toml\"\n\
         traces = [\"{t}/python-dict.lackey.gz\", \"{t}/sort.lackey.zst\"]\n\
         [set]\nmemory.curve = [{}]\n[axes]\nmode = [\"native\", \"nested\"]\n",
        quoted.join(", "),
        c = root.join("configs").display(),
        t = root.join("traces").display(),
    );
    let spec = dir.path().join("spec.toml");
    std::fs::write(&spec, text).unwrap();
    let out = dir.path().join("sweep");
    let options = Options { out: out.clone(), threads: Some(2), shard: None, progress: false, one_pass: true };
    let outcome = sweep::execute(&plan::load(&spec).unwrap(), &options).unwrap();
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    pictures::write(&out).unwrap();
    let drawn = figures(&out.join("report"));
    for mode in MODES {
        let title = format!("LRU memory curve of skylake,mode={mode}");
        let (file, svg) = drawn.get(&title).unwrap_or_else(|| panic!("no {title}: {:?}", drawn.keys()));
        assert!(limits.iter().all(|l| has(svg, l)), "{file}: a tick per limit: {:?}", svg.texts);
        assert!(has(svg, "memory.resident (log scale)"), "{file}: 64 KiB to 4 MiB is spaced by logarithm");
        assert!(WORKLOADS.iter().all(|w| has(svg, w)), "{file}: a legend entry per workload");
        assert_eq!(svg.series, WORKLOADS.len(), "{file}: a line per workload");
    }
    // Runs without a curve have none.
    let plain = sweep_into(dir.path());
    pictures::write(&plain).unwrap();
    assert!(figures(&plain.join("report")).keys().all(|t| !t.starts_with("LRU memory curve")));
}

#[test]
fn the_long_table_holds_every_number_of_the_wide_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = sweep_into(dir.path());
    pictures::write(&out).unwrap();
    let (header, rows) = wide_table(&out);
    let first_metric = header.iter().position(|h| h == "workload").unwrap() + 1;
    let mut expected = BTreeSet::new();
    for row in &rows {
        for (name, cell) in header.iter().zip(row).skip(first_metric) {
            if cell.parse::<f64>().is_ok() {
                let mut line: Vec<String> = row[..first_metric].to_vec();
                line.push(name.clone());
                line.push(cell.clone());
                expected.insert(line);
            }
        }
    }
    let mut reader = csv::Reader::from_path(out.join("report/metrics-long.csv")).unwrap();
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["run", "config", "tlb.stlb.entries", "mode", "workload", "metric", "value"]
    );
    let long: Vec<Vec<String>> = reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect();
    let unique: BTreeSet<Vec<String>> = long.iter().cloned().collect();
    assert_eq!(unique.len(), long.len(), "no line twice");
    assert_eq!(unique, expected);
}

#[test]
fn a_report_is_the_same_bytes_when_written_again_and_drops_stale_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = sweep_into(dir.path());
    pictures::write(&out).unwrap();
    let report = out.join("report");
    let read_all = || {
        let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&report)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
            .collect();
        files.sort();
        files
    };
    let first = read_all();
    std::fs::write(report.join("999-left-over.svg"), "<svg/>").unwrap();
    pictures::write(&out).unwrap();
    assert!(first == read_all(), "a second report differs from the first, or kept a figure it does not draw");
}

#[test]
fn directories_that_hold_no_results_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let error = pictures::write(dir.path()).unwrap_err().to_string();
    assert!(error.contains(&dir.path().display().to_string()) && error.contains("sweep.json"), "{error}");
    std::fs::write(dir.path().join("summary.json"), "{ not json").unwrap();
    let error = pictures::write(dir.path()).unwrap_err().to_string();
    assert!(error.contains("summary.json") && error.contains("not a run summary"), "{error}");
    assert!(!dir.path().join("report").exists(), "nothing written for a directory that is not results");
}

/// The browser: $MMUSIM_CHROMIUM, or Chromium or Chrome on the PATH.
fn browser() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MMUSIM_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser", "google-chrome"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Runs the headless browser on a page (bounded by `timeout`, so a browser
/// that hangs fails the test rather than stalling it); returns its output.
fn headless(browser: &Path, profile: &Path, args: &[&str], page: &Path) -> String {
    let output = Command::new("timeout")
        .arg("120")
        .arg(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("the browser starts");
    assert!(output.status.success(), "the browser failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// (images decoded, images on the page) as the browser saw them after the
/// page loaded: a copy of the page beside it with a script that counts
/// them into the title, dumped as DOM.
fn images_drawn(browser: &Path, profile: &Path, page: &Path, extra: &str) -> (usize, usize) {
    let html = std::fs::read_to_string(page).unwrap();
    let script = "<script>window.addEventListener('load', () => { const all = Array.from(document.images); \
                  document.title = 'drawn ' + all.filter(i => i.complete && i.naturalWidth > 0).length + \
                  ' of ' + all.length; });</script>";
    let check = page.with_file_name("browser-check.html");
    std::fs::write(&check, html.replace("</body>", &format!("{extra}{script}</body>"))).unwrap();
    let dom = headless(browser, profile, &["--virtual-time-budget=10000", "--dump-dom"], &check);
    std::fs::remove_file(&check).unwrap();
    let title = &dom[dom.find("<title>drawn ").expect("the check ran") + "<title>drawn ".len()..];
    let title = &title[..title.find("</title>").unwrap()];
    let (drawn, total) = title.split_once(" of ").unwrap();
    (drawn.parse().unwrap(), total.parse().unwrap())
}

/// Pixels of a screenshot that are exactly the figures' first series
/// colour (a filled legend swatch or bar), and that are not white.
fn screenshot_pixels(path: &Path) -> (usize, usize, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buffer).unwrap();
    let channels = frame.color_type.samples();
    assert!(channels >= 3 && frame.bit_depth == png::BitDepth::Eight, "{:?}", frame);
    let pixels = buffer[..frame.buffer_size()].chunks(channels);
    let (mut series, mut ink, mut all) = (0, 0, 0);
    for pixel in pixels {
        all += 1;
        if pixel[..3] == [0, 114, 178] {
            series += 1;
        }
        if pixel[..3] != [255, 255, 255] {
            ink += 1;
        }
    }
    (series, ink, all)
}

#[test]
// A test skipped for want of a browser must say so where the test output shows it.
#[allow(clippy::print_stderr)]
fn a_report_opens_in_a_real_browser_with_its_figures_drawn() {
    let Some(browser) = browser() else {
        assert!(
            std::env::var_os("MMUSIM_REQUIRE_BROWSER").is_none(),
            "MMUSIM_REQUIRE_BROWSER is set but no Chromium was found (set MMUSIM_CHROMIUM or install chromium)"
        );
        eprintln!("SKIPPED a_report_opens_in_a_real_browser_with_its_figures_drawn: no Chromium on this machine (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = sweep_into(dir.path());
    let written = pictures::write(&out).unwrap();
    let page = out.join("report/index.html");
    let profile = dir.path().join("profile");

    assert_eq!(images_drawn(&browser, &profile, &page, ""), (written.figures, written.figures));
    // The check can fail: a figure that is not there is not drawn.
    let broken = images_drawn(&browser, &profile, &page, "<img src=\"no-such-figure.svg\">");
    assert_eq!(broken, (written.figures, written.figures + 1));

    let shot = dir.path().join("page.png");
    headless(&browser, &profile, &["--window-size=1280,2400", &format!("--screenshot={}", shot.display())], &page);
    let (series, ink, all) = screenshot_pixels(&shot);
    assert!(series >= 100, "the figures' first colour covers only {series} pixels: figures not drawn");
    assert!(ink * 100 > all && ink * 10 < all * 9, "{ink} of {all} pixels are not white");
    // ... and so can this one: a page without its figures has no series colour.
    std::fs::write(page.with_file_name("bare.html"), "<html><body><h1>no figures</h1></body></html>").unwrap();
    headless(
        &browser,
        &profile,
        &["--window-size=1280,2400", &format!("--screenshot={}", shot.display())],
        &page.with_file_name("bare.html"),
    );
    assert_eq!(screenshot_pixels(&shot).0, 0);
}
