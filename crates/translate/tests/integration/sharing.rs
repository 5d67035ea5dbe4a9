//! Zero-page sharing under nested paging (`host.share_zero_pages`): host
//! pages the guest demand-zeroed and nobody wrote share one host frame, and
//! a write breaks the share. Scenarios worked out by hand, and what sharing
//! must not change.

use mmusim_trace::{Access, Kind};
use mmusim_translate::config::Mode;
use mmusim_translate::{Config, SimReport, Simulator};

use crate::common::{machine, run, two_vms};

const TABLE: &str =
    "format = \"custom\"\nindex_bits = [9]\noffset_bits = 12\nentry_bytes = 8\npage_sizes = [\"4KiB\"]\n";

/// Nested paging with one-level tables (a 4 KiB root per guest address
/// space and per VM on the host), no page-walk caches or nested TLB, one
/// 4-entry TLB for everything, VM tags; `extra` appended (host memory,
/// guest memory keys).
fn small(sharing: bool, extra: &str) -> Simulator {
    let memory = if extra.contains("[memory]") { "" } else { "[memory]\nsize = \"64KiB\"\n" };
    machine(&format!(
        "mode = \"nested\"\n[page_table]\n{TABLE}[host]\nshare_zero_pages = {sharing}\n[host.page_table]\n{TABLE}\
         [tlb.u]\nlevel = 1\nserves = \"unified\"\nentries = 4\n\
         [context]\nswitch = \"tagged\"\nvm_tags = true\n{memory}{extra}"
    ))
}

fn at(vm: u16, kind: Kind, page: u64) -> Access {
    Access { vm, ..Access::new(kind, page << 12, 8) }
}

/// Bytes of `n` 4 KiB frames.
fn frames(n: u64) -> u64 {
    n << 12
}

#[test]
fn sharing_and_copy_on_write_by_hand() {
    // 1. VM 0 loads p1: the guest maps its root (written: private at the
    //    host) and demand-zeroes p1, which shares the zero frame.
    // 2. VM 1 loads p2: likewise (2 pages share it: 1 frame saved).
    // 3. VM 0 stores to p1: its translation was cached clean (the host
    //    maps it read-only), so the store comes back: a dirty-bit assist
    //    and a copy-on-write fault; p1 gets a frame of its own.
    // 4. VM 0 stores to p3: demand-zeroed and written at once, never shared.
    // 5. VM 1 fetches p4: code, read from the program's file: not zeros.
    // 6. VM 1 loads p2 (a hit), 7. stores to it: a second copy-on-write;
    //    nothing shares the zero frame any more, and it goes back.
    let trace = [
        at(0, Kind::Load, 1),
        at(1, Kind::Load, 2),
        at(0, Kind::Store, 1),
        at(0, Kind::Store, 3),
        at(1, Kind::Fetch, 4),
        at(1, Kind::Load, 2),
        at(1, Kind::Store, 2),
    ];
    let report = run(&mut small(true, ""), &trace);
    let sharing = report.sharing.clone().expect("sharing is on");
    assert_eq!((sharing.pages_shared, sharing.shared_peak, sharing.shared_pages), (2, 2, 0));
    assert_eq!((sharing.cow_faults, sharing.cow_by_io), (2, 0));
    let exits = report.exits.clone().unwrap();
    assert_eq!(exits.cow_fault, 2);
    assert_eq!(exits.host_page_fault, 6, "roots, p1 and p3 of VM 0; roots, p2 and p4 of VM 1");
    assert_eq!((report.walks.walks, report.run.dirty_assists), (4, 2));
    let by_vm: Vec<(u16, [u64; 3])> =
        report.sharing_by_vm.iter().map(|(vm, c)| (*vm, [c.pages_shared, c.cow_faults, c.shared_pages])).collect();
    assert_eq!(by_vm, [(0, [1, 1, 0]), (1, [1, 1, 0])]);

    // The host frames: without sharing, 2 host roots and 6 guest pages.
    // With it, after step 2 the two zero pages hold one frame between
    // them; at the end every page has its own again, and the zero frame
    // went back.
    let plain = run(&mut small(false, ""), &trace);
    assert_eq!(plain.sharing, None);
    assert_eq!(plain.host_allocated_bytes, frames(2 + 6));
    assert_eq!(report.host_allocated_bytes, plain.host_allocated_bytes);
    let after_two = run(&mut small(true, ""), &trace[..2]);
    assert_eq!(after_two.host_allocated_bytes, frames(2 + 2 + 1), "2 roots at the host, 2 guest roots, the zero frame");
    assert_eq!(run(&mut small(false, ""), &trace[..2]).host_allocated_bytes, frames(2 + 4));
    // Without sharing the TLBs and walks are the same, and so are the
    // assists (a load's translation is cached clean either way).
    assert_eq!((plain.tlbs.clone(), plain.walks.clone()), (report.tlbs.clone(), report.walks.clone()));
    assert_eq!(plain.run.dirty_assists, 2);
    assert_eq!(plain.exits.unwrap().cow_fault, 0);
}

