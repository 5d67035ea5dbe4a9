//! Sweeps end to end on the committed traces: the same numbers as single
//! runs, whatever the thread count, after an interruption, or sharded and
//! merged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mmusim_report::plan::{self, Plan};
use mmusim_report::sweep::{self, Options, Shard};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A spec over two real traces: three presets (one nested, one shadow),
/// two page-size policies.
fn spec(dir: &Path) -> PathBuf {
    let root = repo();
    let text = format!(
        "name = \"t\"\nconfigs = [\"{c}/skylake.toml\", \"{c}/skylake-nested.toml\", \"{c}/zen4-shadow.toml\"]\n\
         traces = [\"{t}/python-dict.lackey.gz\", \"{t}/sort.lackey.zst\"]\n[axes]\npages.policy = [\"fixed\", \"thp\"]\n",
        c = root.join("configs").display(),
        t = root.join("traces").display()
    );
    let path = dir.join("spec.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn options(out: &Path, threads: usize, shard: Option<Shard>) -> Options {
    Options { out: out.to_owned(), threads: Some(threads), shard, progress: false, one_pass: true }
}

/// Every file under `dir`, by relative path, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(path.strip_prefix(root).unwrap().to_owned(), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn assert_same_files(a: &Path, b: &Path) {
    let (fa, fb) = (files(a), files(b));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (name, bytes) in &fa {
        assert!(bytes == &fb[name], "{} differs between {} and {}", name.display(), a.display(), b.display());
    }
}

fn load(dir: &Path) -> Plan {
    plan::load(&spec(dir)).unwrap()
}

#[test]
fn every_run_of_a_sweep_equals_the_same_run_alone() {
    let dir = tempfile::tempdir().unwrap();
    let plan = load(dir.path());
    let out = dir.path().join("sweep");
    let outcome = sweep::execute(&plan, &options(&out, 2, None)).unwrap();
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    assert_eq!((outcome.jobs, outcome.simulated, outcome.resumed), (12, 12, 0));
    assert_eq!(outcome.rows.len(), 12);
    // Modes and their sections came through the configs list.
    let modes: Vec<&str> = plan.runs.iter().map(|r| r.config.mode.name()).collect();
    assert_eq!(modes, ["native", "native", "nested", "nested", "shadow", "shadow"]);
    for run in &plan.runs {
        for workload in &plan.workloads {
            // The single-run path: its own reader, one batch at a time.
            let alone = mmusim_report::run::run_named(&run.config, &workload.workload, &workload.name).unwrap();
            let single = dir.path().join("single");
            mmusim_report::outputs::write_run_dir(&single, &run.id, &run.params(&plan), &alone).unwrap();
            assert_same_files(&single, &sweep::run_dir(&out, &run.id, &workload.name));
        }
    }
    // The table's rows are in plan order, runs first, then workloads.
    let order: Vec<(String, String)> = outcome.rows.iter().map(|r| (r.run.clone(), r.workload.clone())).collect();
    let want: Vec<(String, String)> =
        plan.runs.iter().flat_map(|r| ["python-dict", "sort"].map(|w| (r.id.clone(), w.to_owned()))).collect();
    assert_eq!(order, want);
    let table = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(table.starts_with("run,config,pages.policy,workload,mode,references,"), "{}", &table[..80]);
    assert_eq!(table.lines().count(), 13);
}

#[test]
fn output_is_byte_identical_at_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let plan = load(dir.path());
    let one = dir.path().join("one");
    let three = dir.path().join("three");
    sweep::execute(&plan, &options(&one, 1, None)).unwrap();
    sweep::execute(&plan, &options(&three, 3, None)).unwrap();
    assert_same_files(&one, &three);
}

#[test]
fn an_interrupted_sweep_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let plan = load(dir.path());
    let clean = dir.path().join("clean");
    sweep::execute(&plan, &options(&clean, 2, None)).unwrap();

    let resumed = dir.path().join("resumed");
    sweep::execute(&plan, &options(&resumed, 2, None)).unwrap();
    // What an interruption leaves: runs with no summary.json (killed before
    // their last file), a temporary file never renamed, no tables.
    let runs: Vec<&str> = plan.runs.iter().map(|r| r.id.as_str()).collect();
    for (run, workload) in [(runs[0], "sort"), (runs[3], "python-dict"), (runs[5], "sort")] {
        let run_dir = sweep::run_dir(&resumed, run, workload);
        std::fs::remove_file(run_dir.join("summary.json")).unwrap();
        std::fs::write(run_dir.join(".mmusim-x1.partial"), "half a file").unwrap();
    }
    std::fs::remove_file(resumed.join("metrics.csv")).unwrap();
    // And a run whose summary is from another config: it is run again.
    let stale = sweep::run_dir(&resumed, runs[1], "python-dict").join("summary.json");
    let text = std::fs::read_to_string(&stale).unwrap();
    std::fs::write(&stale, text.replacen("\"entries\": 64", "\"entries\": 32", 1)).unwrap();

    let outcome = sweep::execute(&plan, &options(&resumed, 2, None)).unwrap();
    assert_eq!((outcome.simulated, outcome.resumed), (4, 8));
    assert_same_files(&clean, &resumed);
}

