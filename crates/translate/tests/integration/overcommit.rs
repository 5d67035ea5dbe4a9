//! Memory overcommit under nested paging: a host limit on the host frames
//! backing the VMs' guest-physical pages (`host.memory.resident`), reclaimed
//! by host swapping. A scenario worked out by hand, reference by reference,
//! and what a host limit must not change.

use mmusim_trace::{Access, Kind};
use mmusim_translate::config::Mode;
use mmusim_translate::{ByteSize, Config, Simulator};

use crate::common::{run, two_vms};

/// Nested paging with one-level tables (one 4 KiB root per guest address
/// space and per VM on the host), no page-walk caches and no nested TLB, a
/// 4-entry data TLB, tags that keep each VM's entries across switches,
/// and a host limit of 24 KiB under `replacement`.
fn small_host(replacement: &str, extra: &str) -> Simulator {
    let table = "format = \"custom\"\nindex_bits = [9]\noffset_bits = 12\nentry_bytes = 8\npage_sizes = [\"4KiB\"]\n";
    crate::common::machine(&format!(
        "mode = \"nested\"\n[page_table]\n{table}[host.page_table]\n{table}[memory]\nsize = \"64KiB\"\n\
         [tlb.d]\nlevel = 1\nserves = \"data\"\nentries = 4\n\
         [context]\nswitch = \"tagged\"\nvm_tags = true\n\
         [host.memory]\nresident = \"24KiB\"\nreplacement = \"{replacement}\"\n{extra}"
    ))
}

fn at(vm: u16, kind: Kind, page: u64) -> Access {
    Access { vm, ..Access::new(kind, page << 12, 8) }
}

/// VM 0 stores to a, VM 1 stores to b, VM 0 loads c, VM 1 loads b, VM 0
/// loads a, VM 1 loads b.
fn scenario() -> Vec<Access> {
    vec![
        at(0, Kind::Store, 1),
        at(1, Kind::Store, 2),
        at(0, Kind::Load, 3),
        at(1, Kind::Load, 2),
        at(0, Kind::Load, 1),
        at(1, Kind::Load, 2),
    ]
}

#[test]
fn host_swapping_by_hand() {
    // The host's frames: its two 4 KiB roots (pinned, inside the limit)
    // and 4 guest-physical pages. Each first walk of a VM maps its guest
    // root and then its page (admitted in that order, FIFO's order):
    // 1. VM 0 a: root0, a0 (the store and the guest's fault dirty both).
    // 2. VM 1 b: root1, b1 (likewise): 4 pages, full.
    // 3. VM 0 c: c0 evicts root0 (dirty: swapped out); VM 0's cached
    //    translations go (a's entry).
    // 4. VM 1 b: a TLB hit (VM 1 lost nothing).
    // 5. VM 0 a: misses (its entry went in 3); root0 comes back (a major
    //    fault) and evicts a0 (dirty), then a0 comes back and evicts root1
    //    (dirty); VM 0's entries (c) and VM 1's (b) go.
    // 6. VM 1 b: misses; root1 comes back and evicts b1 (dirty), b1 comes
    //    back and evicts c0 (clean: only loaded, dropped); VM 0's a goes.
    let report = run(&mut small_host("fifo", ""), &scenario());
    let host = report.host_paging.expect("a host limit");
    assert_eq!(host.swap_ins, 4, "major faults: root0 and a0 in 5, root1 and b1 in 6");
    assert_eq!((host.evictions, host.swap_outs, host.invalidations), (5, 4, 5));
    assert_eq!(host.resident_peak, 4);
    // By the VM whose page it was: VM 0 lost root0, a0 and c0 and got
    // root0 and a0 back; VM 1 lost root1 and b1 and got both back.
    let by_vm: Vec<(u16, [u64; 3])> =
        report.host_paging_by_vm.iter().map(|(vm, c)| (*vm, [c.major_faults, c.evictions, c.swap_outs])).collect();
    assert_eq!(by_vm, [(0, [2, 3, 2]), (1, [2, 2, 2])]);
    assert_eq!(report.exits.unwrap().host_page_fault, 2 + 2 + 1 + 2 + 2, "every host fault is an EPT violation");
    let data = &report.tlbs[0].counters;
    assert_eq!((report.walks.walks, data.total_hits()), (5, 1));
    assert_eq!(data.invalidated, 4, "a in 3, c and b in 5, a in 6");
    assert_eq!(report.faults, 3, "the guests' own first touches");
    // Costs: 9 host faults (4 major), 4 swap-outs, 5 invalidations.
    let costs = mmusim_translate::config::PagingCosts::default();
    let cycles = 5 * u64::from(costs.minor_fault)
        + 4 * u64::from(costs.major_fault)
        + 4 * u64::from(costs.swap_out)
        + 5 * u64::from(costs.invalidation);
    assert_eq!(host.cycles, cycles);
}

