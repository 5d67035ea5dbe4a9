//! One pass for many sizes of one TLB (stack distances) gives every size
//! exactly what a separate run of that size gives: every counter, every
//! distribution, on the committed real traces, in every mode, with context
//! switches flushing or tagged, with THP promotions.

use std::path::{Path, PathBuf};

use mmusim_report::config_file;
use mmusim_trace::{Batch, BatchSource, TraceSpec, Workload};
use mmusim_translate::{Config, Simulator};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn trace(name: &str) -> TraceSpec {
    TraceSpec::new(repo().join("traces").join(name))
}

/// A preset with overrides, at each of the swept TLB's (entries, ways).
fn configs(preset: &str, overrides: &[(&str, &str)], tlb: &str, sizes: &[(u32, Option<u32>)]) -> Vec<Config> {
    sizes
        .iter()
        .map(|&(entries, ways)| {
            let mut set: Vec<(String, String)> =
                overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            set.push((format!("tlb.{tlb}.entries"), entries.to_string()));
            if let Some(ways) = ways {
                set.push((format!("tlb.{tlb}.ways"), ways.to_string()));
            }
            let path = if preset.ends_with(".toml") {
                PathBuf::from(preset)
            } else {
                repo().join(format!("configs/{preset}.toml"))
            };
            config_file::load(&path, &set).unwrap()
        })
        .collect()
}

/// Runs `workload` through one simulator per config and through one
/// simulator with a lane per config, and compares every lane with its
/// separate run.
fn check(configs: &[Config], tlb: &str, workload: &Workload) {
    let mut separate: Vec<Simulator> = configs.iter().map(|c| Simulator::new(c).unwrap()).collect();
    let mut lanes = Simulator::with_lanes(configs, tlb).unwrap();
    let mut mix = workload.open().unwrap();
    let mut batch = Batch::new();
    while mix.next_batch(&mut batch).unwrap() {
        for sim in &mut separate {
            sim.run(&batch).unwrap();
        }
        lanes.run(&batch).unwrap();
    }
    let mut differing = Vec::new();
    for (lane, sim) in separate.iter().enumerate() {
        let expected = sim.report();
        assert!(expected.walks.walks > 0, "the trace exercises walks");
        if lanes.lane_report(lane) != expected {
            let got = format!("{:#?}", lanes.lane_report(lane));
            let want = format!("{expected:#?}");
            let line = got.lines().zip(want.lines()).position(|(a, b)| a != b).unwrap_or(0);
            differing.push(format!(
                "lane {lane} ({} entries) differs from its own run at line {line}: got {:?}, want {:?}",
                configs[lane].tlb[tlb].entries.unwrap(),
                got.lines().nth(line),
                want.lines().nth(line)
            ));
        }
        assert!(lanes.lane_histograms(lane) == sim.histograms(), "lane {lane}: walk-cost distributions");
        assert_eq!(lanes.lane_config(lane), sim.config());
    }
    assert!(differing.is_empty(), "lanes differing from their own runs:\n{}", differing.join("\n"));
}

fn single(name: &str) -> Workload {
    Workload::new(vec![trace(name)], 1)
}

/// Two traces in two VMs, switching every 20,000 instructions.
fn two_vms() -> Workload {
    let mut specs = vec![trace("sort.lackey.zst"), trace("gzip.lackey.xz")];
    specs[0].vm = Some(0);
    specs[1].vm = Some(1);
    Workload::new(specs, 20_000)
}

/// Three processes in one VM.
fn three_processes() -> Workload {
    Workload::new(
        vec![trace("sort.lackey.zst"), trace("python-dict.lackey.gz"), trace("randaccess.lackey.zst")],
        20_000,
    )
}

const STLB_WAYS: [(u32, Option<u32>); 6] =
    [(128, Some(1)), (256, Some(2)), (512, Some(4)), (1024, Some(8)), (1536, Some(12)), (2048, Some(16))];

#[test]
fn skylake_stlb_ways_on_each_real_trace() {
    let configs = configs("skylake", &[], "stlb", &STLB_WAYS);
    for name in ["sort.lackey.zst", "python-dict.lackey.gz", "randaccess.lackey.zst"] {
        check(&configs, "stlb", &single(name));
    }
}