#[test]
fn sharing_makes_room_under_a_host_limit_and_a_copy_on_write_can_evict() {
    // A host limit of 24 KiB: the two host roots (pinned), the zero frame
    // while pages share it (pinned), and 3 pages (FIFO).
    // 1-2. VM 0 loads p1, p2: its guest root is resident; both pages share.
    // 3. VM 1 loads p1: its root is resident; its p1 shares too.
    // 4. VM 0 stores to p1: a copy-on-write; p1 resident (3 pages: full).
    // 5. VM 0 stores to p2: a copy-on-write; p2 evicts VM 0's root (the
    //    oldest, dirty: its walks wrote it): VM 0's translations go.
    // 6. VM 0 loads p1: a miss; its root comes back (a major fault) and
    //    evicts VM 1's root (dirty): VM 1's translations go.
    let limit = "[host.memory]\nresident = \"24KiB\"\nreplacement = \"fifo\"\n";
    let trace = [
        at(0, Kind::Load, 1),
        at(0, Kind::Load, 2),
        at(1, Kind::Load, 1),
        at(0, Kind::Store, 1),
        at(0, Kind::Store, 2),
        at(0, Kind::Load, 1),
    ];
    let report = run(&mut small(true, limit), &trace);
    let host = report.host_paging.clone().unwrap();
    assert_eq!((host.swap_ins, host.evictions, host.swap_outs), (1, 2, 2));
    assert_eq!(host.resident_peak, 3);
    let sharing = report.sharing.clone().unwrap();
    assert_eq!((sharing.pages_shared, sharing.shared_peak, sharing.shared_pages, sharing.cow_faults), (3, 3, 1, 2));
    let exits = report.exits.clone().unwrap();
    assert_eq!((exits.host_page_fault, exits.cow_fault), (2 + 1 + 2 + 1, 2));
    assert_eq!(report.walks.walks, 4);
    assert_eq!(report.tlbs[0].counters.invalidated, 3, "VM 0's p1 and p2 in 5, VM 1's p1 in 6");

    // Without sharing (no zero frame: 4 pages fit) the first three
    // references need 5: VM 1's p1 evicts VM 0's root. With it, 2 are
    // resident and nothing is evicted.
    let shared = run(&mut small(true, limit), &trace[..3]).host_paging.unwrap();
    assert_eq!((shared.evictions, shared.resident_peak), (0, 2));
    let plain = run(&mut small(false, limit), &trace[..3]).host_paging.unwrap();
    assert_eq!((plain.evictions, plain.resident_peak), (1, 4));
}

