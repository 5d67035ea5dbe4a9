//! Scenarios whose every lookup, walk and reference was worked out by hand.

use crate::common::{load, machine, run};
use mmusim_trace::{Access, Kind};
use mmusim_translate::SimReport;

fn tlb<'a>(report: &'a SimReport, name: &str) -> &'a mmusim_translate::sim::TlbReport {
    report.tlbs.iter().find(|t| t.name == name).unwrap()
}

/// (lookups, hits) of a TLB.
fn lookups_hits(report: &SimReport, name: &str) -> (u64, u64) {
    let t = tlb(report, name);
    (t.counters.total_lookups(), t.counters.total_hits())
}

const TWO_LEVEL: &str = r#"
[tlb.l1d]
level = 1
serves = "data"
entries = 2
page_sizes = ["4KiB"]

[tlb.l2]
level = 2
serves = "unified"
latency = 7
entries = 4
ways = 2
page_sizes = ["4KiB"]

[walk]
latency = 10
"#;

#[test]
fn two_level_lru_hierarchy_step_by_step() {
    // L1D: 2 entries, fully associative LRU. L2: 4 entries, 2 ways, so 2
    // sets chosen by page number parity. Pages 0x10 0x11 0x12 0x10 0x14 0x11:
    //  1. 0x10  L1 miss, L2 miss (set 0)  walk, 4 refs  L2 s0 [10]     L1 [10]
    //  2. 0x11  L1 miss, L2 miss (set 1)  walk, 4 refs  L2 s1 [11]     L1 [10 11]
    //  3. 0x12  L1 miss, L2 miss (set 0)  walk, 4 refs  L2 s0 [10 12]  L1 [11 12]
    //  4. 0x10  L1 miss, L2 hit (s0: 10 now MRU, 12 LRU)               L1 [12 10]
    //  5. 0x14  L1 miss, L2 miss (set 0)  walk, 4 refs  L2 s0 [10 14]  L1 [10 14]
    //  6. 0x11  L1 miss, L2 hit (s1)                                   L1 [14 11]
    //  7. 0x11  L1 hit
    let mut sim = machine(TWO_LEVEL);
    let pages = [0x10u64, 0x11, 0x12, 0x10, 0x14, 0x11, 0x11];
    let report = run(&mut sim, &pages.map(|p| load(p << 12)));
    assert_eq!(lookups_hits(&report, "l1d"), (7, 1));
    assert_eq!(lookups_hits(&report, "l2"), (6, 2));
    assert_eq!(report.walks.walks, 4);
    // No page-walk cache: every walk reads all four levels.
    assert_eq!(report.walks.references, 16);
    assert_eq!(report.walks.cycles, 160);
    // L2 probed six times at 7 cycles, plus the walks.
    assert_eq!(report.run.translation_cycles, 6 * 7 + 160);
    // Four pages of one 2 MiB region: one node per level.
    assert_eq!(report.page_tables.iter().map(|l| l.nodes).collect::<Vec<_>>(), vec![1, 1, 1, 1]);
    assert_eq!(report.faults, 4);
    assert_eq!(report.walks.accessed_bits_set, 4);
    assert_eq!(tlb(&report, "l2").counters.evictions, 1, "0x12 by 0x14");
    assert_eq!(tlb(&report, "l1d").counters.evictions, 4, "12 evicts 10, 10 evicts 11, 14 evicts 12, 11 evicts 10");
}

#[test]
fn fifo_and_lru_differ_where_a_hit_reorders() {
    // One fully associative 2-entry L1: A B A C A. LRU: C evicts B, A hits.
    // FIFO: C evicts A (first in) despite its hit, so the last A misses.
    let pages = [0x1u64, 0x2, 0x1, 0x3, 0x1].map(|p| load(p << 12));
    for (policy, hits) in [("lru", 2), ("fifo", 1)] {
        let mut sim =
            machine(&format!("[tlb.l1d]\nlevel = 1\nserves = \"data\"\nentries = 2\nreplacement = \"{policy}\"\n"));
        assert_eq!(lookups_hits(&run(&mut sim, &pages), "l1d"), (5, hits), "{policy}");
    }
}