#[test]
fn host_lru_by_hand() {
    // One VM (one host root pinned, so its root and 5 pages fit): loads of
    // p1, p2, p1, p3, p4, p1, p5, p2, p1, p3, p2, by exact recency over
    // every reference to a guest-physical page: the program's (TLB hits
    // included) and the 2D walks' reads of the guest root.
    // 1-6. root0 and p1-p4 resident; p1 hit twice.
    // 7. p5 evicts p2, the least recent (FIFO would take root0, read by
    //    every walk); the INVEPT empties VM 0's translations.
    // 8. p2 misses and comes back (a major fault), evicting p3.
    // 9. p1 misses (flushed in 8) but is resident.
    // 10. p3 comes back, evicting p4.
    // 11. p2 misses (flushed in 10) but is resident.
    let pages = [1, 2, 1, 3, 4, 1, 5, 2, 1, 3, 2];
    let trace: Vec<Access> = pages.iter().map(|&page| at(0, Kind::Load, page)).collect();
    let report = run(&mut small_host("lru", ""), &trace);
    let host = report.host_paging.clone().unwrap();
    assert_eq!((host.evictions, host.swap_ins, host.swap_outs), (3, 2, 0), "loads only: every data page clean");
    assert_eq!(report.exits.unwrap().host_page_fault, 6 + 2, "6 first touches, 2 swap-ins");
    assert_eq!(report.walks.walks, 5 + 4, "p1-p5's first walks, then 8 to 11");
    // Which pages came back when: p2 in 8, p3 in 10.
    let swap_ins_after: Vec<u64> =
        (1..=trace.len()).map(|n| run(&mut small_host("lru", ""), &trace[..n]).host_paging.unwrap().swap_ins).collect();
    assert_eq!(swap_ins_after, [0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 2]);
    // FIFO evicts the root in 7, which the next walk brings back (evicting
    // p1), then p1 (evicting p2), then p2: 3 swap-ins.
    let fifo = run(&mut small_host("fifo", ""), &trace).host_paging.unwrap();
    assert_eq!((fifo.swap_ins, fifo.swap_outs), (3, 1), "the root is dirty: its walks wrote it");
}

/// Shadow paging with one-level tables, a 4-entry TLB and a host limit of
/// 16 KiB under `replacement`: the host's map root and the shadow root
/// (both pinned) and 2 pages. Guest table pages are the hypervisor's
/// write-protected pages, outside the limit.
fn small_shadow_host(replacement: &str) -> Simulator {
    let table = "format = \"custom\"\nindex_bits = [9]\noffset_bits = 12\nentry_bytes = 8\npage_sizes = [\"4KiB\"]\n";
    crate::common::machine(&format!(
        "mode = \"shadow\"\n[page_table]\n{table}[host.page_table]\n{table}[memory]\nsize = \"64KiB\"\n\
         [tlb.d]\nlevel = 1\nserves = \"data\"\nentries = 4\n\
         [context]\nswitch = \"tagged\"\nvm_tags = true\n\
         [host.memory]\nresident = \"16KiB\"\nreplacement = \"{replacement}\"\n"
    ))
}

