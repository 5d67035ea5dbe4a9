//! Invariants of the pipeline over generated traces.

use crate::common::real_trace;
use mmusim_trace::{Access, Kind};
use mmusim_translate::{Config, SimReport, Simulator};
use proptest::prelude::*;

/// References with locality: a few hot pages, some cold ones, mixed kinds
/// and sizes that sometimes cross a page boundary.
fn accesses() -> impl Strategy<Value = Vec<Access>> {
    let access =
        (0u64..48, 0u64..4096, prop::sample::select(Kind::ALL.to_vec()), prop::sample::select(vec![1u16, 4, 8, 64]))
            .prop_map(|(page, offset, kind, size)| {
                // Pages 0..32 are hot (one 2 MiB region); the rest scatter over
                // several 1 GiB regions.
                let page = if page < 32 { page } else { (page - 31) * 0x4_0123 };
                Access::new(kind, (page << 12) | offset, size)
            });
    prop::collection::vec(access, 1..600)
}

fn simulate(config: &str, accesses: &[Access]) -> SimReport {
    let mut sim = Simulator::new(&Config::from_toml(config).unwrap()).unwrap();
    sim.run(accesses).unwrap();
    sim.report()
}

const HIERARCHY: &str = r#"
seed = 9
[memory]
allocator = "shuffled"
[pages]
policy = "thp"
promote_after = 3
[tlb.l1i]
level = 1
serves = "instruction"
entries = 8
ways = 2
replacement = "tree-plru"
[tlb.l1d]
level = 1
serves = "data"
entries = 6
ways = 3
replacement = "random"
[tlb.l1d.arrays.large]
entries = 4
page_sizes = ["2MiB", "1GiB"]
[tlb.l2]
level = 2
serves = "unified"
entries = 24
ways = 4
replacement = "fifo"
[pwc]
kind = "split"
[pwc.levels.l2]
entries = 4
[pwc.levels.l3]
entries = 2
[walk]
memory = "cache"
[walk.cache]
capacity = "1KiB"
ways = 4
hit_latency = 3
miss_latency = 90
"#;

fn lru_tlb(entries: usize, ways: usize) -> String {
    format!("[tlb.l1d]\nlevel = 1\nserves = \"unified\"\nentries = {entries}\nways = {ways}\n")
}

fn misses(report: &SimReport, name: &str) -> u64 {
    report.tlbs.iter().find(|t| t.name == name).unwrap().counters.total_misses()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_miss_is_accounted_for_down_the_hierarchy(trace in accesses()) {
        let report = simulate(HIERARCHY, &trace);
        for tlb in &report.tlbs {
            let c = &tlb.counters;
            prop_assert!(c.total_hits() <= c.total_lookups());
            // Each miss was attributed to the size it resolved to.
            prop_assert_eq!(c.misses_by_size.iter().sum::<u64>(), c.total_misses(), "{}", tlb.name);
            prop_assert_eq!(c.hits_by_size.iter().sum::<u64>(), c.total_hits(), "{}", tlb.name);
        }
        // L2 sees exactly the L1 misses, and only its misses walk.
        prop_assert_eq!(report.tlbs[2].counters.total_lookups(), misses(&report, "l1d") + misses(&report, "l1i"));
        prop_assert_eq!(report.walks.walks, misses(&report, "l2"));
        prop_assert_eq!(report.run.walks.total(), report.walks.walks);
        // Every page lookup starts at an L1.
        prop_assert_eq!(
            report.page_lookups().total(),
            report.tlbs[0].counters.total_lookups() + report.tlbs[1].counters.total_lookups()
        );
        prop_assert_eq!(report.references(), trace.len() as u64);
        // A walk reads at least the leaf and at most one entry per level.
        prop_assert!(report.walks.references >= report.walks.walks);
        prop_assert!(report.walks.references <= 4 * report.walks.walks);
        prop_assert_eq!(report.walks.line_cache.hits + report.walks.line_cache.misses, report.walks.references);
    }

    #[test]
    fn more_lru_ways_at_fixed_sets_never_add_misses(trace in accesses(), sets in 1usize..6, ways in 1usize..6) {
        let fewer = simulate(&lru_tlb(sets * ways, ways), &trace);
        let more = simulate(&lru_tlb(sets * (ways + 1), ways + 1), &trace);
        prop_assert!(misses(&more, "l1d") <= misses(&fewer, "l1d"));
    }

    #[test]
    fn a_larger_fully_associative_lru_tlb_never_misses_more(trace in accesses(), entries in 1usize..40) {
        let small = simulate(&lru_tlb(entries, entries), &trace);
        let large = simulate(&lru_tlb(entries + 1, entries + 1), &trace);
        prop_assert!(misses(&large, "l1d") <= misses(&small, "l1d"));
    }

    #[test]
    fn results_do_not_depend_on_how_the_trace_is_chunked(trace in accesses(), cuts in prop::collection::vec(0usize..600, 0..8)) {
        let whole = simulate(HIERARCHY, &trace);
        let mut sim = Simulator::new(&Config::from_toml(HIERARCHY).unwrap()).unwrap();
        let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c % (trace.len() + 1)).collect();
        bounds.push(0);
        bounds.push(trace.len());
        bounds.sort_unstable();
        for pair in bounds.windows(2) {
            sim.run(&trace[pair[0]..pair[1]]).unwrap();
        }
        prop_assert_eq!(sim.report(), whole);
    }

    #[test]
    fn the_same_seed_gives_the_same_run(trace in accesses()) {
        prop_assert_eq!(simulate(HIERARCHY, &trace), simulate(HIERARCHY, &trace));
    }
}