#[test]
fn cold_walks_read_one_entry_per_level_to_the_leaf() {
    for (table, size, refs) in [
        ("x86-64-4level", "4KiB", 4),
        ("x86-64-4level", "2MiB", 3),
        ("x86-64-4level", "1GiB", 2),
        ("x86-64-5level", "4KiB", 5),
        ("x86-64-5level", "1GiB", 3),
        ("x86-32", "4KiB", 2),
        ("x86-32", "4MiB", 1),
        ("flat", "4KiB", 1),
    ] {
        let mut sim = machine(&format!("[page_table]\nformat = \"{table}\"\n[pages]\nsize = \"{size}\"\n"));
        let report = run(&mut sim, &[load(0x1234_5678)]);
        assert_eq!(report.walks.references, refs, "{table} with {size} pages");
    }
}

#[test]
fn split_pwc_skips_to_below_the_deepest_hit() {
    // PDE cache (l2) and PDPTE cache (l3). Walks:
    //  a) 0x0040_0000  cold: 4 refs; caches its PML4E? no l4 cache; PDPTE, PDE.
    //  b) 0x0040_1000  same 2 MiB region: PDE hit, 1 ref (the PTE).
    //  c) 0x0060_0000  next 2 MiB region, same 1 GiB: PDE miss, PDPTE hit,
    //     2 refs (PDE, PTE).
    //  d) 0x4000_0000  next 1 GiB: both miss, 4 refs.
    let mut sim = machine(
        "[pwc]\nkind = \"split\"\nlatency = 2\n[pwc.levels.l2]\nentries = 4\n[pwc.levels.l3]\nentries = 2\n[walk]\nlatency = 10\n",
    );
    let report = run(&mut sim, &[load(0x40_0000), load(0x40_1000), load(0x60_0000), load(0x4000_0000)]);
    assert_eq!(report.walks.references, 4 + 1 + 2 + 4);
    // Every walk probes the caches once (2 cycles) before its references.
    assert_eq!(report.walks.cycles, 4 * 2 + 11 * 10);
    let pwc = report.pwc.unwrap();
    // Table level 2 is the PD (the l2 cache), level 1 the PDPT (l3).
    assert_eq!((pwc.lookups[2], pwc.hits[2]), (4, 1));
    assert_eq!((pwc.lookups[1], pwc.hits[1]), (4, 2), "b and c hit the PDPTE cache");
    assert_eq!(report.walks.references_by_level[..4], [2, 2, 3, 4]);
}

#[test]
fn split_pwc_never_caches_leaf_entries() {
    // With 2 MiB pages the PDE is the leaf: the PDE cache never holds it, so
    // a second walk in the same region still reads the PDE (the PDPTE cache
    // lets it skip the rest): 3 refs cold, then 1.
    let mut sim = machine("[pages]\nsize = \"2MiB\"\n[pwc]\nkind = \"split\"\n[pwc.levels.l2]\nentries = 4\n[pwc.levels.l3]\nentries = 4\n");
    let report = run(&mut sim, &[load(0x40_0000), load(0x60_0000)]);
    assert_eq!(report.walks.references, 3 + 1);
    assert_eq!(report.pwc.unwrap().hits[2], 0);
}

#[test]
fn unified_pwc_saves_references_not_probes() {
    // The second walk in the same 2 MiB region finds the PML4E, PDPTE and
    // PDE in the cache (3 probes, 1 cycle each) and reads only the PTE.
    let mut sim = machine("[pwc]\nkind = \"unified\"\nentries = 16\nways = 4\nlatency = 1\n[walk]\nlatency = 10\n");
    let report = run(&mut sim, &[load(0x40_0000), load(0x40_1000)]);
    assert_eq!(report.walks.references, 4 + 1);
    assert_eq!(report.walks.cycles, (3 + 40) + (3 + 10));
    let pwc = report.pwc.unwrap();
    assert_eq!(pwc.lookups[..3], [2, 2, 2]);
    assert_eq!(pwc.hits[..3], [1, 1, 1]);
}