#[test]
fn a_guest_swap_in_breaks_a_share_without_an_exit() {
    // The guest keeps one page (FIFO), no host limit.
    // 1. VM 0 loads p1 (frame F1): shared.
    // 2. It loads p2: the guest maps it in a new frame F2 (shared) and
    //    evicts p1 (clean: dropped), freeing F1; the host still maps F1 to
    //    the zero frame.
    // 3. It loads p1: a major fault; the guest takes F1 back (and evicts
    //    p2, freeing F2) and reads p1 from its swap into it: the
    //    hypervisor's I/O breaks F1's share, with no exit.
    let guest_limit = "[memory]\nsize = \"64KiB\"\nresident = \"4KiB\"\nreplacement = \"fifo\"\n";
    let trace = [at(0, Kind::Load, 1), at(0, Kind::Load, 2), at(0, Kind::Load, 1)];
    let report = run(&mut small(true, guest_limit), &trace);
    let sharing = report.sharing.clone().unwrap();
    assert_eq!((sharing.pages_shared, sharing.shared_pages, sharing.cow_faults, sharing.cow_by_io), (2, 1, 0, 1));
    let exits = report.exits.clone().unwrap();
    assert_eq!((exits.host_page_fault, exits.cow_fault), (3, 0), "the guest root, F1, F2");
    assert_eq!(report.major_faults, 1);
}

#[test]
fn a_guest_page_larger_than_the_host_page_shares_host_page_by_host_page() {
    // The guest maps 2 MiB pages, the host 4 KiB ones; translations are
    // cached at 4 KiB.
    // 1. A load at 0: the guest demand-zeroes the 2 MiB page G. Host page
    //    0 is mapped now and shares; the other 511 will when first read.
    // 2. A store at 4 KiB: G becomes dirty in the guest; host page 1 is
    //    written as it is first mapped, so it never shares.
    // 3. A load at 8 KiB: host page 2 is first mapped for a read: it
    //    shares, so although G is dirty its translation is cached clean,
    // 4. and a store there comes back: a copy-on-write fault.
    let guest = "format = \"custom\"\nindex_bits = [9]\noffset_bits = 21\nentry_bytes = 8\npage_sizes = [\"2MiB\"]\n";
    let host = "format = \"custom\"\nindex_bits = [9, 9]\noffset_bits = 12\nentry_bytes = 8\npage_sizes = [\"4KiB\"]\n";
    let mut sim = machine(&format!(
        "mode = \"nested\"\n[page_table]\n{guest}[memory]\nsize = \"4MiB\"\n\
         [host]\nshare_zero_pages = true\n[host.page_table]\n{host}\
         [tlb.u]\nlevel = 1\nserves = \"unified\"\nentries = 8\npage_sizes = [\"4KiB\"]\n"
    ));
    let trace = [
        Access::new(Kind::Load, 0, 8),
        Access::new(Kind::Store, 4 << 10, 8),
        Access::new(Kind::Load, 8 << 10, 8),
        Access::new(Kind::Store, 8 << 10, 8),
    ];
    let report = run(&mut sim, &trace);
    let sharing = report.sharing.clone().unwrap();
    assert_eq!((sharing.pages_shared, sharing.shared_pages, sharing.cow_faults), (2, 1, 1));
    assert_eq!(report.run.dirty_assists, 1, "the store in 4 found its translation clean");
    assert_eq!(report.exits.unwrap().cow_fault, 1);
}

#[test]
fn a_balloon_taking_a_shared_frame_frees_no_host_frame() {
    // The guest keeps 4 pages (FIFO). It fetches code from p0 (frame F0,
    // not zeros) and loads p1 and p2 (F1, F2: shared). Before the second
    // instruction a balloon of 3 pages leaves it one: it evicts p0 and p1
    // (clean, dropped), and the driver takes F1 and F0 (the frames freed,
    // last first) and one more. The host frees F0's backing; F1 had none of
    // its own (it shared the zero frame, which F2 still maps).
    let memory = "[memory]\nsize = \"64KiB\"\nresident = \"16KiB\"\nreplacement = \"fifo\"\n\
                  [[balloon]]\nvm = 0\nat = 2\npages = 3\n";
    let trace = [at(0, Kind::Fetch, 0), at(0, Kind::Load, 1), at(0, Kind::Load, 2), at(0, Kind::Fetch, 0)];
    let report = run(&mut small(true, memory), &trace);
    let balloon = report.paging.clone().unwrap();
    assert_eq!((balloon.balloon_pages, balloon.balloon_evictions, balloon.balloon_host_frees), (3, 2, 1));
    let sharing = report.sharing.clone().unwrap();
    assert_eq!((sharing.pages_shared, sharing.shared_pages, sharing.cow_faults), (2, 1, 0));
}

