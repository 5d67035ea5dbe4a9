//! Paging under a resident limit (`memory.resident`): hand-derived
//! scenarios per policy, reference by reference; LRU against a second,
//! deliberately simple implementation on real traces; and what a limit
//! must not change.

use std::collections::HashSet;

use mmusim_trace::{Access, Kind};
use mmusim_translate::config::Mode;
use mmusim_translate::{Config, SimReport, Simulator};

use crate::common::{load, machine, real_trace, run};

fn store(addr: u64) -> Access {
    Access::new(Kind::Store, addr, 8)
}

/// A native machine with one fully associative 64-entry data TLB and a
/// limit of three 4 KiB pages.
fn three_frames(replacement: &str, extra: &str) -> Simulator {
    machine(&format!(
        "[tlb.d]\nlevel = 1\nserves = \"data\"\nentries = 64\n\
         [memory]\nresident = \"12KiB\"\nreplacement = \"{replacement}\"\n{extra}"
    ))
}

/// Pages 1, 2 (stored), 3, 1, 4, 2, 1, 3.
fn scenario() -> Vec<Access> {
    let page = |n: u64| n << 12;
    vec![
        load(page(1)),
        store(page(2)),
        load(page(3)),
        load(page(1)),
        load(page(4)),
        load(page(2)),
        load(page(1)),
        load(page(3)),
    ]
}

struct Counts {
    minor: u64,
    major: u64,
    evictions: u64,
    swap_outs: u64,
    invalidations: u64,
    cleared: u64,
    walks: u64,
}

fn counts(report: &SimReport) -> Counts {
    let paging = report.paging.as_ref().expect("a limit is set");
    Counts {
        minor: report.faults,
        major: report.major_faults,
        evictions: paging.evictions,
        swap_outs: paging.swap_outs,
        invalidations: paging.invalidations,
        cleared: paging.accessed_bits_cleared,
        walks: report.walks.walks,
    }
}

fn check(report: &SimReport, expected: [u64; 7]) {
    let c = counts(report);
    let got = [c.minor, c.major, c.evictions, c.swap_outs, c.invalidations, c.cleared, c.walks];
    assert_eq!(got, expected, "[minor, major, evictions, swap-outs, invalidations, bits cleared, walks]");
}

#[test]
fn lru_by_hand() {
    // Recency after 1 2 3 1: 2 3 1. Page 4 evicts 2 (stored: a swap-out);
    // 2 comes back (major, its TLB entry went with it) evicting 3; 1 is a
    // TLB hit; 3 comes back (major) evicting 4. Walks: 1 2 3 4 2 3.
    let report = run(&mut three_frames("lru", ""), &scenario());
    check(&report, [4, 2, 3, 1, 3, 0, 6]);
    assert_eq!(report.tlbs[0].counters.invalidated, 3, "each victim's TLB entry");
}

#[test]
fn fifo_by_hand() {
    // Page 4 evicts 1, the oldest; 2 is resident and a TLB hit; 1 comes
    // back (major) evicting 2 (a swap-out); 3 is a hit. Walks: 1 2 3 4 1.
    check(&run(&mut three_frames("fifo", ""), &scenario()), [4, 1, 2, 1, 2, 0, 5]);
}

#[test]
fn clock_by_hand_without_and_with_flushes() {
    // Walks set the bits of 1, 2, 3. Page 4: the hand clears 1, 2, 3,
    // passes 4 (being admitted) and evicts 1. 2 hits its TLB entry, which
    // clearing did not remove, so its bit stays clear. 1 comes back
    // (major) and the hand evicts 2 (a swap-out). 3 is a TLB hit.
    let report = run(&mut three_frames("clock", ""), &scenario());
    check(&report, [4, 1, 2, 1, 2, 3, 5]);
    let paging = report.paging.unwrap();
    assert_eq!((paging.evictions_unreferenced, paging.evictions_second_chance_spent), (0, 2));

    // Clearing also invalidates: 2 now misses and its walk sets the bit,
    // so 1's return clears 2 and evicts 3; 3's return clears 4 and 1 and
    // evicts 2 (a swap-out). Walks: 1 2 3 4 2 1 3.
    let report = run(&mut three_frames("clock", "clock_clear_flushes = true\n"), &scenario());
    check(&report, [4, 2, 3, 1, 9, 6, 7]);
}