#[test]
fn page_crossing_references_look_up_both_pages_lower_first() {
    let mut sim = machine("[tlb.l1d]\nlevel = 1\nserves = \"data\"\nentries = 8\n");
    // 8 bytes at 0xffc cross into page 1; then a load in page 1 hits.
    let report = run(&mut sim, &[Access::new(Kind::Load, 0xffc, 8), load(0x1008)]);
    assert_eq!(report.page_lookups()[Kind::Load], 3);
    assert_eq!(report.run.page_crossing_references, 1);
    assert_eq!(lookups_hits(&report, "l1d"), (3, 1));
    // The same bytes inside one 2 MiB page are one lookup.
    let mut sim = machine("[pages]\nsize = \"2MiB\"\n[tlb.l1d]\nlevel = 1\nserves = \"data\"\nentries = 8\n");
    let report = run(&mut sim, &[Access::new(Kind::Load, 0xffc, 8)]);
    assert_eq!((report.page_lookups()[Kind::Load], report.run.page_crossing_references), (1, 0));
}

#[test]
fn fetches_and_data_take_their_own_paths() {
    let mut sim = machine(
        "[tlb.l1i]\nlevel = 1\nserves = \"instruction\"\nentries = 4\n[tlb.l1d]\nlevel = 1\nserves = \"data\"\nentries = 4\n[tlb.l2]\nlevel = 2\nserves = \"unified\"\nentries = 16\n",
    );
    // A fetch and a load of the same page: the fetch walks and fills L1I and
    // L2; the load misses L1D but hits L2.
    let report = run(&mut sim, &[Access::new(Kind::Fetch, 0x40_1000, 4), load(0x40_1008)]);
    assert_eq!(lookups_hits(&report, "l1i"), (1, 0));
    assert_eq!(lookups_hits(&report, "l1d"), (1, 0));
    assert_eq!(lookups_hits(&report, "l2"), (2, 1));
    assert_eq!(report.walks.walks, 1);
    assert_eq!(report.run.walks[Kind::Fetch], 1);
    assert_eq!(report.instructions(), 1);
}

#[test]
fn tlbs_only_cache_the_sizes_they_hold() {
    // L1 holds 4 KiB pages only, L2 holds 2 MiB: with 2 MiB pages every
    // lookup misses L1 (which never fills) and hits L2 after the first walk.
    let mut sim = machine(
        "[pages]\nsize = \"2MiB\"\n[tlb.l1d]\nlevel = 1\nserves = \"data\"\nentries = 4\npage_sizes = [\"4KiB\"]\n[tlb.l2]\nlevel = 2\nserves = \"data\"\nentries = 4\npage_sizes = [\"2MiB\"]\n",
    );
    let report = run(&mut sim, &[load(0x40_0000), load(0x40_0000), load(0x41_0000)]);
    assert_eq!(lookups_hits(&report, "l1d"), (3, 0));
    assert_eq!(lookups_hits(&report, "l2"), (3, 2));
    assert_eq!(tlb(&report, "l1d").counters.fills, 0);
    // Misses are counted by the size of the page they resolved to (index 1: 2 MiB).
    assert_eq!(tlb(&report, "l1d").counters.misses_by_size[1], 3);
}