#[test]
fn host_swapping_under_shadow_paging_by_hand() {
    // 1. A store to p1: the hypervisor fills its shadow entry (the guest
    //    faults it in: a page-table-update exit) and maps p1 at the host,
    //    dirty (the fill was for a write).
    // 2. A load of p2: likewise, clean; both fit.
    // 3. A store to p2 finds its translation clean: the assist dirties the
    //    shadow entry, and the hypervisor's map too.
    // 4. A load of p3 evicts p1 (FIFO; dirty: swapped out): its shadow
    //    entry goes and the VM's translations are flushed (p1's and p2's).
    // 5. p1 misses; its shadow entry is refilled behind an exit (the guest
    //    still maps it: a hidden fault), bringing p1 back (a host major
    //    fault) and evicting p2 (dirty); p3's translation is flushed.
    // 6. p2 likewise comes back, evicting p3 (clean); p1's flushed.
    let trace = [
        at(0, Kind::Store, 1),
        at(0, Kind::Load, 2),
        at(0, Kind::Store, 2),
        at(0, Kind::Load, 3),
        at(0, Kind::Load, 1),
        at(0, Kind::Load, 2),
    ];
    let report = run(&mut small_shadow_host("fifo"), &trace);
    let host = report.host_paging.clone().expect("a host limit");
    assert_eq!((host.swap_ins, host.evictions, host.swap_outs, host.invalidations), (2, 3, 2, 3));
    assert_eq!(host.resident_peak, 2);
    let exits = report.exits.clone().unwrap();
    assert_eq!((exits.page_table_update, exits.shadow_fill), (3, 2));
    assert_eq!((report.walks.walks, report.run.dirty_assists), (5, 1));
    assert_eq!(report.tlbs[0].counters.invalidated, 2 + 1 + 1);
    let by_vm: Vec<(u16, [u64; 3])> =
        report.host_paging_by_vm.iter().map(|(vm, c)| (*vm, [c.major_faults, c.evictions, c.swap_outs])).collect();
    assert_eq!(by_vm, [(0, [2, 3, 2])]);
    // The host's clock: each accessed bit it clears drops the page's
    // shadow entries too (the next use refills it and sets the bit again).
    let clock = run(&mut small_shadow_host("clock"), &trace).host_paging.unwrap();
    assert!(clock.accessed_bits_cleared > 0);
    assert_eq!(clock.invalidations, clock.evictions + clock.accessed_bits_cleared);
}

#[test]
fn double_paging_under_shadow_paging_by_hand() {
    // A guest that keeps 3 pages (FIFO) on a host that keeps 2 (16 KiB
    // with its map's root and the shadow root, FIFO); stores to p1..p5,
    // each in a frame Fx.
    // 1-2. host: F1, F2. 3. F3 evicts F1 (dirty).
    // 4. The guest takes a new frame F4 for p4 and evicts p1 (dirty: to
    //    its swap), reading F1, which the host swapped out: double paging
    //    (F1 back, evicting F2, dirty). Then F4 evicts F3 (dirty).
    // 5. The guest takes F1 back for p5 and evicts p2, reading F2: double
    //    paging again (F2 back, evicting F1, clean since it came back);
    //    then p5's F1 comes back (a major fault), evicting F4 (dirty).
    let table = "format = \"custom\"\nindex_bits = [9]\noffset_bits = 12\nentry_bytes = 8\npage_sizes = [\"4KiB\"]\n";
    let mut sim = crate::common::machine(&format!(
        "mode = \"shadow\"\n[page_table]\n{table}[host.page_table]\n{table}\
         [memory]\nsize = \"64KiB\"\nresident = \"12KiB\"\nreplacement = \"fifo\"\n\
         [tlb.d]\nlevel = 1\nserves = \"data\"\nentries = 4\n\
         [host.memory]\nresident = \"16KiB\"\nreplacement = \"fifo\"\n"
    ));
    let trace: Vec<Access> = (1..=5).map(|page| at(0, Kind::Store, page)).collect();
    let report = run(&mut sim, &trace);
    let host = report.host_paging.clone().unwrap();
    assert_eq!(host.double_paging, 2);
    assert_eq!((host.swap_ins, host.evictions, host.swap_outs), (3, 5, 4));
    let guest = report.paging.unwrap();
    assert_eq!((guest.evictions, guest.swap_outs), (2, 2));
}