#[test]
fn skylake_stlb_with_huge_pages_and_promotions() {
    // THP at first touch: 2 MiB pages in the main array beside 4 KiB ones.
    check(
        &configs("skylake", &[("pages.policy", "thp")], "stlb", &STLB_WAYS),
        "stlb",
        &single("randaccess.lackey.zst"),
    );
    // Promotion after 8 small pages: invalidations leave holes.
    let promoting = configs("skylake", &[("pages.policy", "thp"), ("pages.promote_after", "8")], "stlb", &STLB_WAYS);
    check(&promoting, "stlb", &single("randaccess.lackey.zst"));
}

#[test]
fn context_switches_flushing_or_recycling_ids() {
    let flush = configs("skylake", &[("context.switch", "flush")], "stlb", &STLB_WAYS);
    check(&flush, "stlb", &three_processes());
    let recycling = configs("skylake", &[("context.ids", "2")], "stlb", &STLB_WAYS);
    check(&recycling, "stlb", &three_processes());
}

#[test]
fn nested_and_shadow_paging() {
    check(&configs("skylake-nested", &[], "stlb", &STLB_WAYS), "stlb", &two_vms());
    check(&configs("skylake-shadow", &[], "stlb", &STLB_WAYS), "stlb", &three_processes());
    let untagged = configs(
        "skylake-nested",
        &[("context.vm_tags", "false"), ("exits.timer_interval", "50000")],
        "stlb",
        &STLB_WAYS,
    );
    check(&untagged, "stlb", &two_vms());
}

#[test]
fn zen4_data_l2_ways() {
    let sizes = [(384, Some(3)), (768, Some(6)), (1536, Some(12)), (3072, Some(24)), (6144, Some(48))];
    check(&configs("zen4", &[], "l2d", &sizes), "l2d", &single("gzip.lackey.xz"));
}

#[test]
fn a_fully_associative_single_level_tlb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fa.toml");
    std::fs::write(
        &path,
        "name = \"fa\"\n[tlb.itlb]\nlevel = 1\nserves = \"instruction\"\nentries = 32\nways = 4\n\
         [tlb.dtlb]\nlevel = 1\nserves = \"data\"\nentries = 64\n[pwc]\nkind = \"unified\"\nentries = 16\n",
    )
    .unwrap();
    let sizes: Vec<(u32, Option<u32>)> = [4, 8, 16, 32, 64, 128, 512].iter().map(|&e| (e, None)).collect();
    let configs = configs(path.to_str().unwrap(), &[], "dtlb", &sizes);
    check(&configs, "dtlb", &single("python-dict.lackey.gz"));
    check(&configs, "dtlb", &three_processes());
}

#[test]
fn configs_that_differ_elsewhere_are_refused() {
    let mut configs = configs("skylake", &[], "stlb", &STLB_WAYS[..2]);
    let err = Simulator::with_lanes(&configs, "l1d").unwrap_err().to_string();
    assert!(err.contains("differ in more than tlb.l1d"), "{err}");
    let sets = self::configs("skylake", &[], "stlb", &[(1536, Some(12)), (1536, Some(6))]);
    assert!(Simulator::with_lanes(&sets, "stlb").unwrap_err().to_string().contains("sets"));
    assert!(Simulator::with_lanes(&configs[..1], "stlb").is_err());
    configs[1].tlb.get_mut("stlb").unwrap().replacement = Some(mmusim_translate::config::Replacement::TreePlru);
    assert!(Simulator::with_lanes(&configs, "stlb").unwrap_err().to_string().contains("differ"));
    let plru = self::configs("golden-cove", &[], "stlb", &[(1024, Some(8)), (2048, Some(16))]);
    assert!(Simulator::with_lanes(&plru, "stlb").unwrap_err().to_string().contains("LRU"));
    // A host limit pages by lane (its evictions flush a VM's translations).
    let host_limit = self::configs(
        "skylake-nested",
        &[("host.memory.resident", "\"1MiB\"")],
        "stlb",
        &[(128, Some(4)), (256, Some(8))],
    );
    assert!(Simulator::with_lanes(&host_limit, "stlb").unwrap_err().to_string().contains("host.memory.resident"));
    let upper = self::configs("skylake", &[], "l1d", &[(32, Some(4)), (64, Some(4))]);
    assert!(Simulator::with_lanes(&upper, "l1d").unwrap_err().to_string().contains("sets"));
    let upper = self::configs("skylake", &[], "l1d", &[(64, Some(4)), (128, Some(8))]);
    assert!(Simulator::with_lanes(&upper, "l1d").unwrap_err().to_string().contains("last level"));
}
