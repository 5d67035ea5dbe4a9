//! The LRU memory curve (`memory.curve`): every point against a separate
//! run with that limit under LRU (the residency module's heap-based LRU, a
//! different implementation from the curve's stack), on real traces in
//! every mode and on random streams; and what the curve must not change.

use mmusim_trace::{Access, Kind};
use mmusim_translate::config::{Mode, PageReplacement};
use mmusim_translate::memory_curve::CurvePoint;
use mmusim_translate::{ByteSize, Config, SimReport, Simulator};

use crate::common::{real_trace, run};

/// A preset of configs/ run in `mode`, the host left at its defaults.
fn preset(name: &str, mode: Mode) -> Config {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs").join(format!("{name}.toml"));
    let mut config = Config::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap();
    config.mode = mode;
    config
}

/// What a separate run at `limit` under LRU reports, as a curve point.
fn separate_run(config: &Config, limit: ByteSize, trace: &[Access]) -> CurvePoint {
    let mut limited = config.clone();
    limited.memory.curve = None;
    limited.memory.resident = Some(limit);
    limited.memory.replacement = Some(PageReplacement::Lru);
    let report = run(&mut Simulator::new(&limited).unwrap(), trace);
    let paging = report.paging.unwrap();
    CurvePoint {
        resident: limit,
        minor_faults: report.faults,
        major_faults: report.major_faults,
        evictions: paging.evictions,
        swap_outs: paging.swap_outs,
        swap_ins: paging.swap_ins,
        invalidations: paging.invalidations,
        resident_peak: paging.resident_peak,
        paging_cycles: paging.cycles,
    }
}

/// The curve over `limits` of one run of `config`, checked point by point
/// against separate runs; returns it.
fn check_curve(config: &Config, limits: &[ByteSize], trace: &[Access], what: &str) -> Vec<CurvePoint> {
    let mut with_curve = config.clone();
    with_curve.memory.curve = Some(limits.to_vec());
    let points = run(&mut Simulator::new(&with_curve).unwrap(), trace).memory_curve.expect("a curve");
    let mut sorted = limits.to_vec();
    sorted.sort_by_key(|l| l.0);
    assert_eq!(points.iter().map(|p| p.resident).collect::<Vec<_>>(), sorted, "{what}: limits ascending");
    for point in &points {
        assert_eq!(*point, separate_run(config, point.resident, trace), "{what}");
    }
    points
}

fn kib(n: u64) -> ByteSize {
    ByteSize(n << 10)
}

/// `a` in VM (or address space) 0 and `b` in 1, interleaved in slices of
/// 1000 references, as a multi-programmed trace.
fn two_programs(a: &[Access], b: &[Access], by_vm: bool) -> Vec<Access> {
    let tag = |access: &Access, id: u16| {
        if by_vm {
            Access { vm: id, ..*access }
        } else {
            Access { context: id, ..*access }
        }
    };
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut x, mut y) = (a.chunks(1000), b.chunks(1000));
    loop {
        let (p, q) = (x.next(), y.next());
        if p.is_none() && q.is_none() {
            return out;
        }
        out.extend(p.unwrap_or_default().iter().map(|r| tag(r, 0)));
        out.extend(q.unwrap_or_default().iter().map(|r| tag(r, 1)));
    }
}

#[test]
fn every_point_equals_a_separate_lru_run_on_real_traces_in_every_mode() {
    let sort = real_trace("sort.lackey.zst");
    let python = real_trace("python-dict.lackey.gz");
    let limits = [kib(4), kib(64), kib(200), kib(512), kib(1024), kib(8192)];
    for mode in [Mode::Native, Mode::Nested, Mode::Shadow] {
        let config = preset("skylake", mode);
        let points = check_curve(&config, &limits, &sort, &format!("sort, {mode:?}"));
        // Without a limit of one page (the top two pages then swap in
        // place until a third comes).
        check_curve(&config, &limits[1..], &sort, &format!("sort, {mode:?}, from 64 KiB"));
        assert!(points[1].major_faults > 0 && points[1].swap_outs > 0, "64 KiB pages sort's 900 KiB");
        assert_eq!(points[5].evictions, 0, "8 MiB holds all of sort");
        // Two programs: address spaces sharing the machine's memory, or
        // VMs each with its guest's own.
        let mixed = two_programs(&sort, &python, mode.is_virtualized());
        check_curve(&config, &limits, &mixed, &format!("sort and python, {mode:?}"));
    }
}

