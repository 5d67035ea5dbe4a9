//! The hand-written sample traces (traces/tiny), one per format, each read
//! back as the record list derived by hand from its text or from the script
//! that wrote it (traces/src/make_tiny_binaries.py).

use crate::common::{read_all, sample};
use mmusim_trace::{Access, Compression, Format, Kind, TraceInfo, TraceReader};

const F: Kind = Kind::Fetch;
const L: Kind = Kind::Load;
const S: Kind = Kind::Store;
const M: Kind = Kind::Modify;

fn records(list: &[(Kind, u64, u16)]) -> Vec<Access> {
    list.iter().map(|&(kind, addr, size)| Access::new(kind, addr, size)).collect()
}

/// The nine references of hand.lackey (and hand.mmt).
fn lackey_records() -> Vec<Access> {
    records(&[
        (F, 0x401000, 3),
        (L, 0x7ffd0000, 8),
        (F, 0x401003, 4),
        (S, 0x7ffd0008, 8),
        (F, 0x401007, 5),
        (M, 0x601040, 4),
        (F, 0x401ffe, 4),
        (L, 0x600ffc, 8),
        (F, 0x7f0012345678, 2),
    ])
}

/// The same program where the modify is a load and a store, sizes unknown.
fn split_modify_records(with_sizes: bool, last_fetch: bool) -> Vec<Access> {
    let sized = |size: u16| if with_sizes { size } else { 0 };
    let mut list = vec![
        (F, 0x401000, sized(3)),
        (L, 0x7ffd0000, sized(8)),
        (F, 0x401003, sized(4)),
        (S, 0x7ffd0008, sized(8)),
        (F, 0x401007, sized(5)),
        (L, 0x601040, sized(4)),
        (S, 0x601040, sized(4)),
        (F, 0x401ffe, sized(4)),
        (L, 0x600ffc, sized(8)),
    ];
    if last_fetch {
        list.push((F, 0x7f0012345678, sized(2)));
    }
    records(&list)
}

fn read(name: &str) -> (Format, Vec<Access>, u64) {
    let reader = TraceReader::open(sample(&format!("tiny/{name}"))).unwrap();
    assert_eq!(reader.compression(), Compression::None);
    let format = reader.format();
    let info = TraceInfo::collect(TraceReader::open(sample(&format!("tiny/{name}"))).unwrap()).unwrap();
    (format, read_all(reader).unwrap(), info.skipped_records)
}

#[test]
fn lackey() {
    assert_eq!(read("hand.lackey"), (Format::Lackey, lackey_records(), 0));
}

#[test]
fn din_numeric_and_extended() {
    assert_eq!(read("hand.din"), (Format::Din, split_modify_records(false, true), 1));
    assert_eq!(read("hand-extended.din"), (Format::Din, split_modify_records(true, true), 1));
}

#[test]
fn pinatrace_infers_fetches_and_has_no_sizes() {
    // The last instruction has no memory operand, so pinatrace never saw it.
    assert_eq!(read("hand.pinatrace"), (Format::Pinatrace, split_modify_records(false, false), 0));
}

#[test]
fn champsim_both_layouts() {
    assert_eq!(read("hand.champsim"), (Format::ChampSim, split_modify_records(false, true), 0));
    let (format, got, _) = read("hand-cloudsuite.champsim");
    assert_eq!(format, Format::ChampSimCloudSuite);
    let want: Vec<Access> =
        split_modify_records(false, true).into_iter().map(|a| Access { context: 0x0102, ..a }).collect();
    assert_eq!(got, want);
}

#[test]
fn mmusim_binary_written_by_an_independent_script() {
    assert_eq!(read("hand.mmt"), (Format::Mmusim, lackey_records(), 0));
    let reader = TraceReader::open(sample("tiny/hand.mmt")).unwrap();
    let info = TraceInfo::collect(reader).unwrap();
    assert_eq!(info.description.as_deref(), Some("hand-written by traces/src/make_tiny_binaries.py"));
}

#[test]
fn info_counts_pages_bytes_and_range_of_the_hand_trace() {
    let info = TraceInfo::collect(TraceReader::open(sample("tiny/hand.lackey")).unwrap()).unwrap();
    let r = &info.references;
    assert_eq!((r.records, r.instructions), (9, 5));
    assert_eq!(r.accessed_bytes, 3 + 8 + 4 + 8 + 5 + 4 + 4 + 8 + 2);
    // 0x401ffe+4 crosses into 0x402000; 0x600ffc+8 into 0x601000.
    assert_eq!(r.page_crossing_records, 2);
    // Pages 0x401, 0x402, 0x7ffd0, 0x600, 0x601, 0x7f0012345: six.
    assert_eq!(r.distinct_4k_pages, 6);
    // 2 MiB regions (address >> 21): 2 (0x401000..0x402001), 3
    // (0x600ffc..0x601043), 0x3ff (0x7ffd0000..), 0x3f80091 (0x7f0012345678):
    // four.
    assert_eq!(r.distinct_2m_pages, 4);
    assert_eq!(r.lowest_address, Some(0x401000));
    assert_eq!(r.highest_address, Some(0x7f0012345679));
}