fn nested_skylake() -> Config {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/skylake.toml");
    let mut config = Config::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap();
    config.mode = Mode::Nested;
    config
}

#[test]
fn a_host_limit_the_vms_fit_in_changes_nothing_but_adds_its_counts() {
    let trace = two_vms();
    let config = nested_skylake();
    let unlimited = run(&mut Simulator::new(&config).unwrap(), &trace);
    assert_eq!(unlimited.host_paging, None);
    for replacement in ["clock", "fifo", "random", "lru"] {
        let mut limited = config.clone();
        let host = limited.host.get_or_insert_with(Default::default);
        host.memory.resident = Some(ByteSize(64 << 20));
        host.memory.replacement = Some(toml::Value::from(replacement).try_into().unwrap());
        let mut report = run(&mut Simulator::new(&limited).unwrap(), &trace);
        let paging = report.host_paging.take().unwrap();
        let by_vm = std::mem::take(&mut report.host_paging_by_vm);
        assert!(by_vm.len() == 2 && by_vm.iter().all(|(_, c)| *c == Default::default()), "{replacement}");
        assert_eq!((paging.evictions, paging.swap_ins, paging.invalidations), (0, 0, 0), "{replacement}");
        let pages = report.faults + report.page_tables.iter().map(|l| l.nodes).sum::<u64>();
        assert_eq!(paging.resident_peak, pages, "{replacement}: both programs' pages and guest table nodes");
        assert_eq!(report, unlimited, "{replacement}");
    }
}

#[test]
fn under_shadow_paging_a_host_limit_the_vms_fit_in_changes_nothing_but_adds_its_counts() {
    let trace = two_vms();
    let mut config = nested_skylake();
    config.mode = Mode::Shadow;
    let unlimited = run(&mut Simulator::new(&config).unwrap(), &trace);
    for replacement in ["clock", "fifo", "random", "lru"] {
        let mut limited = config.clone();
        let host = limited.host.get_or_insert_with(Default::default);
        host.memory.resident = Some(ByteSize(64 << 20));
        host.memory.replacement = Some(toml::Value::from(replacement).try_into().unwrap());
        let mut report = run(&mut Simulator::new(&limited).unwrap(), &trace);
        let paging = report.host_paging.take().unwrap();
        report.host_paging_by_vm.clear();
        assert_eq!((paging.evictions, paging.swap_ins, paging.invalidations), (0, 0, 0), "{replacement}");
        assert_eq!(
            paging.resident_peak, report.faults,
            "{replacement}: the programs' pages (guest tables are not counted)"
        );
        assert_eq!(report, unlimited, "{replacement}");
    }
    // A tight one pages, and its counts add up by VM.
    let mut tight = config.clone();
    tight.host.get_or_insert_with(Default::default).memory.resident = Some(ByteSize(1 << 20));
    let report = run(&mut Simulator::new(&tight).unwrap(), &trace);
    let paging = report.host_paging.clone().unwrap();
    assert!(paging.swap_ins > 0 && paging.resident_peak <= 256);
    let summed: u64 = report.host_paging_by_vm.iter().map(|(_, c)| c.major_faults).sum();
    assert_eq!(summed, paging.swap_ins);
    assert!(report.exits.unwrap().shadow_fill >= paging.swap_ins, "each swap-in is a refill's");
}