#[test]
fn large_fixed_pages_are_counted_and_priced_whole() {
    let trace = real_trace("gzip.lackey.xz");
    let mut config = preset("skylake", Mode::Native);
    config.pages.size = Some(ByteSize(2 << 20));
    let points = check_curve(&config, &[ByteSize(2 << 20), ByteSize(4 << 20), ByteSize(64 << 20)], &trace, "2 MiB");
    assert!(points[0].major_faults > 0, "one 2 MiB page cannot hold gzip's code, heap and stack");
}

#[test]
fn the_curve_changes_no_other_count() {
    let trace = real_trace("sort.lackey.zst");
    for mode in [Mode::Native, Mode::Nested, Mode::Shadow] {
        let config = preset("skylake", mode);
        let plain = run(&mut Simulator::new(&config).unwrap(), &trace);
        let mut with_curve = config.clone();
        with_curve.memory.curve = Some(vec![kib(64), kib(256)]);
        let mut report: SimReport = run(&mut Simulator::new(&with_curve).unwrap(), &trace);
        assert!(report.memory_curve.take().is_some());
        assert_eq!(report, plain, "{mode:?}");
    }
}

#[test]
fn curves_are_checked_at_resolution() {
    let refused = |memory: &str, pages: &str, key: &str| {
        let toml = format!("[memory]\n{memory}\n[pages]\n{pages}\n");
        let error = Config::from_toml(&toml).unwrap().resolve().unwrap_err().to_string();
        assert!(error.contains(key), "{toml}: {error}");
    };
    refused("curve = []", "", "memory.curve");
    refused("curve = [\"6KiB\"]", "", "memory.curve");
    refused("curve = [\"4KiB\", \"4KiB\"]", "", "memory.curve");
    refused("curve = [\"0KiB\"]", "", "memory.curve");
    refused("curve = [\"4MiB\"]", "policy = \"thp\"", "memory.curve");
    refused("curve = [\"2MiB\", \"3MiB\"]", "size = \"2MiB\"", "memory.curve");
    let error = Config::from_toml("mode = \"nested\"\n[host.memory]\ncurve = [\"64KiB\"]\n")
        .unwrap()
        .resolve()
        .unwrap_err()
        .to_string();
    assert!(error.contains("host.memory"), "{error}");
    // Costs price a curve without a limit of the run's own.
    let config = Config::from_toml("[memory]\ncurve = [\"8KiB\", \"4KiB\"]\n[memory.costs]\nmajor_fault = 9\n")
        .unwrap()
        .resolve()
        .unwrap();
    assert_eq!(config.memory.curve, Some(vec![kib(4), kib(8)]));
    assert_eq!(config.memory.costs.unwrap().major_fault, 9);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]

    /// Random streams over a few dozen pages in two address spaces, some
    /// references crossing a page boundary, against separate runs at
    /// random limits.
    #[test]
    fn random_streams_agree_with_separate_runs(
        refs in proptest::collection::vec((0u16..2, 0u64..40, 0u8..4, proptest::bool::ANY), 1..500),
        limits in proptest::collection::btree_set(1u64..48, 1..6),
    ) {
        let trace: Vec<Access> = refs
            .iter()
            .map(|&(context, page, kind, crosses)| {
                let kind = [Kind::Fetch, Kind::Load, Kind::Store, Kind::Modify][usize::from(kind)];
                let addr = if crosses { (page << 12) + 4092 } else { page << 12 };
                Access { context, ..Access::new(kind, addr, 8) }
            })
            .collect();
        let config = Config::from_toml(
            "[tlb.d]\nlevel = 1\nserves = \"data\"\nentries = 8\nways = 2\n\
             [tlb.i]\nlevel = 1\nserves = \"instruction\"\nentries = 4\n[context]\nswitch = \"tagged\"\n",
        )
        .unwrap();
        let limits: Vec<ByteSize> = limits.iter().map(|&pages| kib(4 * pages)).collect();
        check_curve(&config, &limits, &trace, "random stream");
    }
}