/// A hierarchy whose every array and cache uses `replacement`, with THP
/// pages (so the L1 data TLB guesses between arrays) and a few address
/// spaces' worth of tags.
fn with_policy(replacement: &str) -> String {
    HIERARCHY
        .replace("replacement = \"tree-plru\"", &format!("replacement = \"{replacement}\""))
        .replace("replacement = \"random\"", &format!("replacement = \"{replacement}\""))
        .replace("replacement = \"fifo\"", &format!("replacement = \"{replacement}\""))
        .replace("[tlb.l1d.arrays.large]\n", &format!("[tlb.l1d.arrays.large]\nreplacement = \"{replacement}\"\n"))
}

const POLICIES: [&str; 5] = ["lru", "tree-plru", "fifo", "random", "srrip"];

/// Every reference through the full probe, no fast path.
fn simulate_without_fast_paths(config: &str, accesses: &[Access]) -> SimReport {
    let mut sim = Simulator::new(&Config::from_toml(config).unwrap()).unwrap();
    sim.disable_fast_paths();
    for chunk in accesses.chunks(4096) {
        sim.run(chunk).unwrap();
    }
    sim.report()
}

/// The fast paths (runs of hits, hits on most recently used slots, hinted
/// slots) are devices, not models: with them off, every policy gives the
/// same report on the real traces, hit-heavy and walk-heavy.
#[test]
fn fast_paths_change_no_result_for_any_policy_on_real_traces() {
    for trace in ["sort.lackey.zst", "randaccess.lackey.zst"] {
        let accesses = real_trace(trace);
        for policy in POLICIES {
            let config = with_policy(policy);
            let mut fast = Simulator::new(&Config::from_toml(&config).unwrap()).unwrap();
            for chunk in accesses.chunks(4096) {
                fast.run(chunk).unwrap();
            }
            assert_eq!(fast.report(), simulate_without_fast_paths(&config, &accesses), "{policy} on {trace}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn fast_paths_change_no_result(trace in accesses(), policy in prop::sample::select(POLICIES.to_vec())) {
        let config = with_policy(policy);
        prop_assert_eq!(simulate(&config, &trace), simulate_without_fast_paths(&config, &trace));
    }
}

/// Hierarchies where one path has no fast path: no TLB for fetches (the
/// data-only TLB the Dinero IV comparison simulates), and an instruction
/// TLB whose policy must see every hit (SRRIP) beside an LRU data TLB.
/// Runs of hits then take the other path's references alone.
const ONE_FAST_PATH: [&str; 2] = [
    r#"
[tlb.dtlb]
level = 1
serves = "data"
entries = 64
ways = 4
"#,
    r#"
[tlb.l1i]
level = 1
serves = "instruction"
entries = 16
ways = 4
replacement = "srrip"
[tlb.l1d]
level = 1
serves = "data"
entries = 16
ways = 4
[tlb.l2]
level = 2
serves = "unified"
entries = 64
ways = 8
"#,
];

#[test]
fn fast_paths_change_no_result_when_one_path_has_none() {
    for trace in ["sort.lackey.zst", "randaccess.lackey.zst"] {
        let accesses = real_trace(trace);
        for config in ONE_FAST_PATH {
            let mut fast = Simulator::new(&Config::from_toml(config).unwrap()).unwrap();
            for chunk in accesses.chunks(4096) {
                fast.run(chunk).unwrap();
            }
            assert_eq!(fast.report(), simulate_without_fast_paths(config, &accesses), "{config} on {trace}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn fast_paths_change_no_result_when_one_path_has_none_generated(trace in accesses(), config in prop::sample::select(ONE_FAST_PATH.to_vec())) {
        prop_assert_eq!(simulate(config, &trace), simulate_without_fast_paths(config, &trace));
    }
}

/// A run of hits longer than `run_hits` takes at once (it counts each data
/// kind in a 21-bit field of one register): 2^21 + 1000 loads of one page,
/// then as many stores and modifies, count as the full probe counts them.
#[test]
fn runs_of_hits_longer_than_a_counter_field_count_exactly() {
    let config = ONE_FAST_PATH[0];
    let long = (1usize << 21) + 1000;
    let mut accesses = vec![Access::new(Kind::Store, 0x5000, 8)];
    for kind in [Kind::Load, Kind::Store, Kind::Modify] {
        accesses.extend((0..long).map(|i| Access::new(kind, 0x5000 + (i as u64 % 512) * 8, 8)));
    }
    let fast = simulate(config, &accesses);
    assert_eq!(fast, simulate_without_fast_paths(config, &accesses));
    let long = long as u64;
    assert_eq!(fast.run.references.0, [0, long, long + 1, long]);
}