fn nested_skylake(sharing: bool, host_limit: Option<&str>) -> Config {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/skylake.toml");
    let mut config = Config::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap();
    config.mode = Mode::Nested;
    let host = config.host.get_or_insert_with(Default::default);
    host.share_zero_pages = sharing;
    host.memory.resident = host_limit.map(|limit| toml::Value::from(limit).try_into().unwrap());
    config
}

fn simulate(config: &Config, trace: &[Access]) -> SimReport {
    run(&mut Simulator::new(config).unwrap(), trace)
}

#[test]
fn on_real_programs_sharing_saves_exactly_the_frames_it_reports_and_changes_no_translation() {
    let trace = two_vms();
    let plain = simulate(&nested_skylake(false, None), &trace);
    let shared = simulate(&nested_skylake(true, None), &trace);
    let sharing = shared.sharing.clone().unwrap();
    assert!(sharing.shared_pages > 10 && sharing.cow_faults > 0, "{sharing:?}");
    // Every page sharing the zero frame but one (the zero frame) is a
    // host frame saved.
    assert_eq!(plain.host_allocated_bytes - shared.host_allocated_bytes, frames(sharing.shared_pages - 1));
    // With 4 KiB pages on both sides, sharing changes which frame backs a
    // page, not what is translated, walked or faulted.
    assert_eq!((&plain.tlbs, &plain.walks, &plain.nested), (&shared.tlbs, &shared.walks, &shared.nested));
    assert_eq!((plain.faults, plain.run.dirty_assists), (shared.faults, shared.run.dirty_assists));
    let (plain_exits, shared_exits) = (plain.exits.unwrap(), shared.exits.unwrap());
    assert_eq!(plain_exits.host_page_fault, shared_exits.host_page_fault);
    assert_eq!(shared_exits.cow_fault, sharing.cow_faults);
    let by_vm: u64 = shared.sharing_by_vm.iter().map(|(_, c)| c.shared_pages).sum();
    assert_eq!(by_vm, sharing.shared_pages);
}

#[test]
fn under_a_host_limit_sharing_never_holds_more_host_frames() {
    let trace = two_vms();
    for limit in ["768KiB", "1MiB"] {
        let plain = simulate(&nested_skylake(false, Some(limit)), &trace);
        let shared = simulate(&nested_skylake(true, Some(limit)), &trace);
        let (p, s) = (plain.host_paging.unwrap(), shared.host_paging.unwrap());
        assert!(s.resident_peak <= p.resident_peak, "{limit}: {} > {}", s.resident_peak, p.resident_peak);
        assert!(s.swap_ins < p.swap_ins, "{limit}: sharing makes room ({} vs {})", s.swap_ins, p.swap_ins);
        assert!(shared.host_allocated_bytes <= plain.host_allocated_bytes, "{limit}");
    }
}