#[test]
fn random_keeps_the_books_balanced_and_follows_the_seed() {
    let trace = real_trace("sort.lackey.zst");
    let limit = |seed: u64| {
        let mut config = Config::from_toml("[memory]\nresident = \"256KiB\"\nreplacement = \"random\"\n").unwrap();
        config.seed = seed;
        let report = run(&mut Simulator::new(&config).unwrap(), &trace);
        let paging = report.paging.clone().unwrap();
        // Every fault admits a page; what is resident at the end fits.
        let resident = report.faults + report.major_faults - paging.evictions;
        assert!(resident <= 64 && paging.resident_peak == 64, "{resident} resident, peak {}", paging.resident_peak);
        assert_eq!(paging.swap_ins, report.major_faults);
        (report.major_faults, paging.evictions)
    };
    assert_eq!(limit(1), limit(1));
    assert_ne!(limit(1), limit(2), "another seed draws other victims");
}

/// LRU over 4 KiB pages, as simply as it can be written: a recency list
/// searched linearly.
struct NaiveLru {
    frames: usize,
    /// Least recently used first: (page, written since it became resident).
    recency: Vec<((u16, u16, u64), bool)>,
    evicted: HashSet<(u16, u16, u64)>,
    minor: u64,
    major: u64,
    evictions: u64,
    swap_outs: u64,
}

impl NaiveLru {
    fn reference(&mut self, page: (u16, u16, u64), write: bool) {
        match self.recency.iter().position(|&(p, _)| p == page) {
            Some(at) => {
                let (_, dirty) = self.recency.remove(at);
                self.recency.push((page, dirty || write));
            }
            None => {
                if self.evicted.remove(&page) {
                    self.major += 1;
                } else {
                    self.minor += 1;
                }
                self.recency.push((page, write));
                if self.recency.len() > self.frames {
                    let (victim, dirty) = self.recency.remove(0);
                    self.evicted.insert(victim);
                    self.evictions += 1;
                    self.swap_outs += u64::from(dirty);
                }
            }
        }
    }

    fn run(frames: usize, trace: &[Access]) -> [u64; 4] {
        let mut lru = NaiveLru {
            frames,
            recency: Vec::new(),
            evicted: HashSet::new(),
            minor: 0,
            major: 0,
            evictions: 0,
            swap_outs: 0,
        };
        for access in trace {
            let last = access.addr + u64::from(access.size.max(1)) - 1;
            for page in access.addr >> 12..=last >> 12 {
                lru.reference((access.vm, access.context, page), access.kind.writes());
            }
        }
        [lru.minor, lru.major, lru.evictions, lru.swap_outs]
    }
}

/// A preset of configs/ (one without a `base`) run in `mode`, the host
/// left at its defaults.
fn preset(name: &str, mode: Mode) -> Config {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs").join(format!("{name}.toml"));
    let mut config = Config::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap();
    config.mode = mode;
    config
}

const MODES: [Mode; 3] = [Mode::Native, Mode::Nested, Mode::Shadow];

fn lru_counts(mode: Mode, frames: usize, trace: &[Access]) -> [u64; 4] {
    let mut config = preset("skylake", mode);
    config.memory.resident = Some(mmusim_translate::ByteSize(frames as u64 * 4096));
    config.memory.replacement = Some(mmusim_translate::config::PageReplacement::Lru);
    let report = run(&mut Simulator::new(&config).unwrap(), trace);
    let paging = report.paging.unwrap();
    [report.faults, report.major_faults, paging.evictions, paging.swap_outs]
}

#[test]
fn lru_agrees_with_a_naive_recency_list_on_real_traces_in_every_mode() {
    for name in ["sort.lackey.zst", "python-dict.lackey.gz"] {
        let trace = real_trace(name);
        let mut majors = Vec::new();
        for frames in [16, 48, 128, 400] {
            let expected = NaiveLru::run(frames, &trace);
            // The guest's paging sees the same references in every mode.
            for mode in MODES {
                assert_eq!(lru_counts(mode, frames, &trace), expected, "{name}, {mode:?}, {frames} frames");
            }
            majors.push(expected[1]);
        }
        assert!(majors[0] > 0, "{name}: the smallest limit pages");
        // LRU's inclusion property: more memory, never more major faults.
        assert!(majors.windows(2).all(|w| w[0] >= w[1]), "{name}: {majors:?}");
    }
}

/// A report with what only a limit adds taken out.
fn without_paging(mut report: SimReport) -> SimReport {
    assert_eq!(report.major_faults, 0);
    let paging = report.paging.take().expect("a limit is set");
    assert_eq!((paging.evictions, paging.invalidations, paging.accessed_bits_cleared), (0, 0, 0));
    report
}

