//! The `mmusim` command as a user runs it.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output};

fn mmusim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmusim")).args(args).current_dir(repo()).output().unwrap()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn trace_info_json_reports_counts_and_footprint() {
    let output = mmusim(&["trace", "info", "--json", "traces/gzip.lackey.xz", "traces/tiny/hand.din"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let infos: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let gzip = &infos[0];
    assert_eq!(gzip["format"], "lackey");
    assert_eq!(gzip["compression"], "xz");
    assert_eq!(gzip["records"], 1_966_570);
    assert_eq!(gzip["instructions"], 1_412_158);
    assert_eq!(gzip["by_kind"]["modify"], 9_656);
    assert_eq!(gzip["distinct_4k_pages"], 196);
    assert_eq!(gzip["lowest_address"], "0x108040");
    assert_eq!(infos[1]["format"], "din");
    assert_eq!(infos[1]["skipped_records"], 1);
}

#[test]
fn convert_round_trips_a_real_trace_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("sort.mmt.zst");
    let back = dir.path().join("sort.lackey");
    let output = mmusim(&["convert", "traces/sort.lackey.zst", binary.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("1598213 references, 1146632 instructions"), "{}", stdout(&output));
    let output = mmusim(&["convert", binary.to_str().unwrap(), back.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));

    // The original, decompressed, without Valgrind's own `==pid==` lines.
    let mut original = Vec::new();
    zstd::Decoder::new(std::fs::File::open(repo().join("traces/sort.lackey.zst")).unwrap())
        .unwrap()
        .read_to_end(&mut original)
        .unwrap();
    let expected: Vec<u8> =
        original.split_inclusive(|&b| b == b'\n').filter(|line| !line.starts_with(b"==")).flatten().copied().collect();
    assert_eq!(std::fs::read(&back).unwrap(), expected);
}

#[test]
fn bad_input_exits_2_naming_file_and_line_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.lackey");
    std::fs::write(&bad, "I  0400,3\n L 7ff0,8\n S 7ff8;8\n").unwrap();
    let out = dir.path().join("out.mmt");
    let output = mmusim(&["convert", bad.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.starts_with(&format!("mmusim: {}: line 3: expected ',' after the address", bad.display())),
        "{message}"
    );
    assert!(!out.exists(), "a failed conversion leaves no output");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no temporary files are left behind: {leftovers:?}");

    let output = mmusim(&["trace", "info", "--format", "dinero", "traces/tiny/hand.din"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("unknown trace format \"dinero\""), "{}", stderr(&output));
}

#[test]
fn mix_interleaves_traces_into_separate_address_spaces() {
    let dir = tempfile::tempdir().unwrap();
    let mixed = dir.path().join("mix.mmt");
    let output = mmusim(&[
        "trace",
        "mix",
        "--trace",
        "traces/tiny/hand.lackey",
        "--trace",
        "traces/tiny/hand.champsim",
        "--quantum",
        "2",
        mixed.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("19 references, 10 instructions"), "{}", stdout(&output));
    let output = mmusim(&["trace", "info", "--json", mixed.to_str().unwrap()]);
    let info: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(info[0]["address_spaces"], 2);
    // Lackey text cannot say which address space a record belongs to.
    let output = mmusim(&["convert", mixed.to_str().unwrap(), dir.path().join("m.lackey").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("Lackey text cannot express"), "{}", stderr(&output));
}

#[test]
fn workload_files_drive_mix() {
    let dir = tempfile::tempdir().unwrap();
    let workload = dir.path().join("w.toml");
    let traces = repo().join("traces/tiny");
    std::fs::write(
        &workload,
        format!(
            "quantum = 1\n[[trace]]\npath = {:?}\nvm = 1\n[[trace]]\npath = {:?}\nvm = 2\n",
            traces.join("hand.lackey"),
            traces.join("hand.mmt")
        ),
    )
    .unwrap();
    let mixed = dir.path().join("mix.mmt");
    let output = mmusim(&["trace", "mix", "--workload", workload.to_str().unwrap(), mixed.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = mmusim(&["trace", "info", "--json", mixed.to_str().unwrap()]);
    let info: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!((info[0]["address_spaces"].as_u64(), info[0]["vms"].as_u64()), (Some(2), Some(2)));
    assert_eq!(info[0]["records"], 18);
}

#[test]
fn run_prints_a_table_and_writes_summary_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = mmusim(&[
        "run",
        "--config",
        "configs/skylake.toml",
        "--trace",
        "traces/sort.lackey.zst",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = stdout(&output);
    assert!(table.starts_with("skylake (native) on traces/sort.lackey.zst"), "{table}");
    assert!(table.contains("1,598,213 references, 1,146,632 instructions"), "{table}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["tool"]["name"], "mmusim");
    assert_eq!(summary["config"]["name"], "skylake");
    assert_eq!(summary["config"]["tlb"]["stlb"]["ways"], 12, "the resolved config is recorded");
    let trace = &summary["workload"]["traces"][0];
    // xxh3-128 of the file, by Python's `xxhash` (the reference implementation).
    assert_eq!(trace["xxh3_128"], "4e49114f3b07188f04d1e60ade40aebd");
    assert_eq!(trace["records"], 1_598_213);
    let metrics = &summary["metrics"];
    assert_eq!(metrics["references"], 1_598_213);
    // Every distinct page faults once: trace info counts 222 of them.
    assert_eq!(metrics["minor_faults"], 222);
    // Same input, same config: byte-identical output.
    let again = dir.path().join("again");
    mmusim(&[
        "run",
        "--config",
        "configs/skylake.toml",
        "--trace",
        "traces/sort.lackey.zst",
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(out.join("summary.json")).unwrap(), std::fs::read(again.join("summary.json")).unwrap());
}

#[test]
fn run_with_overrides_and_a_mix() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mix");
    let output = mmusim(&[
        "run",
        "--config",
        "configs/zen2.toml",
        "--set",
        "pages.size=2MiB",
        "--set",
        "tlb.l2d.entries=1024",
        "--trace",
        "traces/sort.lackey.zst",
        "--trace",
        "traces/gzip.lackey.xz",
        "--quantum",
        "50000",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["config"]["pages"]["size"], "2MiB");
    assert_eq!(summary["config"]["tlb"]["l2d"]["entries"], 1024);
    assert_eq!(summary["metrics"]["references"], 1_598_213 + 1_966_570);
    assert_eq!(summary["metrics"]["address_spaces"], 2);
    assert_eq!(summary["workload"]["quantum"], 50000);
}

#[test]
fn config_show_prints_the_resolved_config() {
    let output = mmusim(&["config", "show", "configs/cortex-a76.toml"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    // The named format written out, and the defaults filled in.
    assert!(text.contains("index_bits = [9, 9, 9, 9]"), "{text}");
    assert!(text.contains("[tlb.l2]") && text.contains("replacement = \"lru\""), "{text}");
}

#[test]
fn bad_configs_and_unmappable_traces_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[tlb.l1d]\nlevel = 1\nserves = \"data\"\nentries = 64\nways = 5\n").unwrap();
    let output = mmusim(&["run", "--config", bad.to_str().unwrap(), "--trace", "traces/tiny/hand.lackey"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("tlb.l1d: 64 entries are not divisible into sets of 5 ways"),
        "{}",
        stderr(&output)
    );
    let output = mmusim(&[
        "run",
        "--config",
        "configs/x86-32-4m.toml",
        "--trace",
        "traces/tiny/hand.lackey",
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("reference 9: address 0x7f0012345678 lies outside the 32-bit virtual address space"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.path().join("o/summary.json").exists(), "a failed run writes no summary");
}

/// Configs that once passed validation and then panicked, aborted on an
/// allocation, or were accepted by `config show` but refused by `run`: each
/// is refused at resolution, by every command alike, naming the key.
#[test]
fn configs_beyond_the_simulators_limits_are_refused_alike_by_show_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let tlb = "[tlb.a]\nlevel = 1\nserves = \"data\"\nentries = 64\n";
    let cases = [
        // 4e9 entries at the budget's bound of 52 bytes each (see
        // budget.rs) are 208e9 bytes, 193.7 GiB, shown rounded up.
        (
            "huge-tlb.toml",
            "[tlb.a]\nlevel = 1\nserves = \"data\"\nentries = 4000000000\nways = 1\n".to_string(),
            "tlb.a.entries: 4,000,000,000 entries need about 194GiB of simulator memory; the limit is 6GiB",
        ),
        (
            "nine-levels.toml",
            format!(
                "[page_table]\nformat = \"custom\"\nindex_bits = [4, 4, 4, 4, 4, 4, 4, 4, 4]\noffset_bits = 12\nentry_bytes = 8\npage_sizes = [\"4KiB\"]\n{tlb}"
            ),
            "page_table.index_bits: 9 levels; a table has at most 8",
        ),
        (
            "overlapping-ranges.toml",
            format!(
                "[pages]\npolicy = \"ranges\"\nranges = [{{ start = 0x0, end = 0x400000, size = \"2MiB\" }}, {{ start = 0x200000, end = 0x600000, size = \"2MiB\" }}]\n{tlb}"
            ),
            "pages.ranges: ranges 0x0..0x400000 and 0x200000..0x600000 overlap",
        ),
        // Tables of 1 KiB pages and 32-byte nodes: every block the allocator
        // hands out is 1 KiB, so 1 TiB is 2^30 of them to keep in order.
        (
            "huge-pool.toml",
            format!(
                "[page_table]\nformat = \"custom\"\nindex_bits = [3, 3]\noffset_bits = 10\nentry_bytes = 4\npage_sizes = [\"1KiB\"]\n[memory]\nsize = \"1TiB\"\n{tlb}"
            ),
            "memory.size: 1TiB is 1,073,741,824 blocks of 1KiB, the largest block this table allocates; the frame allocator orders at most 16,777,216",
        ),
        (
            "huge-level.toml",
            format!(
                "[page_table]\nformat = \"custom\"\nindex_bits = [30]\noffset_bits = 12\nentry_bytes = 8\npage_sizes = [\"4KiB\"]\n{tlb}"
            ),
            "page_table.index_bits[0]: nodes of 1,073,741,824 entries need about 17GiB of simulator memory",
        ),
    ];
    for (name, text, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = dir.path().join(format!("{name}.out"));
        for args in [
            vec!["config", "show", path.to_str().unwrap()],
            vec![
                "run",
                "--config",
                path.to_str().unwrap(),
                "--trace",
                "traces/tiny/hand.lackey",
                "--out",
                out.to_str().unwrap(),
            ],
        ] {
            let output = mmusim(&args);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
            assert!(stderr(&output).contains(expected), "{args:?}: {}", stderr(&output));
        }
        assert!(!out.exists(), "a refused run writes nothing");
    }
    // The budget is overridable: 4e9 entries fit 256 GiB (config show
    // resolves without allocating), and a budget that is not a size is
    // refused.
    let huge = dir.path().join("huge-tlb.toml");
    let with_budget = |budget: &str| {
        Command::new(env!("CARGO_BIN_EXE_mmusim"))
            .args(["config", "show", huge.to_str().unwrap()])
            .env("MMUSIM_MEMORY_BUDGET", budget)
            .output()
            .unwrap()
    };
    assert!(with_budget("256GiB").status.success(), "{}", stderr(&with_budget("256GiB")));
    assert_eq!(with_budget("100GiB").status.code(), Some(2));
    assert!(stderr(&with_budget("100GiB")).contains("the limit is 100GiB (MMUSIM_MEMORY_BUDGET sets another)"));
    let output = with_budget("lots");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).starts_with("mmusim: MMUSIM_MEMORY_BUDGET: "), "{}", stderr(&output));
}

#[test]
fn virtualized_presets_report_exits_and_the_host_dimension() {
    let dir = tempfile::tempdir().unwrap();
    for (preset, mode) in [("skylake-nested", "nested"), ("skylake-shadow", "shadow")] {
        let out = dir.path().join(preset);
        let output = mmusim(&[
            "run",
            "--config",
            &format!("configs/{preset}.toml"),
            "--trace",
            "traces/sort.lackey.zst",
            "--trace",
            "traces/tiny/hand.lackey",
            "--quantum",
            "2",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
        let metrics = &summary["metrics"];
        assert_eq!(metrics["mode"], mode);
        assert_eq!(summary["config"]["host"]["page_table"]["format"], "x86-64-4level");
        // hand.lackey's five instructions run in three turns (two, two, one),
        // so the two address spaces switch six times.
        assert_eq!(metrics["context"]["context_switches"], 6);
        let exits = &metrics["vm_exits"]["by_reason"];
        if mode == "shadow" {
            assert_eq!(exits["cr3_write"], 6);
            assert_eq!(exits["page_table_update"], metrics["minor_faults"]);
            assert!(metrics["shadow_page_tables"]["tables"].as_u64().unwrap() > 0);
        } else {
            assert!(metrics["nested"]["host_references"].as_u64().unwrap() > 0);
            assert!(exits["host_page_fault"].as_u64().unwrap() > 0);
            assert!(metrics["host_page_tables"]["tables"].as_u64().unwrap() > 0);
        }
    }
}

/// The arguments of each mmusim command of the Makefile's `demo` recipe
/// (the README's main job), so this test runs exactly what a new user runs.
fn demo_commands() -> Vec<Vec<String>> {
    let makefile = std::fs::read_to_string(repo().join("Makefile")).unwrap();
    let recipe = makefile
        .lines()
        .skip_while(|line| !line.starts_with("demo:"))
        .skip(1)
        .take_while(|line| line.starts_with('\t'))
        .map(str::trim)
        .filter(|line| line.starts_with("$(MMUSIM)"))
        .collect::<Vec<_>>();
    recipe.iter().map(|line| line.split_whitespace().skip(1).map(str::to_owned).collect()).collect()
}

/// The committed figure the README shows, and the report file it is.
const README_FIGURE: (&str, &str) =
    ("docs/figures/demo-translation-cpi.svg", "001-config-translation_cycles_per_instruction.svg");

/// `args` with the value of `--out` replaced.
fn with_out(args: &[String], out: &std::path::Path) -> Vec<String> {
    let at = args.iter().position(|a| a == "--out").expect("the command names its output directory");
    let mut args = args.to_vec();
    args[at + 1] = out.display().to_string();
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn make_demo_sweeps_the_presets_over_the_bundled_traces() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let commands = demo_commands();
    assert_eq!(commands.len(), 2, "the demo recipe sweeps, then reports: {commands:?}");
    let args = with_out(&commands[0], &out);
    assert_eq!(args[0], "sweep");
    let output = mmusim(&strs(&args));
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("8 runs on 4 workloads: 32 simulated, 0 already done, 0 failed"), "{text}");
    let table = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(table.starts_with("run,config,pages.policy,workload,mode,references,instructions,"));
    assert_eq!(table.lines().count(), 1 + 32);
    let histograms = std::fs::read_to_string(out.join("histograms.csv")).unwrap();
    assert!(histograms.starts_with("run,workload,metric,value,count\n"));

    // With 4 KiB pages, every row is the golden run of its preset on its
    // trace (results/golden-baseline/, made by the library's sweep path),
    // metric by metric.
    let table = |path: PathBuf| -> (Vec<String>, Vec<Vec<String>>) {
        let mut reader = csv::Reader::from_path(path).unwrap();
        let header = reader.headers().unwrap().iter().map(str::to_owned).collect();
        (header, reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect())
    };
    let (demo_header, demo_rows) = table(out.join("metrics.csv"));
    let (golden_header, golden_rows) = table(repo().join("results/golden-baseline/golden.csv"));
    let metrics_from = |header: &[String]| header.iter().position(|h| h == "workload").unwrap() + 1;
    let mut checked = 0;
    for preset in ["skylake", "golden-cove", "zen4", "cortex-a76"] {
        for workload in ["sort", "gzip", "python-dict", "randaccess"] {
            let find = |header: &[String], rows: &[Vec<String>], run: &str| -> Vec<String> {
                let w = header.iter().position(|h| h == "workload").unwrap();
                rows.iter().find(|r| r[0] == run && r[w] == workload).unwrap().clone()
            };
            let demo = find(&demo_header, &demo_rows, &format!("{preset},pages.policy=fixed"));
            let golden = find(&golden_header, &golden_rows, preset);
            for (column, name) in golden_header.iter().enumerate().skip(metrics_from(&golden_header)) {
                // The golden table has the virtualized presets' columns too,
                // empty in native rows.
                let value = demo_header.iter().position(|h| h == name).map_or("", |at| demo[at].as_str());
                assert_eq!(value, golden[column], "{preset} on {workload}: {name}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 16);

    // Run again: everything is already there.
    let output = mmusim(&strs(&args));
    assert!(stdout(&output).contains("0 simulated, 32 already done"), "{}", stdout(&output));

    // Then the report, whose figure the README shows as committed.
    let report = &commands[1];
    assert_eq!(report[0], "report");
    let sweep_out = args[args.iter().position(|a| a == "--out").unwrap() + 1].clone();
    assert_eq!(commands[0][commands[0].iter().position(|a| a == "--out").unwrap() + 1], report[1]);
    let output = mmusim(&["report", &sweep_out]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("wrote 12 figures"), "{}", stdout(&output));
    let (committed, drawn) = README_FIGURE;
    assert!(
        std::fs::read(repo().join(committed)).unwrap() == std::fs::read(out.join("report").join(drawn)).unwrap(),
        "{committed} is not what `make demo` draws: copy results/demo/report/{drawn} over it"
    );
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(readme.contains(&format!("({committed})")), "the README shows {committed}");
}

#[test]
fn report_draws_a_run_and_refuses_what_is_not_results() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = mmusim(&[
        "run",
        "--config",
        "configs/skylake-shadow.toml",
        "--trace",
        "traces/python-dict.lackey.gz",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = mmusim(&["report", run.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    // A shadow run exits to the hypervisor: its distributions and its exits.
    assert!(stdout(&output).starts_with("wrote 2 figures, index.html and metrics-long.csv to "), "{}", stdout(&output));
    let page = std::fs::read_to_string(run.join("report/index.html")).unwrap();
    assert!(page.contains("<title>mmusim report: run skylake-shadow</title>"), "{page}");
    assert!(page.contains("Walk cost distributions of skylake-shadow") && page.contains("VM exits by reason"));

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for (path, says) in [(empty.clone(), "holds neither sweep.json"), (dir.path().join("absent"), "not a directory")] {
        let output = mmusim(&["report", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        let error = stderr(&output);
        assert!(error.contains(path.to_str().unwrap()) && error.contains(says), "{error}");
    }
    assert!(!empty.join("report").exists());
}

#[test]
fn sweep_dry_run_lists_the_plan_and_bad_specs_exit_2() {
    let output = mmusim(&["sweep", "--dry-run", "configs/sweeps/modes.toml"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("skylake-nested,mode=native (native mode)"), "{text}");
    assert!(text.contains("skylake-nested,mode=shadow (shadow mode)"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bad.toml");
    let configs = repo().join("configs");
    std::fs::write(
        &spec,
        format!("config = \"{}/skylake.toml\"\ntraces = [\"x\"]\n[axes]\ntlb.l2.entires = [1]\n", configs.display()),
    )
    .unwrap();
    let out = dir.path().join("out");
    let output = mmusim(&["sweep", spec.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("tlb.l2.entires: unknown field `entires`"), "{}", stderr(&output));
    assert!(!out.exists(), "nothing runs, nothing is written");
}

#[test]
fn slurm_array_variables_pick_the_shard() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shard");
    let output = Command::new(env!("CARGO_BIN_EXE_mmusim"))
        .args(["sweep", "configs/sweeps/modes.toml", "--out", out.to_str().unwrap()])
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "2")
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("(shard 1/2)"), "{}", stdout(&output));
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(plan["shard"]["runs"], serde_json::json!(["skylake-nested,mode=nested"]));
}

/// A sweep spec of sixteen runs over two real traces, in `dir`.
fn long_sweep_spec(dir: &std::path::Path) -> PathBuf {
    let spec = dir.join("long.toml");
    let (configs, traces) = (repo().join("configs"), repo().join("traces"));
    std::fs::write(
        &spec,
        format!(
            "config = \"{}/skylake.toml\"\ntraces = [\"{t}/python-dict.lackey.gz\", \"{t}/sort.lackey.zst\"]\n\
             [axes]\ntlb.stlb.entries = {{ from = 384, to = 3072, factor = 2 }}\npages.policy = [\"fixed\", \"thp\"]\n",
            configs.display(),
            t = traces.display()
        ),
    )
    .unwrap();
    spec
}

/// Every file under `root`, by relative path, with its bytes, sorted.
fn listing(root: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = files_under(root)
        .into_iter()
        .map(|path| (path.strip_prefix(root).unwrap().to_owned(), std::fs::read(&path).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn a_sweep_killed_at_ten_moments_resumes_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = long_sweep_spec(dir.path());
    let clean = dir.path().join("clean");
    let started = std::time::Instant::now();
    let output = mmusim(&["sweep", spec.to_str().unwrap(), "--threads", "1", "--out", clean.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let whole = started.elapsed();

    // SIGKILL at ten moments spread over a sweep's length (a seeded
    // sequence, so a failure can be replayed), each time resuming what the
    // last one left.
    let killed = dir.path().join("killed");
    let mut state: u64 = 2026;
    let mut kills = 0;
    for _ in 0..10 {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let moment = whole.mul_f64((state >> 11) as f64 / (1u64 << 53) as f64);
        let mut child = Command::new(env!("CARGO_BIN_EXE_mmusim"))
            .args(["sweep", spec.to_str().unwrap(), "--threads", "1", "--quiet", "--out", killed.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(moment);
        child.kill().unwrap();
        let status = child.wait().unwrap();
        kills += usize::from(!status.success());
    }
    assert!(kills > 0, "no sweep was killed before it finished: the moments are too late");
    // What a kill in the middle of a write leaves, wherever it happened to
    // land this time: a temporary file at the top and in a run directory.
    std::fs::create_dir_all(killed.join("runs/x")).unwrap();
    std::fs::write(killed.join(".mmusim-left.partial"), "half").unwrap();
    std::fs::write(killed.join("runs/x/.mmusim-left.partial"), "half").unwrap();
    let output = mmusim(&["sweep", spec.to_str().unwrap(), "--threads", "1", "--out", killed.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("8 runs on 2 workloads: "), "{}", stdout(&output));
    let (a, b) = (listing(&clean), listing(&killed));
    let names = |l: &[(PathBuf, Vec<u8>)]| l.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "the same files, no temporary ones left");
    assert!(a == b, "the resumed sweep differs from the clean one");
}

#[test]
fn a_second_sweep_into_a_busy_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = long_sweep_spec(dir.path());
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // The test holds the directory's lock, as a running sweep does.
    let lock = std::fs::File::create(out.join(".mmusim-sweep.lock")).unwrap();
    lock.try_lock().unwrap();
    let output = mmusim(&["sweep", spec.to_str().unwrap(), "--quiet", "--out", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("another mmusim sweep or merge is writing there now"), "{}", stderr(&output));
    assert!(!out.join("sweep.json").exists(), "nothing written into a busy directory");
    let output = mmusim(&["merge", out.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    drop(lock);

    // Two real sweeps at once: the second is refused, the first finishes.
    let mut first = Command::new(env!("CARGO_BIN_EXE_mmusim"))
        .args(["sweep", spec.to_str().unwrap(), "--threads", "1", "--quiet", "--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !out.join("sweep.json").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let second = mmusim(&["sweep", spec.to_str().unwrap(), "--quiet", "--out", out.to_str().unwrap()]);
    let first = first.wait().unwrap();
    assert!(first.success());
    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    assert!(stderr(&second).contains("writing there now"), "{}", stderr(&second));
    // ... and once it is done, the directory is free.
    let output = mmusim(&["sweep", spec.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(stdout(&output).contains("0 simulated, 16 already done"), "{}", stdout(&output));
}

#[test]
fn outputs_that_cannot_be_written_exit_2_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let run = |out: &std::path::Path| {
        mmusim(&[
            "run",
            "--config",
            "configs/skylake.toml",
            "--trace",
            "traces/tiny/hand.lackey",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    for out in [file.clone(), file.join("below")] {
        let output = run(&out);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(stderr(&output).contains(file.to_str().unwrap()), "{}", stderr(&output));
    }
    let output = mmusim(&["sweep", "configs/sweeps/modes.toml", "--quiet", "--out", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory", "the file is left alone");

    let read_only = dir.path().join("read-only");
    std::fs::create_dir(&read_only).unwrap();
    let mut permissions = std::fs::metadata(&read_only).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o555);
    std::fs::set_permissions(&read_only, permissions).unwrap();
    // Root writes into a read-only directory anyway: then mmusim runs as
    // nobody (setpriv, from util-linux), who cannot.
    let privileged = std::fs::write(read_only.join("probe"), "x").is_ok();
    let output = if privileged {
        std::fs::remove_file(read_only.join("probe")).unwrap();
        let mut open = std::fs::metadata(dir.path()).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut open, 0o755);
        std::fs::set_permissions(dir.path(), open).unwrap();
        let nobody = |args: &[&std::ffi::OsStr]| {
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_mmusim")])
                .args(args)
                .current_dir(repo())
                .output()
        };
        // Nobody must be able to run mmusim and read the checkout (not so
        // in a checkout under a private home directory).
        let can = nobody(&["config".as_ref(), "show".as_ref(), "configs/skylake.toml".as_ref()]);
        if !can.as_ref().is_ok_and(|output| output.status.success()) {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "SKIPPED the read-only directory case: root writes anyway, and nobody cannot run mmusim here"
                );
            }
            return;
        }
        let args = ["run", "--config", "configs/skylake.toml", "--trace", "traces/tiny/hand.lackey", "--out"];
        let mut args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        args.push(read_only.as_os_str());
        nobody(&args).unwrap()
    } else {
        run(&read_only)
    };
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains(read_only.to_str().unwrap()), "{}", stderr(&output));
    assert_eq!(std::fs::read_dir(&read_only).unwrap().count(), 0, "no partial file");
}

#[test]
fn check_exit_codes_tolerances_and_bless() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    let output = mmusim(&["sweep", "configs/sweeps/modes.toml", "--quiet", "--out", base.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();

    // The same results hold.
    let output = mmusim(&["check", &path(&base), &path(&base.join("metrics.csv"))]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("0 regressed"), "{}", stdout(&output));

    // One walk more in one row is a regression, exactly.
    let table = std::fs::read_to_string(base.join("metrics.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(table.as_bytes());
    let header = reader.headers().unwrap().clone();
    let column = header.iter().position(|h| h == "walks.walks").unwrap();
    let mut rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let walks: u64 = rows[1][column].parse().unwrap();
    let mut changed: Vec<String> = rows[1].iter().map(str::to_owned).collect();
    changed[column] = (walks + 1).to_string();
    rows[1] = csv::StringRecord::from(changed);
    let current = dir.path().join("current.csv");
    let mut writer = csv::Writer::from_path(&current).unwrap();
    writer.write_record(&header).unwrap();
    for row in &rows {
        writer.write_record(row).unwrap();
    }
    writer.flush().unwrap();
    let report = dir.path().join("diff.json");
    let output = mmusim(&["check", &path(&base), &path(&current), "--json", &path(&report)]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let text = stdout(&output);
    assert!(text.contains("1 regressed") && text.contains("walks.walks"), "{text}");
    let diff: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let regressed: Vec<&serde_json::Value> =
        diff["findings"].as_array().unwrap().iter().filter(|f| f["status"] == "regressed").collect();
    assert_eq!(regressed.len(), 1);
    assert_eq!(regressed[0]["metric"], "walks.walks");
    assert_eq!(regressed[0]["change"], 1.0);

    // A tolerance that allows it; then one that calls it an improvement
    // the other way round.
    let tolerances = dir.path().join("tolerances.toml");
    std::fs::write(&tolerances, "[metrics]\n\"walks.walks\" = { abs = 1 }\n").unwrap();
    let output = mmusim(&["check", &path(&base), &path(&current), "--tolerances", &path(&tolerances)]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    std::fs::write(&tolerances, "[metrics]\n\"walks.*\" = { direction = \"lower\" }\n").unwrap();
    let output = mmusim(&["check", &path(&current), &path(&base), "--tolerances", &path(&tolerances)]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("1 improved"), "{}", stdout(&output));

    // Bad input: 2.
    std::fs::write(&tolerances, "[metrics]\n\"walks.walks\" = { absolute = 1 }\n").unwrap();
    let output = mmusim(&["check", &path(&base), &path(&current), "--tolerances", &path(&tolerances)]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("unknown field `absolute`"), "{}", stderr(&output));
    let output = mmusim(&["check", &path(&dir.path().join("none")), &path(&current)]);
    assert_eq!(output.status.code(), Some(2));

    // Bless: the current table becomes the baseline, and then holds.
    let blessed = dir.path().join("blessed");
    let output = mmusim(&["check", &path(&blessed), &path(&current), "--bless"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(std::fs::read(blessed.join("metrics.csv")).unwrap(), std::fs::read(&current).unwrap());
    let output = mmusim(&["check", &path(&blessed), &path(&current)]);
    assert_eq!(output.status.code(), Some(0));
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn outputs_are_created_as_the_umask_says() {
    use std::os::unix::fs::PermissionsExt;
    // The umask is set by a shell around the command, as a user's would be.
    for (umask, mode) in [("022", 0o644), ("027", 0o640), ("077", 0o600)] {
        let dir = tempfile::tempdir().unwrap();
        let script = format!(
            "umask {umask} && \"$0\" run --config configs/skylake.toml --trace traces/tiny/hand.din --out \"$1/run\" \
             && \"$0\" convert traces/tiny/hand.din \"$1/hand.mmt\""
        );
        let output = Command::new("sh")
            .args(["-c", &script, env!("CARGO_BIN_EXE_mmusim"), dir.path().to_str().unwrap()])
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        let files = files_under(dir.path());
        assert!(files.len() >= 6, "run outputs and the converted trace: {files:?}");
        for file in files {
            let got = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(got, mode, "{} under umask {umask}: {got:o}", file.display());
        }
    }
}

#[test]
fn a_trace_through_a_pipe_gives_the_results_of_its_file() {
    // Standard input as `-` and as /dev/stdin, plain and compressed, against
    // the same trace read from its file: the same metrics, and provenance
    // with the same hash of the bytes.
    let dir = tempfile::tempdir().unwrap();
    let run = |trace: &str, out: &str, feed: Option<&str>| {
        let out = dir.path().join(out);
        let command = format!("\"$0\" run --config configs/skylake.toml --trace {trace} --out \"$1\"");
        // `cat |` makes standard input a pipe rather than a file.
        let script = match feed {
            Some(file) => format!("cat {file} | {command}"),
            None => command,
        };
        let output = Command::new("sh")
            .args(["-c", &script, env!("CARGO_BIN_EXE_mmusim"), out.to_str().unwrap()])
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(output.status.success(), "{script}: {}", stderr(&output));
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
        (summary["metrics"].clone(), summary["workload"]["traces"][0]["xxh3_128"].clone())
    };
    for file in
        ["traces/tiny/hand.din", "traces/sort.lackey.zst", "traces/drmemtrace/drmemtrace.allasm_x86_64.trace.zip"]
    {
        let (metrics, hash) = run(file, "file", None);
        assert!(hash.as_str().is_some_and(|h| h.len() == 32), "{hash}");
        for (trace, out) in [("-", "dash"), ("/dev/stdin", "dev")] {
            let (piped_metrics, piped_hash) = run(trace, out, Some(file));
            assert_eq!(piped_metrics, metrics, "{file} through {trace}");
            assert_eq!(piped_hash, hash, "{file} through {trace}");
        }
    }
}

#[test]
fn a_drmemtrace_directory_runs_as_one_workload_named_by_its_program() {
    let dir = tempfile::tempdir().unwrap();
    let trace = "traces/drmemtrace/drmemtrace.threadsig.x64.tracedir";
    let output =
        mmusim(&["run", "--config", "configs/skylake.toml", "--trace", trace, "--out", dir.path().to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap()).unwrap();
    let workload = &summary["workload"];
    assert_eq!(workload["name"], "threadsig");
    assert_eq!(workload["traces"][0]["format"], "drmemtrace");
    // Every fetch, load and store of the nine threads (traces/README.md).
    assert_eq!(summary["metrics"]["references"], 650_576 + 172_208 + 100_150);
    assert_eq!(summary["metrics"]["instructions"], 650_576);
    assert_eq!(summary["metrics"]["address_spaces"], 1, "threads of one process share its address space");
}

/// Valgrind, or why the test cannot run (then it must not be required).
fn valgrind_or_skip(test: &str) -> bool {
    let found = Command::new("valgrind").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("MMUSIM_REQUIRE_VALGRIND").is_none(),
            "MMUSIM_REQUIRE_VALGRIND is set but valgrind is not installed"
        );
        // A skipped test says so in the test output.
        #[allow(clippy::print_stderr)]
        {
            eprintln!("SKIPPED {test}: valgrind is not installed (apt-get install valgrind)");
        }
    }
    found
}

/// A C program that stores to, then loads from, one byte of each of its
/// first N pages of a static table, and prints what it did.
fn compile_page_toucher(dir: &std::path::Path) -> PathBuf {
    let source = dir.join("toucher.c");
    std::fs::write(
        &source,
        "#include <stdio.h>\n#include <stdlib.h>\nstatic char table[64 * 4096];\n\
         int main(int argc, char **argv) {\n  int pages = atoi(argv[1]);\n\
           for (int i = 0; i < pages; i++) table[i * 4096] = (char)i;\n  long sum = 0;\n\
           for (int i = 0; i < pages; i++) sum += table[i * 4096];\n\
           printf(\"touched %d pages, sum %ld\\n\", pages, sum);\n  return 0;\n}\n",
    )
    .unwrap();
    let program = dir.join("toucher");
    let status = Command::new("cc").args(["-O1", "-o"]).arg(&program).arg(&source).status().expect("a C compiler (cc)");
    assert!(status.success());
    program
}

#[test]
fn record_traces_a_program_into_a_file_and_simulates_one_as_it_runs() {
    if !valgrind_or_skip("record_traces_a_program_into_a_file_and_simulates_one_as_it_runs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let program = compile_page_toucher(dir.path());
    let trace = dir.path().join("toucher.lackey.zst");
    let output = mmusim(&["record", "-o", trace.to_str().unwrap(), "--", program.to_str().unwrap(), "48"]);
    assert!(output.status.success(), "{}", stderr(&output));
    // The program's own output is untouched: 0 + 1 + ... + 47 = 1128.
    assert!(stdout(&output).starts_with("touched 48 pages, sum 1128\n"), "{}", stdout(&output));
    let text = {
        let mut text = String::new();
        zstd::stream::read::Decoder::new(std::fs::File::open(&trace).unwrap())
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    };
    let header: Vec<&str> = text.lines().take_while(|l| l.starts_with("==mmusim== ")).collect();
    assert_eq!(header.len(), 3, "{header:?}");
    assert!(header[0].ends_with(&format!("-- {} 48", program.display())), "{}", header[0]);
    let version = Command::new("valgrind").arg("--version").output().unwrap();
    assert_eq!(header[1], format!("==mmusim== valgrind: {}", String::from_utf8_lossy(&version.stdout).trim()));
    assert!(header[2].starts_with("==mmusim== date: 20") && header[2].ends_with('Z'), "{}", header[2]);
    assert!(!text.contains("touched 48 pages"), "the program's output is not in the trace");
    // Stores to each of the 48 pages of the table, then loads from each:
    // at least 48 distinct pages are stored to and loaded from.
    let pages = |kind: &str| {
        text.lines()
            .filter_map(|l| l.strip_prefix(kind))
            .map(|rest| u64::from_str_radix(rest.split(',').next().unwrap(), 16).unwrap() >> 12)
            .collect::<std::collections::BTreeSet<u64>>()
            .len()
    };
    assert!(pages(" S ") >= 48 && pages(" L ") >= 48, "stores to {} pages, loads from {}", pages(" S "), pages(" L "));
    let info = mmusim(&["trace", "info", "--json", trace.to_str().unwrap()]);
    let info: serde_json::Value = serde_json::from_str(&stdout(&info)).unwrap();
    let fetches = text.lines().filter(|l| l.starts_with("I  ")).count() as u64;
    assert_eq!(info[0]["by_kind"]["fetch"], fetches, "the reader skips the header lines and reads every fetch");

    // Simulated as it runs, nothing stored.
    let out = dir.path().join("run");
    let output = mmusim(&[
        "record",
        "--run",
        "configs/skylake.toml",
        "--out",
        out.to_str().unwrap(),
        "--",
        program.to_str().unwrap(),
        "16",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).starts_with("touched 16 pages, sum 120\n"), "{}", stdout(&output));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["workload"]["name"], "toucher");
    assert!(summary["metrics"]["references"].as_u64().unwrap() > 16 * 2);
}

#[test]
fn record_fails_clearly_without_valgrind_or_without_a_program() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.lackey.zst");
    let output = Command::new(env!("CARGO_BIN_EXE_mmusim"))
        .args(["record", "-o", trace.to_str().unwrap(), "--", "/bin/true"])
        .env("MMUSIM_VALGRIND", dir.path().join("no-valgrind-here"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("apt-get install valgrind"), "{}", stderr(&output));
    assert!(!trace.exists());
    if !valgrind_or_skip("record_fails_clearly_without_valgrind_or_without_a_program") {
        return;
    }
    let missing = dir.path().join("no-such-program");
    let output = mmusim(&["record", "-o", trace.to_str().unwrap(), "--", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("recorded no references"), "{}", stderr(&output));
    assert!(!trace.exists(), "no trace file for a program that never ran");
}

#[test]
fn a_trace_truncated_while_it_is_read_is_a_clear_error_not_a_crash() {
    // A plain binary trace is memory-mapped; truncating it under the reader
    // makes the kernel raise SIGBUS at the next vanished page.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.mmt");
    {
        let file = std::fs::File::create(&path).unwrap();
        let mut writer = mmusim_trace::BinaryWriter::new(file, "test").unwrap();
        let access = |i: u64| mmusim_trace::Access::new(mmusim_trace::Kind::Load, (i * 64) % (1 << 30), 8);
        for i in 0..20_000_000u64 {
            writer.write(&access(i)).unwrap();
        }
        writer.finish().unwrap();
    }
    let child = Command::new(env!("CARGO_BIN_EXE_mmusim"))
        .args(["trace", "info", path.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(30));
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(1 << 20).unwrap();
    let output = child.wait_with_output().unwrap();
    // Exit status 2 with a message, whether the cut came while mapped pages
    // were read (SIGBUS) or before the reader opened the file (a short
    // trace); never killed by a signal, and never a success.
    assert_eq!(output.status.code(), Some(2), "{:?}: {}", output.status, stderr(&output));
    let error = stderr(&output);
    assert!(error.starts_with("mmusim: ") && (error.contains("SIGBUS") || error.contains("big.mmt")), "{error}");
}

/// A small tmpfs mounted for a test, unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` at `dir`, or says why it cannot.
    fn mount(dir: &std::path::Path, size: &str) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(dir).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
        }
        Ok(SmallDisk { dir: dir.to_owned() })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

#[test]
fn a_full_disk_is_exit_2_with_no_partial_file_and_the_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let disk = match SmallDisk::mount(&dir.path().join("disk"), "160k") {
        Ok(disk) => disk,
        Err(why) => {
            // Mounting needs privileges a test may not have.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("SKIPPED a_full_disk_is_exit_2_with_no_partial_file_and_the_rerun_resumes: cannot mount a tmpfs ({why})");
            }
            return;
        }
    };
    let spec = long_sweep_spec(dir.path());
    let out = disk.dir.join("out");
    let output =
        mmusim(&["sweep", spec.to_str().unwrap(), "--threads", "1", "--quiet", "--out", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "the sweep fit after all: {}", stdout(&output));
    assert!(stderr(&output).contains("No space left on device"), "{}", stderr(&output));
    let partial: Vec<PathBuf> = listing(&out)
        .into_iter()
        .map(|(path, _)| path)
        .filter(|path| path.to_string_lossy().contains(".partial"))
        .collect();
    assert!(partial.is_empty(), "partial files left: {partial:?}");

    // Space again (a larger disk over the same files): the rerun resumes
    // and ends with the bytes of a sweep that never ran out of space.
    let done = files_under(&out).iter().filter(|path| path.ends_with("summary.json")).count();
    let output = Command::new("mount").args(["-o", "remount,size=64m"]).arg(&disk.dir).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let output = mmusim(&["sweep", spec.to_str().unwrap(), "--threads", "1", "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains(&format!("{} simulated, {done} already done", 16 - done)), "{}", stdout(&output));
    let clean = dir.path().join("clean");
    let output =
        mmusim(&["sweep", spec.to_str().unwrap(), "--threads", "1", "--quiet", "--out", clean.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(listing(&clean) == listing(&out), "the resumed sweep differs from a clean one");
}

/// Every integer key of a resolved config, by dotted name.
fn integer_keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (key, value) in table {
        let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            toml::Value::Integer(_) => out.push(name),
            toml::Value::Table(inner) => integer_keys(inner, &name, out),
            _ => {}
        }
    }
}

#[test]
fn every_numeric_config_key_at_0_1_and_its_maximum_runs_or_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut tried = 0;
    // Finite memory's keys, which no preset sets.
    let paging = dir.path().join("paging.toml");
    std::fs::write(
        &paging,
        format!(
            "base = \"{}\"\n[pages]\npolicy = \"thp\"\nhuge_pool = 2\n[memory]\nresident = \"64MiB\"\nfragmentation = 0.5\n",
            repo().join("configs/skylake.toml").display()
        ),
    )
    .unwrap();
    let paging = paging.to_str().unwrap();
    for preset in ["configs/skylake-nested.toml", "configs/zen4-shadow.toml", "configs/cortex-a76.toml", paging] {
        let shown = mmusim(&["config", "show", preset]);
        assert!(shown.status.success(), "{}", stderr(&shown));
        let table: toml::Table = toml::from_str(&stdout(&shown)).unwrap();
        let mut keys = Vec::new();
        integer_keys(&table, "", &mut keys);
        assert!(keys.len() > 20, "{preset}: {keys:?}");
        for key in &keys {
            for value in ["0", "1", &i64::MAX.to_string()] {
                let set = format!("{key}={value}");
                let output = mmusim(&[
                    "run",
                    "--config",
                    preset,
                    "--set",
                    &set,
                    "--trace",
                    "traces/tiny/hand.lackey",
                    "--out",
                    out.to_str().unwrap(),
                ]);
                tried += 1;
                // Runs, or is refused with exit status 2 and a message that
                // names the key; never a panic (101), an abort (134) or a
                // signal.
                match output.status.code() {
                    Some(0) => {}
                    Some(2) => {
                        let error = stderr(&output);
                        let last = key.rsplit('.').next().unwrap();
                        assert!(error.starts_with("mmusim: ") && error.contains(last), "{preset} --set {set}: {error}");
                    }
                    other => panic!("{preset} --set {set}: exit {other:?}: {}", stderr(&output)),
                }
            }
        }
    }
    assert!(tried > 150, "{tried} settings tried");
}

#[test]
fn a_sweep_spec_of_a_million_runs_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("huge.toml");
    std::fs::write(
        &spec,
        format!(
            "config = \"{}\"\ntraces = [\"{}\"]\n[axes]\ntlb.l1d.entries = {{ from = 1, to = 1000, step = 1 }}\ntlb.stlb.entries = {{ from = 1, to = 1000, step = 1 }}\n",
            repo().join("configs/skylake.toml").display(),
            repo().join("traces/tiny/hand.lackey").display()
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let output = mmusim(&["sweep", spec.to_str().unwrap(), "--dry-run"]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    assert!(stderr(&output).contains("1,000,000") || stderr(&output).contains("1000000"), "{}", stderr(&output));
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "refused only after {:?}", started.elapsed());
}

#[test]
fn a_sweep_reads_standard_input_once_for_all_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let spec = |trace: &str, name: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "config = \"{}\"\ntraces = [\"{trace}\"]\n[axes]\npages.policy = [\"fixed\", \"thp\"]\n",
                repo().join("configs/skylake.toml").display()
            ),
        )
        .unwrap();
        path
    };
    let from_file = spec(&repo().join("traces/sort.lackey.zst").display().to_string(), "file.toml");
    let from_stdin = spec("-", "stdin.toml");
    let file_out = dir.path().join("file");
    let output = mmusim(&["sweep", from_file.to_str().unwrap(), "--quiet", "--out", file_out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdin_out = dir.path().join("stdin");
    let output = Command::new("sh")
        .args(["-c", "cat traces/sort.lackey.zst | \"$0\" sweep \"$1\" --quiet --out \"$2\""])
        .args([env!("CARGO_BIN_EXE_mmusim"), from_stdin.to_str().unwrap(), stdin_out.to_str().unwrap()])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    // The same numbers; only the workload's name (from the path) differs.
    let table = |dir: &std::path::Path| std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(table(&stdin_out).replace(",stdin,", ",sort,"), table(&file_out));

    let twice = dir.path().join("twice.toml");
    std::fs::write(
        &twice,
        format!(
            "config = \"{}\"\n[[workload]]\nname = \"a\"\ntrace = [{{ path = \"-\" }}]\n[[workload]]\nname = \"b\"\ntrace = [{{ path = \"-\" }}]\n",
            repo().join("configs/skylake.toml").display()
        ),
    )
    .unwrap();
    let output = mmusim(&["sweep", twice.to_str().unwrap(), "--dry-run"]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    assert!(stderr(&output).contains("can be the trace of one workload only"), "{}", stderr(&output));
}

#[test]
fn the_paging_sweep_reports_faults_that_fall_as_memory_grows() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("paging");
    let output = mmusim(&["sweep", "configs/sweeps/paging.toml", "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    // The LRU runs differ only in their limit: the runner points at the
    // curve.
    let hint = "one run with memory.curve = [\"128KiB\", \"256KiB\", \"512KiB\", \"1MiB\"] answers every limit";
    assert!(stdout(&output).contains(hint), "{}", stdout(&output));
    let table = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(table.as_bytes());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|c| c == name).unwrap_or_else(|| panic!("no {name} column"));
    let (policy, workload, majors) = (column("memory.replacement"), column("workload"), column("major_faults"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4 * 4 * 3);
    // Under LRU, per workload, in the spec's order of sizes (ascending).
    for name in ["sort", "gzip", "python-dict"] {
        let faults: Vec<u64> = rows
            .iter()
            .filter(|r| &r[workload] == name && &r[policy] == "lru")
            .map(|r| r[majors].parse().unwrap())
            .collect();
        assert_eq!(faults.len(), 4);
        assert!(faults.windows(2).all(|w| w[0] >= w[1]) && faults[0] > 0, "{name}: {faults:?}");
    }
    // One run with the curve has the LRU runs' paging metrics as columns.
    let curve_dir = dir.path().join("curve");
    let output = mmusim(&[
        "run",
        "--config",
        "configs/skylake.toml",
        "--set",
        "memory.curve=[\"1MiB\", \"128KiB\", \"256KiB\", \"512KiB\"]",
        "--trace",
        "traces/gzip.lackey.xz",
        "--out",
        curve_dir.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("memory curve (LRU), major faults by resident limit: 128KiB "),
        "{}",
        stdout(&output)
    );
    let curve = std::fs::read_to_string(curve_dir.join("metrics.csv")).unwrap();
    let mut curve = csv::Reader::from_reader(curve.as_bytes());
    let curve_header = curve.headers().unwrap().clone();
    let curve_row = curve.records().next().unwrap().unwrap();
    let (limit, mut compared) = (column("memory.resident"), 0);
    for row in rows.iter().filter(|r| &r[workload] == "gzip" && &r[policy] == "lru") {
        for metric in ["major_faults", "evictions", "swap_outs", "invalidations", "resident_peak", "paging_cycles"] {
            let name = format!("memory_curve.{}.{metric}", &row[limit]);
            let at = curve_header.iter().position(|c| c == name).unwrap_or_else(|| panic!("no {name}"));
            assert_eq!(&curve_row[at], &row[column(metric)], "{name}");
            compared += 1;
        }
    }
    assert_eq!(compared, 4 * 6);
    // Under shadow paging, every invalidation is a trapped guest write.
    let shadow = dir.path().join("shadow");
    let output = mmusim(&[
        "run",
        "--config",
        "configs/skylake-shadow.toml",
        "--set",
        "memory.resident=512KiB",
        "--trace",
        "traces/sort.lackey.zst",
        "--out",
        shadow.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shadow.join("summary.json")).unwrap()).unwrap();
    let metrics = &summary["metrics"];
    let trapped = metrics["vm_exits"]["by_reason"]["guest_paging"].as_u64().unwrap();
    assert!(trapped > 0 && trapped == metrics["invalidations"].as_u64().unwrap(), "{metrics}");
    let said = format!("paging: {} major faults, ", metrics["major_faults"]);
    assert!(stdout(&output).contains(&said), "{}", stdout(&output));
    // A limit's settings without a limit are refused, naming the key.
    let output = mmusim(&[
        "run",
        "--config",
        "configs/skylake.toml",
        "--set",
        "memory.replacement=lru",
        "--trace",
        "traces/tiny/hand.lackey",
        "--out",
        dir.path().join("refused").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("memory.replacement: applies only with a resident limit"), "{}", stderr(&output));
}

#[test]
fn the_overcommit_sweep_swaps_less_as_the_host_has_more() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("overcommit");
    let output = mmusim(&["sweep", "configs/sweeps/overcommit.toml", "--quiet", "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(table.as_bytes());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|c| c == name).unwrap_or_else(|| panic!("no {name} column"));
    let (policy, majors, peak, balloon, limit, sharing) = (
        column("host.memory.replacement"),
        column("host_major_faults"),
        column("host_resident_peak"),
        column("balloon_pages"),
        column("host.memory.resident"),
        column("host.share_zero_pages"),
    );
    let (saved, cow, cow_exits) =
        (column("host_frames_saved"), column("host_cow_faults"), column("vm_exits.by_reason.cow_fault"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4 * 4 * 2 * 2);
    let row = |name: &str, pages: &str, shares: &str, size: &str| {
        let found = rows
            .iter()
            .find(|r| &r[policy] == name && &r[balloon] == pages && &r[sharing] == shares && &r[limit] == size);
        found.unwrap_or_else(|| panic!("no row {name} {pages} {shares} {size}"))
    };
    // Host major faults at 512 KiB, 1 MiB, 1.5 MiB and 2 MiB.
    let host_faults = |name: &str, pages: &str, shares: &str| -> Vec<u64> {
        ["512KiB", "1MiB", "1536KiB", "2MiB"]
            .iter()
            .map(|size| row(name, pages, shares, size)[majors].parse().unwrap())
            .collect()
    };
    // Exact LRU, the yardstick, takes the fewest host swap-ins of the four
    // policies at every limit on these programs.
    let lru = host_faults("lru", "0", "false");
    for name in ["clock", "fifo", "random"] {
        let alone = host_faults(name, "0", "false");
        assert!(lru.iter().zip(&alone).all(|(l, a)| l <= a), "lru {lru:?} vs {name} {alone:?}");
    }
    for name in ["clock", "fifo", "random", "lru"] {
        // Host swapping alone: fewer swap-ins as the host has more.
        let alone = host_faults(name, "0", "false");
        assert!(alone[0] > alone[1] && alone[1] > alone[2] && alone[2] > 0, "{name}: {alone:?}");
        assert_eq!(alone[3], 0, "{name}: 2 MiB holds both VMs");
        // Balloons of 144 pages each leave the guests 448 KiB: from 1 MiB
        // on the host swaps nothing (the guests page by their own clock).
        let ballooned = host_faults(name, "288", "false");
        assert_eq!(ballooned[1..], [0, 0, 0], "{name}");
        assert!(ballooned[1] < alone[1], "{name}: ballooning takes fewer host swap-ins");
        // Sharing the pages read but never written gives the host room:
        // fewer swap-ins at every limit, none from 1.5 MiB on.
        let shared = host_faults(name, "0", "true");
        assert!(shared[0] < alone[0] && shared[1] < alone[1], "{name}: {shared:?} vs {alone:?}");
        assert_eq!(shared[2..], [0, 0], "{name}");
        for size in ["512KiB", "2MiB"] {
            let r = row(name, "0", "true", size);
            assert!(r[saved].parse::<u64>().unwrap() > 0, "{name} {size}: frames saved");
            assert_eq!(r[cow], r[cow_exits], "{name} {size}: each copy-on-write fault is an exit");
            assert_eq!(&row(name, "0", "false", size)[saved], "", "{name} {size}: no sharing, no column value");
        }
    }
    // The same sweep on one thread: the same bytes.
    let one = dir.path().join("one-thread");
    let output = mmusim(&[
        "sweep",
        "configs/sweeps/overcommit.toml",
        "--quiet",
        "--threads",
        "1",
        "--out",
        one.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(one.join("metrics.csv")).unwrap(), table, "determinism across thread counts");
    let peaks: Vec<u64> = rows.iter().map(|r| r[peak].parse().unwrap()).collect();
    assert!(peaks.iter().all(|&p| p <= 512), "{peaks:?}");
    // A run says what the host's paging did.
    let run = dir.path().join("run");
    let output = mmusim(&[
        "run",
        "--config",
        "configs/skylake-nested.toml",
        "--set",
        "host.memory.resident=1MiB",
        "--workload",
        "configs/workloads/sort-gzip.toml",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let said = format!("host paging: {} major faults (", summary["metrics"]["host_major_faults"]);
    assert!(stdout(&output).contains(&said), "{}", stdout(&output));
}
