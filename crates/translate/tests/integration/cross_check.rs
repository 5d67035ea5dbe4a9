//! The pipeline's TLB miss counts on the committed real traces, checked
//! against a second, deliberately naive implementation of set-associative
//! LRU TLBs: plain vectors, a linear search, move-to-back on a hit.

use std::path::PathBuf;

use mmusim_trace::{Access, Batch, Kind, TraceReader};
use mmusim_translate::{Config, Simulator};

/// One LRU TLB: each set a vector of pages, least recently used first.
struct NaiveTlb {
    sets: Vec<Vec<u64>>,
    ways: usize,
    misses: u64,
}

impl NaiveTlb {
    fn new(entries: usize, ways: usize) -> NaiveTlb {
        NaiveTlb { sets: vec![Vec::new(); entries / ways], ways, misses: 0 }
    }

    fn set(&mut self, page: u64) -> &mut Vec<u64> {
        let n = self.sets.len() as u64;
        &mut self.sets[(page % n) as usize]
    }

    fn lookup(&mut self, page: u64) -> bool {
        let set = self.set(page);
        match set.iter().position(|&p| p == page) {
            Some(i) => {
                let p = set.remove(i);
                set.push(p);
                true
            }
            None => {
                self.misses += 1;
                false
            }
        }
    }

    fn fill(&mut self, page: u64) {
        let ways = self.ways;
        let set = self.set(page);
        set.push(page);
        if set.len() > ways {
            set.remove(0);
        }
    }
}

/// L1 instruction and data TLBs (either may be absent) over an optional
/// unified L2, filled as the pipeline fills: L2 hit fills L1, a miss in both
/// fills both.
struct NaiveHierarchy {
    l1i: Option<NaiveTlb>,
    l1d: Option<NaiveTlb>,
    l2: Option<NaiveTlb>,
    walks: u64,
}

impl NaiveHierarchy {
    fn page(&mut self, instruction: bool, page: u64) {
        let mut l1 = if instruction { self.l1i.as_mut() } else { self.l1d.as_mut() };
        if let Some(tlb) = l1.as_mut() {
            if tlb.lookup(page) {
                return;
            }
        }
        let hit_l2 = self.l2.as_mut().is_some_and(|l2| l2.lookup(page));
        if !hit_l2 {
            self.walks += 1;
            if let Some(l2) = self.l2.as_mut() {
                l2.fill(page);
            }
        }
        if let Some(l1) = l1 {
            l1.fill(page);
        }
    }

    fn access(&mut self, access: &Access, shift: u32) {
        let first = access.addr >> shift;
        let last = access.last_byte() >> shift;
        for page in first..=last {
            self.page(access.kind == Kind::Fetch, page);
        }
    }
}

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../traces").join(name)
}

const TRACES: [&str; 4] = ["sort.lackey.zst", "gzip.lackey.xz", "python-dict.lackey.gz", "randaccess.lackey.zst"];

/// (L1I, L1D, L2) as (entries, ways); `None` for absent.
type Geometry = (Option<(usize, usize)>, Option<(usize, usize)>, Option<(usize, usize)>);

fn config(geometry: Geometry, size: &str) -> String {
    let mut text = format!("[pages]\nsize = \"{size}\"\n");
    let mut add = |name: &str, level: u32, serves: &str, tlb: Option<(usize, usize)>| {
        if let Some((entries, ways)) = tlb {
            text.push_str(&format!(
                "[tlb.{name}]\nlevel = {level}\nserves = \"{serves}\"\nentries = {entries}\nways = {ways}\npage_sizes = [\"{size}\"]\n"
            ));
        }
    };
    add("l1i", 1, "instruction", geometry.0);
    add("l1d", 1, "data", geometry.1);
    add("l2", 2, "unified", geometry.2);
    text
}

fn misses_of(report: &mmusim_translate::SimReport, name: &str) -> Option<u64> {
    report.tlbs.iter().find(|t| t.name == name).map(|t| t.counters.total_misses())
}

fn check(geometry: Geometry, size: &str, shift: u32) {
    let config = Config::from_toml(&config(geometry, size)).unwrap();
    for trace in TRACES {
        let mut sim = Simulator::new(&config).unwrap();
        let make = |g: Option<(usize, usize)>| g.map(|(entries, ways)| NaiveTlb::new(entries, ways));
        let mut naive = NaiveHierarchy { l1i: make(geometry.0), l1d: make(geometry.1), l2: make(geometry.2), walks: 0 };
        let mut reader = TraceReader::open(sample(trace)).unwrap();
        let mut batch = Batch::new();
        while reader.next_batch(&mut batch).unwrap() {
            sim.run(&batch).unwrap();
            for access in batch.iter() {
                naive.access(access, shift);
            }
        }
        let report = sim.report();
        let label = format!("{trace} with {geometry:?} and {size} pages");
        assert_eq!(misses_of(&report, "l1i"), naive.l1i.as_ref().map(|t| t.misses), "L1I misses, {label}");
        assert_eq!(misses_of(&report, "l1d"), naive.l1d.as_ref().map(|t| t.misses), "L1D misses, {label}");
        assert_eq!(misses_of(&report, "l2"), naive.l2.as_ref().map(|t| t.misses), "L2 misses, {label}");
        assert_eq!(report.walks.walks, naive.walks, "walks, {label}");
    }
}

#[test]
fn one_level_4k() {
    check((Some((64, 4)), Some((64, 4)), None), "4KiB", 12);
    // Sets not a power of two (12 of them), and fully associative.
    check((Some((48, 4)), Some((32, 32)), None), "4KiB", 12);
}

#[test]
fn two_levels_4k() {
    check((Some((128, 8)), Some((64, 4)), Some((1536, 12))), "4KiB", 12);
    check((Some((16, 2)), Some((16, 4)), Some((96, 6))), "4KiB", 12);
}

#[test]
fn two_levels_2m() {
    check((Some((8, 8)), Some((32, 4)), Some((1536, 12))), "2MiB", 21);
    check((Some((2, 1)), Some((4, 2)), Some((12, 3))), "2MiB", 21);
}
