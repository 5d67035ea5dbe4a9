//! Page-table memory, against figures that follow from the table geometry
//! alone.

use mmusim_trace::{Access, Kind};
use mmusim_translate::{Config, Simulator};

fn touch_pages(config: &str, spaces: u16, base: u64, bytes: u64, page: u64) -> mmusim_translate::SimReport {
    let mut sim = Simulator::new(&Config::from_toml(config).unwrap()).unwrap();
    for context in 0..spaces {
        let accesses: Vec<Access> =
            (0..bytes / page).map(|i| Access { context, ..Access::new(Kind::Load, base + i * page, 8) }).collect();
        sim.run(&accesses).unwrap();
    }
    sim.report()
}

fn nodes(report: &mmusim_translate::SimReport) -> Vec<u64> {
    report.page_tables.iter().map(|level| level.nodes).collect()
}

#[test]
fn two_mib_of_4k_pages_needs_four_table_pages() {
    let report = touch_pages("", 1, 0x4000_0000, 2 << 20, 4096);
    assert_eq!(nodes(&report), vec![1, 1, 1, 1]);
    let bytes: u64 = report.page_tables.iter().map(|l| l.nodes * l.node_bytes).sum();
    assert_eq!(bytes, 4 * 4096);
    assert_eq!(report.faults, 512);
}

#[test]
fn one_gib_of_4k_pages_needs_one_one_one_and_512() {
    let report = touch_pages("", 1, 0x40_0000_0000, 1 << 30, 4096);
    assert_eq!(nodes(&report), vec![1, 1, 1, 512]);
}

#[test]
fn the_same_gib_in_2m_pages_needs_three_table_pages() {
    let report = touch_pages("[pages]\nsize = \"2MiB\"\n", 1, 0x40_0000_0000, 1 << 30, 2 << 20);
    assert_eq!(nodes(&report), vec![1, 1, 1, 0]);
    assert_eq!(report.faults, 512);
}

/// Each address space of a flat table is one node of 2^20 four-byte
/// entries, so 256 spaces would hold a GiB; three show the rule at a
/// fraction of the memory (the simulator keeps 9 bytes per entry).
#[test]
fn a_flat_table_is_4_mib_per_space() {
    let report = touch_pages("[page_table]\nformat = \"flat\"\n", 3, 0x1000, 4096, 4096);
    assert_eq!(report.address_spaces, 3);
    let level = report.page_tables[0];
    assert_eq!(level.node_bytes, 4 << 20, "2^20 entries of 4 bytes");
    assert_eq!(level.nodes, 3, "one node per space");
    assert_eq!(level.nodes * level.node_bytes, 12 << 20);
}
