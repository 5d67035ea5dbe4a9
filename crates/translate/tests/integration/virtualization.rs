//! Nested and shadow paging, context switches and tags: every figure here
//! follows from the table geometry or was worked out by hand.

use crate::common::{load, machine, real_trace, run};
use mmusim_trace::{Access, Kind};
use mmusim_translate::SimReport;

#[test]
fn a_cold_nested_walk_without_caches_reads_24_entries() {
    let report = run(&mut machine("mode = \"nested\"\n"), &[load(0x40_0000)]);
    assert_eq!(report.walks.references, 24);
    let nested = report.nested.unwrap().counters;
    assert_eq!((nested.guest_references, nested.host_references), (4, 20));
}

/// Levels a walk reads for a page of `size` in a table of `levels` levels
/// of 9 bits (x86-64) or 10 bits (x86-32).
fn depth(format: &str, size: &str) -> u64 {
    match (format, size) {
        ("x86-64-4level", "4KiB") => 4,
        ("x86-64-4level", "2MiB") => 3,
        ("x86-64-4level", "1GiB") => 2,
        ("x86-64-5level", "4KiB") => 5,
        ("x86-64-5level", "2MiB") => 4,
        ("x86-64-5level", "1GiB") => 3,
        ("x86-32", "4KiB") => 2,
        ("x86-32", "4MiB") => 1,
        _ => unreachable!(),
    }
}