#[test]
fn dirty_bits_set_on_first_write_and_assist_on_clean_hits() {
    let mut sim = machine("[tlb.l1d]\nlevel = 1\nserves = \"data\"\nentries = 4\n");
    let store = |addr| Access::new(Kind::Store, addr, 8);
    // Load A (walk sets A bit, caches it clean); store A hits clean: an
    // assist that sets the PTE's D bit; store A again: dirty, no assist.
    // Store B: the walk sets A and D, cached dirty; store B: no assist.
    let report = run(&mut sim, &[load(0x1000), store(0x1000), store(0x1008), store(0x2000), store(0x2000)]);
    assert_eq!(report.walks.accessed_bits_set, 2);
    assert_eq!(report.walks.dirty_bits_set, 1, "B's walk");
    assert_eq!(report.run.dirty_assists, 1);
    assert_eq!(report.run.dirty_bits_set_by_assists, 1, "A's");
}

#[test]
fn thp_promotion_replaces_small_pages_and_their_cached_translations() {
    // promote_after = 2: the first touch of the region maps a 4 KiB page; the
    // second distinct page promotes the region to one 2 MiB page, dropping
    // the cached 4 KiB translation and freeing the page-table node.
    let mut sim =
        machine("[pages]\npolicy = \"thp\"\npromote_after = 2\n[tlb.l1d]\nlevel = 1\nserves = \"data\"\nentries = 8\n");
    let report = run(&mut sim, &[load(0x40_0000), load(0x40_1000), load(0x40_0000), load(0x40_5000)]);
    assert_eq!(report.promotions, 1);
    assert_eq!(report.run.promotion_invalidations, 1, "the 4 KiB entry of 0x400000");
    // Walks: the cold 4 KiB one and the promoting one; the rest hit the 2 MiB entry.
    assert_eq!(report.walks.walks, 2);
    assert_eq!(report.walks.walks_by_size[..2], [1, 1]);
    assert_eq!(lookups_hits(&report, "l1d"), (4, 2));
    assert_eq!(report.page_tables.iter().map(|l| l.nodes).collect::<Vec<_>>(), vec![1, 1, 1, 0], "the PT was freed");
    // With promote_after = 1 the region is a 2 MiB page from its first touch.
    let mut sim = machine("[pages]\npolicy = \"thp\"\n");
    let report = run(&mut sim, &[load(0x40_0000), load(0x40_1000)]);
    assert_eq!((report.walks.walks, report.promotions, report.walks.walks_by_size[1]), (2, 0, 2));
}

#[test]
fn ranges_give_large_pages_only_where_a_whole_page_fits() {
    // 2 MiB pages for 0x400000..0x800000 (two aligned 2 MiB pages), and for
    // 0x900000..0xa00000, which holds no whole aligned 2 MiB page.
    let mut sim = machine(
        "[pages]\npolicy = \"ranges\"\nranges = [{ start = 0x400000, end = 0x800000, size = \"2MiB\" }, { start = 0x900000, end = 0xa00000, size = \"2MiB\" }]\n",
    );
    let report = run(&mut sim, &[load(0x40_0000), load(0x7f_f000), load(0x90_0000), load(0x10_0000)]);
    assert_eq!(report.walks.walks_by_size[..2], [2, 2]);
}

#[test]
fn address_spaces_have_their_own_tables() {
    let mut sim = machine("[tlb.l1d]\nlevel = 1\nserves = \"data\"\nentries = 8\n");
    let mut other = load(0x1000);
    other.context = 1;
    let report = run(&mut sim, &[load(0x1000), other, load(0x1000)]);
    assert_eq!(report.address_spaces, 2);
    assert_eq!(report.faults, 2);
    assert_eq!(lookups_hits(&report, "l1d"), (3, 1), "tagged entries: the first space's survives");
}

#[test]
fn addresses_beyond_the_table_are_errors() {
    let mut sim = machine("[page_table]\nformat = \"x86-32\"\n");
    let err = sim.run(&[load(0x1000), load(0x1_0000_0000)]).unwrap_err();
    assert_eq!((err.index, err.addr, err.va_bits), (1, 0x1_0000_0000, 32));
    // An access ending past the top is out of range too.
    let err = sim.run(&[Access::new(Kind::Load, 0xffff_fffc, 8)]).unwrap_err();
    assert_eq!(err.index, 0);
}