#[test]
fn a_limit_the_footprint_fits_changes_nothing() {
    let trace = real_trace("sort.lackey.zst");
    for (name, mode) in MODES.map(|mode| ("skylake", mode)).into_iter().chain([("zen4", Mode::Native)]) {
        let config = preset(name, mode);
        let unlimited = run(&mut Simulator::new(&config).unwrap(), &trace);
        assert_eq!(unlimited.paging, None);
        for replacement in ["lru", "clock", "fifo", "random"] {
            let mut limited = config.clone();
            limited.memory.resident = Some(mmusim_translate::ByteSize(64 << 20));
            limited.memory.replacement = Some(toml::Value::from(replacement).try_into().unwrap());
            let report = run(&mut Simulator::new(&limited).unwrap(), &trace);
            assert_eq!(without_paging(report), unlimited, "{name} {mode:?} under {replacement}");
        }
    }
}

#[test]
fn evictions_under_tags_remove_only_the_evicted_spaces_entries() {
    // Two address spaces share a limit of two pages and a tagged TLB.
    // Space 0 touches page 1, space 1 pages 1 and 2: the third admission
    // evicts space 0's page (FIFO: the oldest). Space 1's page 1, same
    // address under another tag, is still cached: a hit. Space 0's page 1
    // then misses and comes back (major), evicting space 1's page 1.
    let mut sim = machine(
        "[tlb.d]\nlevel = 1\nserves = \"data\"\nentries = 64\n\
         [context]\nswitch = \"tagged\"\n\
         [memory]\nresident = \"8KiB\"\nreplacement = \"fifo\"\n",
    );
    let at = |context: u16, page: u64| Access { context, ..load(page << 12) };
    let report = run(&mut sim, &[at(0, 1), at(1, 1), at(1, 2), at(1, 1), at(0, 1)]);
    assert_eq!((report.faults, report.major_faults), (3, 1));
    assert_eq!(report.walks.walks, 4, "space 1's page 1 hit");
    assert_eq!(report.tlbs[0].counters.invalidated, 2, "space 0's page 1, then space 1's");
    assert_eq!(report.paging.unwrap().evictions, 2);
}

#[test]
fn limits_are_checked_at_resolution() {
    let refused = |toml: &str| Config::from_toml(toml).unwrap().resolve().unwrap_err().to_string();
    assert!(
        refused("[memory]\nreplacement = \"lru\"\n").contains("memory.replacement: applies only with a resident limit")
    );
    assert!(
        refused("[memory]\nresident = \"6KiB\"\n").contains("memory.resident: must be a multiple of the smallest page")
    );
    assert!(refused("[pages]\npolicy = \"thp\"\n[memory]\nresident = \"1MiB\"\n").contains("(2MiB)"));
    assert!(refused("mode = \"nested\"\n[host.memory]\nfragmentation = 0.5\n").contains("host.memory: "));
    let resolved = Config::from_toml("[memory]\nresident = \"1MiB\"\n").unwrap().resolve().unwrap();
    assert_eq!(resolved.memory.replacement, Some(mmusim_translate::config::PageReplacement::Clock));
}

/// `pages` and `memory` settings over skylake, natively.
fn skylake_with(pages: &str, memory: &str) -> Config {
    let mut config = preset("skylake", Mode::Native);
    let extra: Config = Config::from_toml(&format!("[pages]\n{pages}\n[memory]\n{memory}\n")).unwrap();
    config.pages = extra.pages;
    config.memory = extra.memory;
    config
}

/// A report with the huge-page counters taken out.
fn without_huge_pages(mut report: SimReport) -> (SimReport, mmusim_translate::huge::HugeCounters) {
    let huge = report.huge_pages.take().expect("large pages are bounded");
    (report, huge)
}

#[test]
fn fragmentation_zero_changes_nothing_and_one_leaves_only_small_pages() {
    for name in ["sort.lackey.zst", "python-dict.lackey.gz"] {
        let trace = real_trace(name);
        let simulate = |config: &Config| run(&mut Simulator::new(config).unwrap(), &trace);
        for thp in ["policy = \"thp\"", "policy = \"thp\"\npromote_after = 64"] {
            let today = simulate(&skylake_with(thp, ""));
            assert!(today.huge_pages.is_none());
            let (unfragmented, huge) = without_huge_pages(simulate(&skylake_with(thp, "fragmentation = 0.0")));
            assert_eq!(unfragmented, today, "{name}, {thp}: fragmentation 0");
            assert_eq!(huge.denied, 0);
            assert!(huge.granted > 0, "{name}, {thp}: the trace maps large pages");

            let fixed = simulate(&skylake_with("policy = \"fixed\"", ""));
            let (broken, huge) = without_huge_pages(simulate(&skylake_with(thp, "fragmentation = 1.0")));
            assert_eq!(broken, fixed, "{name}, {thp}: fragmentation 1 is fixed small pages");
            assert_eq!(huge.granted, 0);
            assert!(huge.denied > 0);
        }
    }
}

