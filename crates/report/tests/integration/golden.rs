//! Golden runs: every committed real trace through every preset (the
//! sweeps `configs/ci/golden.toml` and `golden-32.toml`), compared cell by
//! cell, exactly, with the committed tables in `results/golden-baseline/`
//! by `mmusim check`'s comparison: the project's one regression mechanism,
//! which `make ci-check` also uses end to end through the binary. A
//! failure lists the metrics that moved, with both values. The stored
//! tables are what the pipeline produced when last blessed, a deliberate,
//! reviewed step (`make golden-bless`); the independent checks of the
//! numbers are the scenario and cross-check tests of the translate crate.

use std::path::{Path, PathBuf};

use mmusim_report::{check, plan, sweep};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `spec` and compares its table with `baseline`; returns the
/// rendered check when anything moved. With MMUSIM_BLESS set, makes the
/// table the new baseline instead.
fn golden(spec: &str, baseline: &str) -> Option<String> {
    let plan = plan::load(&repo().join("configs/ci").join(spec)).unwrap();
    let out = tempfile::tempdir().unwrap();
    let options =
        sweep::Options { out: out.path().to_owned(), threads: None, shard: None, progress: false, one_pass: true };
    let outcome = sweep::execute(&plan, &options).unwrap();
    assert!(outcome.failures.is_empty(), "{spec}: {:?}", outcome.failures);
    let current = check::read_table(out.path()).unwrap();
    let baseline = repo().join("results/golden-baseline").join(baseline);
    if std::env::var_os("MMUSIM_BLESS").is_some() {
        check::bless(&baseline, &current).unwrap();
        return None;
    }
    let stored = check::read_table(&baseline).unwrap_or_else(|e| panic!("{e} (bless it first: make golden-bless)"));
    let report = check::check(&stored, &current, &check::Tolerances::default());
    report.failed().then(|| format!("{spec}: {}", check::render(&report, stored.rows.len())))
}

#[test]
fn every_preset_on_every_real_trace() {
    let failures: Vec<String> = [("golden.toml", "golden.csv"), ("golden-32.toml", "golden-32.csv")]
        .into_iter()
        .filter_map(|(s, b)| golden(s, b))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The stored tables cover what the golden JSON files did: 55 runs of the
/// 64-bit presets and one of the 32-bit preset.
#[test]
fn the_baselines_hold_every_preset_and_trace() {
    let rows = |file: &str| check::read_table(&repo().join("results/golden-baseline").join(file)).unwrap().rows.len();
    assert_eq!(rows("golden.csv"), 11 * 5);
    assert_eq!(rows("golden-32.csv"), 1);
    assert!(Path::new(&repo().join("configs/ci/golden.toml")).exists());
}
