//! Golden runs: every committed real trace through every preset, compared
//! with the stored metrics in tests/golden/. The stored files are what the
//! pipeline produced when they were last regenerated, a deliberate, reviewed
//! step (`MMUSIM_BLESS=1 cargo test -p mmusim-report --test integration golden`); the
//! independent checks of the numbers are the scenario and cross-check tests
//! of the translate crate. Any change to a metric shows up here as a diff.

use std::path::{Path, PathBuf};

use mmusim_report::config_file;
use mmusim_report::run::run;
use mmusim_trace::{TraceSpec, Workload};
use serde::Serialize;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const TRACES_64: [&str; 5] =
    ["sort.lackey.zst", "gzip.lackey.xz", "python-dict.lackey.gz", "randaccess.lackey.zst", "randaccess32.lackey.zst"];
const PRESETS_64: [&str; 11] = [
    "skylake",
    "golden-cove",
    "zen2",
    "zen4",
    "cortex-a76",
    "skylake-nested",
    "skylake-shadow",
    "golden-cove-nested",
    "zen4-nested",
    "zen4-shadow",
    "cortex-a76-nested",
];

#[derive(Serialize)]
struct Golden<'a> {
    preset: &'a str,
    trace: &'a str,
    sha256: &'a str,
    records: u64,
    metrics: &'a mmusim_report::metrics::Metrics,
}

fn check(preset: &str, trace: &str) -> Option<String> {
    let config = config_file::load(&repo().join("configs").join(format!("{preset}.toml")), &[]).unwrap();
    let workload = Workload::new(vec![TraceSpec::new(repo().join("traces").join(trace))], 1);
    let output = run(&config, &workload).unwrap();
    let provenance = &output.workload.traces[0];
    let golden =
        Golden { preset, trace, sha256: &provenance.sha256, records: provenance.records, metrics: &output.metrics };
    let text = serde_json::to_string_pretty(&golden).unwrap() + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{preset}--{trace}.json"));
    if std::env::var_os("MMUSIM_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return None;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (bless it first)", path.display()));
    (stored != text).then(|| {
        let first = stored.lines().zip(text.lines()).position(|(a, b)| a != b).unwrap_or(0);
        format!("{preset} on {trace}: differs from {} from line {}", path.display(), first + 1)
    })
}

#[test]
fn every_preset_on_every_real_trace() {
    let mut failures = Vec::new();
    for preset in PRESETS_64 {
        for trace in TRACES_64 {
            failures.extend(check(preset, trace));
        }
    }
    failures.extend(check("x86-32-4m", "randaccess32.lackey.zst"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