#[test]
fn the_pool_serves_first_come_and_is_never_evicted() {
    let trace = real_trace("sort.lackey.zst");
    // Every block broken: only the pool's two pages are large.
    let config = skylake_with("policy = \"thp\"\nhuge_pool = 2", "fragmentation = 1.0");
    let report = run(&mut Simulator::new(&config).unwrap(), &trace);
    let huge = report.huge_pages.unwrap();
    assert_eq!((huge.granted, huge.from_pool), (2, 2));
    assert!(huge.denied > 0);
    assert!(report.walks.walks_by_size[1] > 0, "walks found 2 MiB pages");

    // Under a limit too small for the rest (a 6 MiB limit, 4 MiB of it the
    // pool: 512 small pages for a random-access trace of 32,839), the
    // pool's pages stay: they are never evicted, so never fault again.
    let trace = real_trace("randaccess.lackey.zst");
    let limited = skylake_with(
        "policy = \"thp\"\nhuge_pool = 2",
        "fragmentation = 1.0\nresident = \"6MiB\"\nreplacement = \"fifo\"",
    );
    let report = run(&mut Simulator::new(&limited).unwrap(), &trace);
    let paging = report.paging.unwrap();
    // A peak of 512 pages: the pool's are not among the resident pages.
    assert!(paging.evictions > 30_000 && paging.resident_peak == 512, "{paging:?}");
    let huge = report.huge_pages.unwrap();
    assert_eq!((huge.granted, huge.from_pool), (2, 2));
}

#[test]
fn under_a_limit_free_blocks_run_out() {
    // Two blocks of memory. THP at the first touch: regions 0 and 1 get
    // large pages; region 2 finds no free block, so its page is small, and
    // admitting it evicts region 0's page (FIFO). That block now holds the
    // small page, so region 3 finds none free either: small again, and the
    // two small pages fit beside region 1's large one.
    let mut sim =
        Simulator::new(&skylake_with("policy = \"thp\"", "resident = \"4MiB\"\nreplacement = \"fifo\"")).unwrap();
    let region = |n: u64| load(n << 21);
    let report = run(&mut sim, &[region(0), region(1), region(2), region(3)]);
    let huge = report.huge_pages.unwrap();
    assert_eq!((huge.granted, huge.denied), (2, 2));
    let paging = report.paging.unwrap();
    assert_eq!((report.faults, paging.evictions, paging.resident_peak), (4, 1, 3));
}

#[test]
fn shadow_paging_traps_the_guests_paging_and_clears_invalidate() {
    // Under shadow paging the guest's accessed bits are set only when the
    // hypervisor fills a shadow entry, so clearing one must drop the
    // shadow entry (and the TLB's): the clock runs as native clock with
    // clock_clear_flushes (see clock_by_hand_without_and_with_flushes),
    // and each eviction and each bit cleared is a trapped guest write.
    let mut sim = machine(
        "mode = \"shadow\"\n[tlb.d]\nlevel = 1\nserves = \"data\"\nentries = 64\n\
         [memory]\nresident = \"12KiB\"\nreplacement = \"clock\"\n",
    );
    let report = run(&mut sim, &scenario());
    check(&report, [4, 2, 3, 1, 9, 6, 7]);
    assert_eq!(report.exits.unwrap().guest_paging, 9);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

    /// LRU's inclusion property, on random streams over a few dozen pages
    /// in two address spaces: more memory, never more major faults, and
    /// the same first touches.
    #[test]
    fn lru_never_faults_more_with_more_memory(
        refs in proptest::collection::vec((0u16..2, 0u64..40, proptest::bool::ANY), 1..600),
    ) {
        let trace: Vec<Access> = refs
            .iter()
            .map(|&(context, page, write)| Access {
                context,
                ..Access::new(if write { Kind::Store } else { Kind::Load }, page << 12, 8)
            })
            .collect();
        let mut previous: Option<(u64, u64)> = None;
        for frames in [2u64, 3, 5, 8, 13, 21, 34, 80] {
            let report = run(&mut lru_with_frames(frames), &trace);
            if let Some((minor, major)) = previous {
                proptest::prop_assert_eq!(report.faults, minor);
                proptest::prop_assert!(report.major_faults <= major, "{} frames: {} > {}", frames, report.major_faults, major);
            }
            previous = Some((report.faults, report.major_faults));
        }
        proptest::prop_assert_eq!(previous.unwrap().1, 0, "80 frames hold every page");
    }
}

/// Two tagged address spaces sharing `frames` 4 KiB frames under LRU.
fn lru_with_frames(frames: u64) -> Simulator {
    machine(&format!(
        "[tlb.d]\nlevel = 1\nserves = \"data\"\nentries = 64\n[context]\nswitch = \"tagged\"\n\
         [memory]\nresident = \"{}KiB\"\nreplacement = \"lru\"\n",
        frames * 4
    ))
}