#[test]
fn cacheless_nested_walks_read_g_plus_1_times_h_plus_1_minus_1_entries() {
    let guests = [
        ("x86-64-4level", ["4KiB", "2MiB", "1GiB"].as_slice()),
        ("x86-64-5level", ["4KiB", "2MiB", "1GiB"].as_slice()),
        ("x86-32", ["4KiB", "4MiB"].as_slice()),
    ];
    let hosts = [("x86-64-4level", ["4KiB", "2MiB", "1GiB"]), ("x86-64-5level", ["4KiB", "2MiB", "1GiB"])];
    let mut checked = 0;
    for (guest, guest_sizes) in guests {
        for &guest_size in guest_sizes {
            for (host, host_sizes) in hosts {
                for host_size in host_sizes {
                    let config = format!(
                        "mode = \"nested\"\n[page_table]\nformat = \"{guest}\"\n[pages]\nsize = \"{guest_size}\"\n\
                         [host.page_table]\nformat = \"{host}\"\n[host.pages]\nsize = \"{host_size}\"\n"
                    );
                    let (g, h) = (depth(guest, guest_size), depth(host, host_size));
                    // Two walks: the first cold, the second to another page;
                    // without caches both read every entry.
                    let report = run(&mut machine(&config), &[load(0x40_0000), load(0x4000_0000)]);
                    assert_eq!(report.walks.walks, 2);
                    assert_eq!(
                        report.walks.references,
                        2 * ((g + 1) * (h + 1) - 1),
                        "{guest} {guest_size} on {host} {host_size}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 48);
    // The seed figures, by name.
    for (guest, gsize, host, hsize, refs) in [
        ("x86-64-4level", "4KiB", "x86-64-4level", "4KiB", 24),
        ("x86-64-5level", "4KiB", "x86-64-5level", "4KiB", 35),
        ("x86-64-4level", "4KiB", "x86-64-4level", "2MiB", 19),
        ("x86-64-4level", "2MiB", "x86-64-4level", "2MiB", 15),
        ("x86-64-4level", "1GiB", "x86-64-4level", "1GiB", 8),
    ] {
        let config = format!(
            "mode = \"nested\"\n[page_table]\nformat = \"{guest}\"\n[pages]\nsize = \"{gsize}\"\n\
             [host.page_table]\nformat = \"{host}\"\n[host.pages]\nsize = \"{hsize}\"\n"
        );
        assert_eq!(run(&mut machine(&config), &[load(0x40_0000)]).walks.references, refs);
    }
}

#[test]
fn nested_translations_are_cached_at_the_smaller_page_size() {
    // Guest 2 MiB pages on 4 KiB host pages: a 4 KiB translation.
    let mut sim =
        machine("mode = \"nested\"\n[pages]\nsize = \"2MiB\"\n[tlb.l1d]\nlevel = 1\nserves = \"data\"\nentries = 8\n");
    let report = run(&mut sim, &[load(0x40_0000), load(0x40_1000)]);
    assert_eq!(report.walks.walks, 2, "the second 4 KiB piece of the guest page walks again");
    assert_eq!(report.walks.walks_by_size[0], 2);
    // Guest 4 KiB on host 2 MiB: 4 KiB as well; 2 MiB on 2 MiB: one walk.
    let mut sim = machine(
        "mode = \"nested\"\n[pages]\nsize = \"2MiB\"\n[host.pages]\nsize = \"2MiB\"\n[tlb.l1d]\nlevel = 1\nserves = \"data\"\nentries = 8\n",
    );
    let report = run(&mut sim, &[load(0x40_0000), load(0x40_1000)]);
    assert_eq!((report.walks.walks, report.walks.walks_by_size[1]), (1, 1));
}

#[test]
fn the_nested_tlb_and_host_caches_cut_the_host_dimension() {
    // Walk 1 (cold): 4 guest entries, each after a 4-reference host walk,
    // then the data address's host walk: 24. Walk 2, another page of the
    // same 2 MiB region: the guest entries sit in the same four guest table
    // pages, all in the nested TLB now, so only the new data page's
    // guest-physical address walks the host: 4 + 4 = 8.
    let nested_tlb = "mode = \"nested\"\n[nested.tlb]\nentries = 16\n";
    let report = run(&mut machine(nested_tlb), &[load(0x40_0000), load(0x40_1000)]);
    assert_eq!(report.walks.references, 24 + 8);
    let nested = report.nested.unwrap();
    assert_eq!(nested.counters.host_translations, 10);
    assert_eq!(nested.counters.host_walks, 6);
    let tlb = nested.tlb.unwrap();
    assert_eq!((tlb.total_lookups(), tlb.total_misses()), (10, 6));
    // Add host PDE/PDPTE/PML4E caches. Guest memory is handed out in order:
    // the four guest table pages (guest-physical 0x0 to 0x3000) and the data
    // pages (0x4000, 0x5000) share one host PDE. Walk 1: the first host walk
    // reads 4 entries, the next four find the PDE cached and read 1 each:
    // 4 guest + 4 + 1 + 1 + 1 + 1 host = 12. Walk 2: 4 guest (their pages in
    // the nested TLB) + 1 for the new data page = 5.
    let with_host_pwc = format!(
        "{nested_tlb}[nested.pwc]\nkind = \"split\"\n[nested.pwc.levels.l2]\nentries = 8\n[nested.pwc.levels.l3]\nentries = 4\n[nested.pwc.levels.l4]\nentries = 2\n"
    );
    let report = run(&mut machine(&with_host_pwc), &[load(0x40_0000), load(0x40_1000)]);
    assert_eq!(report.walks.references, 12 + 5);
    // And a guest PDE cache: walk 2 reads only the guest PTE (its page in
    // the nested TLB), then 1 host entry for the data page: 12 + 2.
    let with_guest_pwc = format!("{with_host_pwc}[pwc]\nkind = \"split\"\n[pwc.levels.l2]\nentries = 8\n");
    let report = run(&mut machine(&with_guest_pwc), &[load(0x40_0000), load(0x40_1000)]);
    assert_eq!(report.walks.references, 12 + 2);
}

#[test]
fn nested_walks_fault_in_guest_and_host() {
    let report = run(&mut machine("mode = \"nested\"\n"), &[load(0x40_0000), load(0x40_1000), load(0x40_0008)]);
    // Two guest pages: two guest faults. Host: the guest's 4 table pages and
    // 2 data pages, each guest-physical page mapped on first touch.
    assert_eq!(report.faults, 2);
    let exits = report.exits.unwrap();
    assert_eq!(exits.host_page_fault, 6);
    assert_eq!(exits.cycles, 6 * (1000 + 4000));
    let host = report.host_page_tables.unwrap();
    assert_eq!(host.iter().map(|l| l.nodes).collect::<Vec<_>>(), vec![1, 1, 1, 1]);
}

#[test]
fn shadow_walks_cost_what_native_walks_cost_and_exit_on_guest_faults() {
    let report = run(&mut machine("mode = \"shadow\"\n"), &[load(0x40_0000), load(0x40_1000)]);
    assert_eq!(report.walks.references, 8, "two cold native walks of the shadow table");
    assert_eq!(report.faults, 2);
    let exits = report.exits.unwrap();
    assert_eq!((exits.page_table_update, exits.shadow_fill, exits.cr3_write), (2, 0, 0));
    assert_eq!(exits.cycles, 2 * (1000 + 4000));
    // One shadow table (four nodes) beside the guest's own four.
    assert_eq!(report.shadow_page_tables.unwrap().iter().map(|l| l.nodes).sum::<u64>(), 4);
    assert_eq!(report.page_tables.iter().map(|l| l.nodes).sum::<u64>(), 4);
}

#[test]
fn shadow_entries_smaller_than_the_guest_page_fill_on_hidden_faults() {
    // Guest 2 MiB pages on host 4 KiB: the shadow maps 4 KiB. The first touch
    // faults in the guest (a page-table update); the next 4 KiB piece of the
    // same guest page is a hidden fault.
    let report = run(
        &mut machine("mode = \"shadow\"\n[pages]\nsize = \"2MiB\"\n"),
        &[load(0x40_0000), load(0x40_1000), load(0x40_2000)],
    );
    let exits = report.exits.unwrap();
    assert_eq!((exits.page_table_update, exits.shadow_fill), (1, 2));
    assert_eq!(report.faults, 1);
}

fn in_context(context: u16, vm: u16, access: Access) -> Access {
    Access { context, vm, ..access }
}

#[test]
fn shadow_exits_are_guest_faults_plus_guest_context_switches() {
    // Two address spaces of one VM taking turns, each touching its own
    // pages: every switch is a CR3 write, every first touch a guest fault.
    let mut trace = Vec::new();
    for round in 0..20u64 {
        for context in 0..2u16 {
            trace.push(in_context(context, 0, load(0x40_0000 + (round % 7) * 0x1000)));
            trace.push(in_context(context, 0, load(0x7f00_0000 + round * 0x1000)));
        }
    }
    let report = run(&mut machine("mode = \"shadow\"\n[tlb.l1d]\nlevel = 1\nserves = \"data\"\nentries = 4\n"), &trace);
    let exits = report.exits.unwrap();
    assert_eq!(report.context.context_switches, 39);
    assert_eq!(exits.cr3_write, 39);
    assert_eq!(exits.page_table_update, report.faults);
    assert_eq!(report.faults, 2 * (7 + 20));
    assert_eq!(exits.total(), report.faults + report.context.context_switches);
}

const TWO_LEVELS: &str = r#"
[tlb.l1d]
level = 1
serves = "data"
entries = 4
[tlb.l1i]
level = 1
serves = "instruction"
entries = 4
[tlb.l2]
level = 2
serves = "unified"
entries = 16
ways = 4
[pwc]
kind = "split"
[pwc.levels.l2]
entries = 4
"#;

/// Two address spaces taking turns every `run` references, over pages of
/// their own and pages at the same addresses.
fn alternating(vms: bool, run_length: u64) -> Vec<Access> {
    let mut trace = Vec::new();
    for i in 0..600u64 {
        let context = ((i / run_length) % 2) as u16;
        let (context, vm) = if vms { (0, context) } else { (context, 0) };
        let page = (i * 7) % 13;
        trace.push(in_context(context, vm, Access::new(Kind::Fetch, 0x40_0000 + (i % 3) * 0x1000, 4)));
        trace.push(in_context(context, vm, load(0x1000_0000 + page * 0x1000)));
    }
    trace
}

fn tlb_counts(report: &SimReport) -> Vec<(u64, u64)> {
    report.tlbs.iter().map(|t| (t.counters.total_lookups(), t.counters.total_misses())).collect()
}

#[test]
fn flush_empties_everything_at_every_switch() {
    // 600 steps in runs of 10: 60 runs, 59 switches.
    let report = run(&mut machine(&format!("{TWO_LEVELS}[context]\nswitch = \"flush\"\n")), &alternating(false, 10));
    assert_eq!(report.context.context_switches, 59);
    assert_eq!(report.context.flushes, 59);
    assert!(report.context.entries_flushed > 59);
    // Each switch empties the TLBs, so the first fetch and load after it
    // miss everywhere and walk.
    assert!(report.walks.walks >= 2 * 60);
}

#[test]
fn tagged_keeps_entries_across_switches() {
    let tagged = run(&mut machine(TWO_LEVELS), &alternating(false, 10));
    let flushed = run(&mut machine(&format!("{TWO_LEVELS}[context]\nswitch = \"flush\"\n")), &alternating(false, 10));
    assert_eq!((tagged.context.flushes, tagged.context.id_recycles, tagged.context.entries_flushed), (0, 0, 0));
    assert!(tagged.walks.walks < flushed.walks.walks);
    // With room for both spaces' 16 pages each, walks are only first touches.
    let roomy = TWO_LEVELS.replace("entries = 16", "entries = 64");
    let tagged = run(&mut machine(&roomy), &alternating(false, 10));
    assert_eq!(tagged.walks.walks, tagged.walks.faulting_walks);
    assert_eq!(tagged.faults, 32);
}

#[test]
fn a_pool_of_one_id_behaves_like_flush_for_two_alternating_spaces() {
    for run_length in [1, 3, 10] {
        let trace = alternating(false, run_length);
        let flushed = run(&mut machine(&format!("{TWO_LEVELS}[context]\nswitch = \"flush\"\n")), &trace);
        let one_id = run(&mut machine(&format!("{TWO_LEVELS}[context]\nids = 1\n")), &trace);
        assert_eq!(tlb_counts(&one_id), tlb_counts(&flushed), "runs of {run_length}");
        assert_eq!(one_id.walks, flushed.walks, "runs of {run_length}");
        // Every switch recycles the one id (the second space finds the pool
        // full at once).
        assert_eq!(one_id.context.id_recycles, flushed.context.flushes);
        assert_eq!(one_id.context.entries_flushed, flushed.context.entries_flushed);
    }
}

#[test]
fn tagged_equals_flush_with_one_context() {
    let trace: Vec<Access> = alternating(false, 10).into_iter().map(|a| Access { context: 0, ..a }).collect();
    let tagged = run(&mut machine(TWO_LEVELS), &trace);
    let flushed = run(&mut machine(&format!("{TWO_LEVELS}[context]\nswitch = \"flush\"\n")), &trace);
    assert_eq!(tagged, SimReport { ..flushed.clone() });
}

#[test]
fn vm_switches_flush_only_without_vm_tags() {
    let trace = alternating(true, 10);
    let tagged = run(&mut machine(&format!("mode = \"nested\"\n{TWO_LEVELS}")), &trace);
    assert_eq!((tagged.context.vm_switches, tagged.context.flushes), (59, 0));
    let untagged = run(&mut machine(&format!("mode = \"nested\"\n{TWO_LEVELS}[context]\nvm_tags = false\n")), &trace);
    assert_eq!((untagged.context.vm_switches, untagged.context.flushes), (59, 59));
    assert!(untagged.walks.walks > tagged.walks.walks);
    // Each VM has its own guest memory and tables; the host maps both.
    assert_eq!(tagged.vms, 2);
    assert_eq!(tagged.address_spaces, 2);
}

#[test]
fn timer_exits_come_every_interval_and_flush_only_without_vm_tags() {
    let trace: Vec<Access> = alternating(false, 10).into_iter().map(|a| Access { context: 0, ..a }).collect();
    let report = run(&mut machine(&format!("mode = \"nested\"\n{TWO_LEVELS}[exits]\ntimer_interval = 50\n")), &trace);
    let exits = report.exits.unwrap();
    assert_eq!(exits.timer, 600 / 50);
    assert_eq!(report.context.flushes, 0);
    let report = run(
        &mut machine(&format!(
            "mode = \"nested\"\n{TWO_LEVELS}[context]\nvm_tags = false\n[exits]\ntimer_interval = 50\n"
        )),
        &trace,
    );
    assert_eq!((report.exits.unwrap().timer, report.context.flushes), (12, 12));
}

fn preset(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs").join(format!("{name}.toml")),
    )
    .unwrap()
}

#[test]
fn native_nested_and_shadow_agree_on_every_tlb_hit_and_miss() {
    for trace_name in ["sort.lackey.zst", "randaccess.lackey.zst"] {
        let trace = real_trace(trace_name);
        let base = preset("skylake");
        for host_size in ["4KiB", "2MiB"] {
            let native = run(&mut machine(&base), &trace);
            let host = format!("[host.pages]\nsize = \"{host_size}\"\n");
            let nested = run(&mut machine(&format!("mode = \"nested\"\n{base}{host}")), &trace);
            let shadow = run(&mut machine(&format!("mode = \"shadow\"\n{base}{host}")), &trace);
            for other in [&nested, &shadow] {
                assert_eq!(
                    tlb_counts(other),
                    tlb_counts(&native),
                    "{trace_name}, {} on {host_size} host pages",
                    other.mode
                );
                assert_eq!(other.walks.walks, native.walks.walks);
                assert_eq!(other.faults, native.faults);
            }
            // Only the cost of a walk differs.
            assert!(nested.walks.references > native.walks.references);
            assert_eq!(shadow.walks.references, native.walks.references);
            assert_eq!(shadow.exits.as_ref().unwrap().page_table_update, native.faults);
        }
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn accesses() -> impl Strategy<Value = Vec<Access>> {
        let access = (0u64..64, 0u16..3, prop::sample::select(Kind::ALL.to_vec())).prop_map(|(page, context, kind)| {
            let addr = if page < 40 { page << 12 } else { (page - 39) * 0x8_0123_4000 };
            Access { context, ..Access::new(kind, addr, 8) }
        });
        prop::collection::vec(access, 1..400)
    }

    const CACHES: [&str; 4] = [
        "[nested.tlb]\nentries = 8\nways = 2\n",
        "[nested.pwc]\nkind = \"split\"\n[nested.pwc.levels.l2]\nentries = 4\n[nested.pwc.levels.l4]\nentries = 1\n",
        "[nested.pwc]\nkind = \"unified\"\nentries = 8\n[pwc]\nkind = \"unified\"\nentries = 4\n",
        "[pwc]\nkind = \"split\"\n[pwc.levels.l3]\nentries = 2\n[nested.tlb]\nentries = 4\n",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn caches_never_add_references_and_walks_stay_within_the_bound(
            trace in accesses(),
            which in 0..CACHES.len(),
            host_large in any::<bool>(),
        ) {
            let host = if host_large { "[host.pages]\nsize = \"2MiB\"\n" } else { "" };
            let tlbs = "[tlb.l1d]\nlevel = 1\nserves = \"data\"\nentries = 4\n";
            let mut bare_sim = machine(&format!("mode = \"nested\"\n{tlbs}{host}"));
            let mut cached_sim = machine(&format!("mode = \"nested\"\n{tlbs}{host}{}", CACHES[which]));
            let bare = run(&mut bare_sim, &trace);
            let cached = run(&mut cached_sim, &trace);
            prop_assert_eq!(cached.walks.walks, bare.walks.walks);
            prop_assert!(cached.walks.references <= bare.walks.references);
            // 4-level guest on a 4-level host: at most (4+1)(4+1)-1 per walk
            // (with 2 MiB host pages (4+1)(3+1)-1), and exactly that without
            // caches.
            let bound = if host_large { 19 } else { 24 };
            prop_assert_eq!(bare_sim.histograms().0.max(), Some(bound));
            prop_assert_eq!(bare_sim.histograms().0.buckets().count(), 1);
            prop_assert!(cached_sim.histograms().0.max().unwrap() <= bound);
        }
    }
}