#[test]
fn under_a_tight_host_limit_the_books_balance_in_every_policy() {
    let trace = two_vms();
    let mut seen = Vec::new();
    for (replacement, seed) in [("clock", 1), ("fifo", 1), ("random", 1), ("random", 1), ("random", 2), ("lru", 1)] {
        let mut config = nested_skylake();
        config.seed = seed;
        let host = config.host.get_or_insert_with(Default::default);
        host.memory.resident = Some(ByteSize(1 << 20));
        host.memory.replacement = Some(toml::Value::from(replacement).try_into().unwrap());
        let report = run(&mut Simulator::new(&config).unwrap(), &trace);
        let paging = report.host_paging.clone().unwrap();
        let faults = report.exits.as_ref().unwrap().host_page_fault;
        assert!(paging.swap_ins > 0, "{replacement}: 1 MiB holds neither program");
        // Every host fault maps a page (an EPT violation each); every
        // major one brings back a page evicted before; evicted pages are
        // swapped out at most once each; what stays fits.
        assert!(paging.swap_ins <= paging.evictions && paging.swap_outs <= paging.evictions, "{replacement}");
        assert!(faults - paging.evictions <= paging.resident_peak, "{replacement}: resident at the end");
        assert!(paging.resident_peak <= 256, "{replacement}");
        assert_eq!(paging.invalidations, paging.evictions, "{replacement}: clearing accessed bits does not invalidate");
        let by_vm = &report.host_paging_by_vm;
        assert_eq!(by_vm.iter().map(|(vm, _)| *vm).collect::<Vec<_>>(), [0, 1]);
        let sum =
            |f: fn(&mmusim_translate::walker::VmPagingCounters) -> u64| by_vm.iter().map(|(_, c)| f(c)).sum::<u64>();
        assert_eq!(
            [sum(|c| c.major_faults), sum(|c| c.evictions), sum(|c| c.swap_outs)],
            [paging.swap_ins, paging.evictions, paging.swap_outs],
            "{replacement}: the VMs' counts add up"
        );
        seen.push((replacement, seed, paging));
    }
    assert_eq!(seen[2].2, seen[3].2, "random is the seed's");
    assert_ne!(seen[2].2, seen[4].2, "another seed draws other victims");
}

#[test]
fn host_limits_are_checked_at_resolution() {
    let refused = |toml: &str, key: &str| {
        let error = Config::from_toml(toml).unwrap().resolve().unwrap_err().to_string();
        assert!(error.contains(key), "{toml}: {error}");
    };
    refused("mode = \"nested\"\n[host.memory]\nreplacement = \"clock\"\n", "host.memory.replacement");
    refused("mode = \"nested\"\n[host.memory]\nresident = \"6KiB\"\n", "host.memory.resident");
    let config =
        Config::from_toml("mode = \"nested\"\n[host.memory]\nresident = \"64MiB\"\n").unwrap().resolve().unwrap();
    let host = config.host.unwrap().memory;
    assert_eq!(host.replacement, Some(mmusim_translate::config::PageReplacement::Clock), "clock by default");
}

#[test]
fn double_paging_by_hand() {
    // One VM whose guest keeps 3 pages (FIFO) on a host that backs its
    // root and 2 more pages (16 KiB with its own root, FIFO); stores to a,
    // b, c, d, e. Host frames: root0, then each page's frame Fx.
    // 1-3. host: root0, Fa; Fb; Fc evicts root0 (dirty). Guest: a, b, c.
    // 4. d: the guest evicts a (dirty: to its swap; Fa is resident at the
    //    host, so no double paging) and frees Fa; root0 comes back (major)
    //    and evicts Fa (dirty), Fd evicts Fb (dirty).
    // 5. e: the guest takes Fa again (the frame it freed last) and evicts
    //    b, whose frame Fb the host swapped out in 4: the host brings Fb
    //    back first (double paging, a major fault), evicting Fc; then
    //    Fa comes back for e (major), evicting root0.
    let mut sim = small_host_with_guest_limit();
    let trace: Vec<Access> = (1..=5).map(|page| at(0, Kind::Store, page)).collect();
    let report = run(&mut sim, &trace);
    let host = report.host_paging.clone().unwrap();
    assert_eq!(host.double_paging, 1);
    assert_eq!(host.swap_ins, 3, "root0 in 4, Fb and Fa in 5");
    assert_eq!((host.evictions, host.swap_outs), (5, 5), "root0 came back in 4 to be written (a fault in d)");
    let costs = mmusim_translate::config::PagingCosts::default();
    assert_eq!(host.double_paging_cycles, u64::from(costs.major_fault));
    assert_eq!(
        report.exits.unwrap().host_page_fault,
        2 + 1 + 1 + 2 + 1,
        "Fb's swap-in is the hypervisor's, no EPT violation"
    );
    let guest = report.paging.unwrap();
    assert_eq!((report.faults, guest.evictions, guest.swap_outs), (5, 2, 2));
    // Without a host limit nothing is double-paged, and the guest pages
    // the same.
    let mut unlimited = small_host_with_guest_limit_toml();
    unlimited = unlimited.replace("[host.memory]\nresident = \"16KiB\"\nreplacement = \"fifo\"\n", "");
    let plain = run(&mut crate::common::machine(&unlimited), &trace);
    assert_eq!(plain.host_paging, None);
    assert_eq!(plain.paging.unwrap(), guest);
}