#[test]
fn sharded_then_merged_equals_unsharded() {
    let dir = tempfile::tempdir().unwrap();
    let plan = load(dir.path());
    let whole = dir.path().join("whole");
    sweep::execute(&plan, &options(&whole, 2, None)).unwrap();
    let shards: Vec<PathBuf> = (0..3)
        .map(|index| {
            let out = dir.path().join(format!("shard{index}"));
            let outcome = sweep::execute(&plan, &options(&out, 1, Some(Shard { index, count: 3 }))).unwrap();
            // Six runs in three shards: two runs x two workloads each.
            assert_eq!(outcome.jobs, 4);
            out
        })
        .collect();
    let merged = dir.path().join("merged");
    assert_eq!(sweep::merge(&merged, &shards).unwrap(), 6);
    assert_same_files(&whole, &merged);
    // Shards in any order merge to the same bytes.
    let reversed = dir.path().join("reversed");
    let mut backwards = shards.clone();
    backwards.reverse();
    sweep::merge(&reversed, &backwards).unwrap();
    assert_same_files(&whole, &reversed);
}

#[test]
fn merge_refuses_duplicates_gaps_strangers_and_unfinished_shards() {
    let dir = tempfile::tempdir().unwrap();
    let plan = load(dir.path());
    let shard = |index: usize, count: usize| {
        let out = dir.path().join(format!("s{index}of{count}"));
        sweep::execute(&plan, &options(&out, 2, Some(Shard { index, count }))).unwrap();
        out
    };
    let (a, b) = (shard(0, 2), shard(1, 2));
    let merged = dir.path().join("m");
    let err = |shards: &[PathBuf]| sweep::merge(&merged, shards).unwrap_err().to_string();

    assert!(err(&[a.clone(), a.clone()]).contains("is in both"), "{}", err(&[a.clone(), a.clone()]));
    let gap = err(std::slice::from_ref(&a));
    assert!(gap.contains("3 of 6 runs are in no shard"), "{gap}");
    let other = shard(0, 3);
    assert!(err(&[a.clone(), other]).contains("is in both"));

    // Another sweep's shard: its plan differs.
    let mut spec_text = std::fs::read_to_string(spec(dir.path())).unwrap();
    spec_text = spec_text.replace("[\"fixed\", \"thp\"]", "[\"thp\", \"fixed\"]");
    let other_spec = dir.path().join("other.toml");
    std::fs::write(&other_spec, spec_text).unwrap();
    let other_plan = plan::load(&other_spec).unwrap();
    let stranger = dir.path().join("stranger");
    sweep::execute(&other_plan, &options(&stranger, 2, Some(Shard { index: 1, count: 2 }))).unwrap();
    assert!(err(&[a.clone(), stranger]).contains("are not shards of the same sweep"));

    // A shard that did not finish a run.
    let id = &plan.runs[1].id;
    std::fs::remove_file(sweep::run_dir(&b, id, "sort").join("summary.json")).unwrap();
    let unfinished = err(&[a.clone(), b.clone()]);
    assert!(unfinished.contains(&format!("run {id} on sort did not finish")), "{unfinished}");
    assert!(!merged.join("sweep.json").exists(), "a refused merge writes nothing");
    assert!(err(&[dir.path().join("nowhere")]).contains("is this a sweep's output directory?"));
}

#[test]
fn a_run_that_fails_is_reported_and_the_others_complete() {
    let dir = tempfile::tempdir().unwrap();
    let root = repo();
    // The 32-bit table cannot map the 64-bit trace's addresses.
    let text = format!(
        "configs = [\"{c}/x86-32-4m.toml\", \"{c}/skylake.toml\"]\ntraces = [\"{t}/python-dict.lackey.gz\"]\n",
        c = root.join("configs").display(),
        t = root.join("traces").display()
    );
    let path = dir.path().join("mixed.toml");
    std::fs::write(&path, text).unwrap();
    let plan = plan::load(&path).unwrap();
    let out = dir.path().join("out");
    let outcome = sweep::execute(&plan, &options(&out, 2, None)).unwrap();
    assert_eq!(outcome.failures.len(), 1);
    assert!(outcome.failures[0].starts_with("x86-32-4m on python-dict: "), "{}", outcome.failures[0]);
    assert!(outcome.failures[0].contains("reference "), "{}", outcome.failures[0]);
    assert_eq!(outcome.rows.len(), 1);
    assert!(!sweep::run_dir(&out, "x86-32-4m", "python-dict").join("summary.json").exists());
}

#[test]
fn one_pass_sweeps_write_what_separate_runs_write() {
    let dir = tempfile::tempdir().unwrap();
    let root = repo();
    let text = format!(
        "name = \"ways\"\nconfig = \"{c}/skylake.toml\"\n\
         traces = [\"{t}/randaccess.lackey.zst\", \"{t}/gzip.lackey.xz\"]\n\
         [set]\n\"tlb.stlb.sets\" = 128\n[axes]\n\"pages.policy\" = [\"fixed\", \"thp\"]\n\"tlb.stlb.ways\" = [1, 2, 4, 8, 12, 16]\n",
        c = root.join("configs").display(),
        t = root.join("traces").display()
    );
    let path = dir.path().join("ways.toml");
    std::fs::write(&path, text).unwrap();
    let plan = plan::load(&path).unwrap();
    assert_eq!(plan.runs[3].config.tlb["stlb"].entries, Some(8 * 128));
    let together = dir.path().join("together");
    let outcome = sweep::execute(&plan, &options(&together, 2, None)).unwrap();
    // Two groups (one per page policy) of six sizes, on each workload.
    assert_eq!(outcome.one_pass.get("stlb"), Some(&24), "{:?}", outcome.one_pass);
    let apart = dir.path().join("apart");
    let separate = Options { one_pass: false, ..options(&apart, 2, None) };
    let outcome = sweep::execute(&plan, &separate).unwrap();
    assert!(outcome.one_pass.is_empty());
    assert_same_files(&together, &apart);
}