#[test]
fn sharing_is_checked_at_resolution() {
    let refused = [
        ("mode = \"shadow\"\n[host]\nshare_zero_pages = true\n", "nested mode only"),
        ("mode = \"nested\"\n[host]\nshare_zero_pages = true\n[host.pages]\nsize = \"2MiB\"\n", "smallest size"),
        ("mode = \"nested\"\n[host]\nshare_zero_pages = true\n[host.pages]\npolicy = \"thp\"\n", "smallest size"),
    ];
    for (toml, why) in refused {
        let err = Config::from_toml(toml).unwrap().resolve().unwrap_err().to_string();
        assert!(err.contains("host.share_zero_pages") && err.contains(why), "{toml}: {err}");
    }
    // Off, it is not written out: a config without it reads the same.
    let config = Config::from_toml("mode = \"nested\"\n[host]\nshare_zero_pages = false\n").unwrap();
    assert!(!toml::to_string(&config).unwrap().contains("share_zero_pages"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

    /// Random streams of two VMs (fetches, loads, stores over 24 pages),
    /// with or without a guest limit (so the guest pages, and its swap-ins
    /// break shares): the frames sharing saves are exactly the host frames
    /// it spares, and it changes no translation, walk or fault.
    #[test]
    fn random_streams_save_exactly_the_frames_reported(
        refs in proptest::collection::vec((0u16..2, 0u64..24, 0u8..4), 1..400),
        guest_limit in proptest::option::of(1u64..12),
    ) {
        let kinds = [Kind::Fetch, Kind::Load, Kind::Store, Kind::Modify];
        let trace: Vec<Access> = refs.iter().map(|&(vm, page, kind)| at(vm, kinds[kind as usize], page)).collect();
        let memory = guest_limit.map_or(String::new(), |pages| {
            format!("[memory]\nsize = \"64KiB\"\nresident = \"{}KiB\"\nreplacement = \"clock\"\n", pages * 4)
        });
        let plain = run(&mut small(false, &memory), &trace);
        let shared = run(&mut small(true, &memory), &trace);
        let sharing = shared.sharing.clone().unwrap();
        proptest::prop_assert_eq!(
            plain.host_allocated_bytes - shared.host_allocated_bytes,
            frames(sharing.shared_pages.saturating_sub(1))
        );
        proptest::prop_assert!(sharing.shared_peak >= sharing.shared_pages);
        proptest::prop_assert_eq!(sharing.pages_shared, sharing.shared_pages + sharing.cow_faults + sharing.cow_by_io);
        proptest::prop_assert_eq!(&plain.tlbs, &shared.tlbs);
        proptest::prop_assert_eq!(&plain.walks, &shared.walks);
        proptest::prop_assert_eq!(&plain.paging, &shared.paging);
        let (plain_exits, shared_exits) = (plain.exits.unwrap(), shared.exits.unwrap());
        proptest::prop_assert_eq!(plain_exits.host_page_fault, shared_exits.host_page_fault);
        proptest::prop_assert_eq!(shared_exits.cow_fault, sharing.cow_faults);
    }

    /// The same streams under a host limit of 6 to 11 frames (a pinned
    /// host root per VM, and the zero frame while shared), by each host policy:
    /// every share ends in exactly one way, and the limit holds.
    #[test]
    fn random_streams_under_a_host_limit_keep_the_books(
        refs in proptest::collection::vec((0u16..2, 0u64..24, 0u8..4), 1..400),
        frames_limit in 6u64..12,
        policy in proptest::sample::select(vec!["lru", "clock", "fifo", "random"]),
    ) {
        let kinds = [Kind::Fetch, Kind::Load, Kind::Store, Kind::Modify];
        let trace: Vec<Access> = refs.iter().map(|&(vm, page, kind)| at(vm, kinds[kind as usize], page)).collect();
        let limit = format!("[host.memory]\nresident = \"{}KiB\"\nreplacement = \"{policy}\"\n", frames_limit * 4);
        let report = run(&mut small(true, &limit), &trace);
        let sharing = report.sharing.clone().unwrap();
        let host = report.host_paging.clone().unwrap();
        proptest::prop_assert_eq!(sharing.pages_shared, sharing.shared_pages + sharing.cow_faults + sharing.cow_by_io);
        proptest::prop_assert_eq!(report.exits.unwrap().cow_fault, sharing.cow_faults);
        let zero_frame = u64::from(sharing.shared_pages > 0);
        // The first VM's host root is pinned inside the limit from the
        // start (the second's from its first walk).
        proptest::prop_assert!(host.resident_peak < frames_limit, "{:?}", host);
        proptest::prop_assert!(report.host_allocated_bytes <= frames(frames_limit) + frames(zero_frame) + frames(1));
    }
}