fn small_host_with_guest_limit_toml() -> String {
    let table = "format = \"custom\"\nindex_bits = [9]\noffset_bits = 12\nentry_bytes = 8\npage_sizes = [\"4KiB\"]\n";
    format!(
        "mode = \"nested\"\n[page_table]\n{table}[host.page_table]\n{table}\
         [memory]\nsize = \"64KiB\"\nresident = \"12KiB\"\nreplacement = \"fifo\"\n\
         [tlb.d]\nlevel = 1\nserves = \"data\"\nentries = 4\n\
         [host.memory]\nresident = \"16KiB\"\nreplacement = \"fifo\"\n"
    )
}

fn small_host_with_guest_limit() -> Simulator {
    crate::common::machine(&small_host_with_guest_limit_toml())
}

#[test]
fn a_balloon_inflating_and_deflating_by_hand() {
    // One VM whose guest keeps 4 pages (FIFO), no host limit; a code page
    // p0 fetched between stores to p1, p2, p3, then a balloon of 2 pages
    // from the 4th instruction, gone from the 5th.
    // - Instruction 4: the guest evicts p0 (clean) and p1 (dirty: to its
    //   swap) to make room; the driver takes their frames (F1, F0: the
    //   freed ones, last first) and the host frees both (an INVEPT each,
    //   which empties the TLBs). p0 then faults back (major: the balloon's
    //   doing) into a new frame (an EPT violation), evicting p2 (dirty).
    // - p1 faults back (the balloon's doing) into p2's frame, which kept
    //   its host backing, evicting p3 (dirty).
    // - Instruction 5: the balloon gives F0 and F1 back; p4 and p5 take
    //   them (F1 first) with room to spare, each an EPT violation: the
    //   host had freed them.
    let table = "format = \"custom\"\nindex_bits = [9]\noffset_bits = 12\nentry_bytes = 8\npage_sizes = [\"4KiB\"]\n";
    let mut sim = crate::common::machine(&format!(
        "mode = \"nested\"\n[page_table]\n{table}[host.page_table]\n{table}\
         [memory]\nsize = \"64KiB\"\nresident = \"16KiB\"\nreplacement = \"fifo\"\n\
         [tlb.d]\nlevel = 1\nserves = \"data\"\nentries = 4\n[tlb.i]\nlevel = 1\nserves = \"instruction\"\nentries = 4\n\
         [[balloon]]\nvm = 0\nat = 4\npages = 2\n[[balloon]]\nvm = 0\nat = 5\npages = 0\n"
    ));
    let fetch = Access::new(Kind::Fetch, 0, 4);
    let store = |page: u64| at(0, Kind::Store, page);
    let trace = [fetch, store(1), fetch, store(2), fetch, store(3), fetch, store(1), fetch, store(4), store(5)];
    let report = run(&mut sim, &trace);
    let guest = report.paging.clone().unwrap();
    assert_eq!((report.faults, report.major_faults), (6, 2));
    assert_eq!((guest.evictions, guest.swap_outs), (4, 3));
    assert_eq!(
        [
            guest.balloon_pages,
            guest.balloon_peak,
            guest.balloon_evictions,
            guest.balloon_major_faults,
            guest.balloon_host_frees
        ],
        [0, 2, 2, 2, 2]
    );
    assert_eq!(report.exits.unwrap().host_page_fault, 2 + 1 + 1 + 1 + 1 + 1 + 1);
    assert_eq!(report.walks.walks, 8, "every reference but the fetches that hit and the 5th");
    assert_eq!(report.guest_paging_by_vm.len(), 1);
    assert_eq!(report.guest_paging_by_vm[0], (0, guest));
}

#[test]
fn balloons_are_checked_at_resolution() {
    let refused = |toml: &str| {
        let error = Config::from_toml(toml).unwrap().resolve().unwrap_err().to_string();
        assert!(error.starts_with("balloon: "), "{toml}: {error}");
    };
    let step = "[[balloon]]\nvm = 0\npages = 2\n";
    refused(&format!("[memory]\nresident = \"1MiB\"\n{step}"));
    refused(&format!("mode = \"shadow\"\n[memory]\nresident = \"1MiB\"\n{step}"));
    refused(&format!("mode = \"nested\"\n{step}"));
    refused("mode = \"nested\"\n[memory]\nresident = \"8KiB\"\n[[balloon]]\nvm = 0\npages = 2\n");
    refused(&format!("mode = \"nested\"\n[memory]\nresident = \"1MiB\"\n{step}{step}"));
    // The huge-page pool comes out of the limit first: 4 MiB of pool and
    // 1500 pages (5.9 MiB) do not fit in 8 MiB, though 1500 pages alone do.
    let pooled = |pool: u32| {
        format!(
            "mode = \"nested\"\n[pages]\npolicy = \"thp\"\n{}[memory]\nresident = \"8MiB\"\n[[balloon]]\nvm = 0\npages = 1500\n",
            if pool > 0 { format!("huge_pool = {pool}\n") } else { String::new() }
        )
    };
    refused(&pooled(2));
    assert!(Config::from_toml(&pooled(0)).unwrap().resolve().is_ok());
    let resolved = Config::from_toml(
        "mode = \"nested\"\n[memory]\nresident = \"1MiB\"\n\
         [[balloon]]\nvm = 1\nat = 9\npages = 1\n[[balloon]]\nvm = 0\nat = 9\npages = 1\n[[balloon]]\nvm = 1\npages = 3\n",
    )
    .unwrap()
    .resolve()
    .unwrap();
    let order: Vec<(u64, u16)> = resolved.balloon.iter().map(|s| (s.at, s.vm)).collect();
    assert_eq!(order, [(0, 1), (9, 0), (9, 1)]);
}

#[test]
fn host_evictions_leave_no_stale_nested_tlb_entry_even_within_one_walk() {
    // A nested TLB and a walk memory that reads host-physical addresses
    // (a nested-TLB hit looks the host table up for the address, and
    // finds it mapped), under a host limit so tight that a walk's own host
    // faults evict pages it translated earlier.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/skylake.toml");
    let text = std::fs::read_to_string(path).unwrap() + "\n[nested.tlb]\nentries = 32\nways = 4\n";
    let mut base = Config::from_toml(&text).unwrap();
    base.mode = Mode::Nested;
    let trace = two_vms();
    for vm_tags in [false, true] {
        let mut config = base.clone();
        config.context.vm_tags = vm_tags;
        config.context.switch = toml::Value::from("tagged").try_into().unwrap();
        let host = config.host.get_or_insert_with(Default::default);
        host.memory.resident = Some(ByteSize(96 << 10));
        config.walk = toml::from_str(
            "memory = \"cache\"\n[cache]\ncapacity = \"64KiB\"\nways = 4\nhit_latency = 4\nmiss_latency = 200\n",
        )
        .unwrap();
        let report = run(&mut Simulator::new(&config).unwrap(), &trace);
        let paging = report.host_paging.unwrap();
        assert!(paging.evictions > 1000 && paging.swap_ins > 1000, "vm_tags {vm_tags}: {paging:?}");
        let nested_tlb = report.nested.unwrap().tlb.unwrap();
        assert!(nested_tlb.invalidated > 0, "vm_tags {vm_tags}: host evictions drop nested-TLB entries");
    }
}
