//! The committed real traces read back with exactly the counts derived
//! independently with grep (see traces/README.md), through each decompressor.

use crate::common::{count_kinds, sample};
use mmusim_trace::{Compression, Format, KindCounts, TraceReader};

/// (file, compression, I, L, S, M) as `grep -c '^I  '`, `'^ L '`, `'^ S '`,
/// `'^ M '` count them in the decompressed file.
const LACKEY_SAMPLES: [(&str, Compression, u64, u64, u64, u64); 5] = [
    ("sort.lackey.zst", Compression::Zstd, 1_146_632, 297_455, 148_578, 5_548),
    ("gzip.lackey.xz", Compression::Xz, 1_412_158, 300_361, 244_395, 9_656),
    ("python-dict.lackey.gz", Compression::Gzip, 698_900, 194_282, 94_976, 11_842),
    ("randaccess.lackey.zst", Compression::Zstd, 969_883, 106_900, 34_476, 37),
    ("randaccess32.lackey.zst", Compression::Zstd, 724_468, 129_969, 109_631, 45),
];

#[test]
fn lackey_samples_have_the_grep_counts() {
    for (name, compression, fetch, load, store, modify) in LACKEY_SAMPLES {
        let reader = TraceReader::open(sample(name)).unwrap();
        assert_eq!(reader.format(), Format::Lackey, "{name}");
        assert_eq!(reader.compression(), compression, "{name}");
        let counts = count_kinds(reader).unwrap();
        assert_eq!(counts, KindCounts { fetch, load, store, modify }, "{name}");
    }
}

/// (file, distinct 4 KiB pages, distinct 2 MiB pages, bytes referenced,
/// page-crossing references, lowest byte, highest byte), as an independent
/// Python pass over the decompressed text computes them (traces/README.md).
const FOOTPRINTS: [(&str, u64, u64, u64, u64, u64, u64); 5] = [
    ("sort.lackey.zst", 222, 6, 7_761_794, 219, 0x108040, 0x1fff000ff1),
    ("gzip.lackey.xz", 196, 6, 7_563_024, 155, 0x108040, 0x1fff000ff0),
    ("python-dict.lackey.gz", 115, 9, 4_852_364, 0, 0x4282e9, 0x1fff0002c7),
    ("randaccess.lackey.zst", 32_839, 68, 4_720_051, 2, 0x400040, 0x1fff000fd8),
    ("randaccess32.lackey.zst", 32_835, 67, 3_600_042, 4, 0x8048034, 0xfeceefd0),
];

#[test]
fn lackey_samples_have_the_independently_computed_footprints() {
    for (name, pages_4k, pages_2m, bytes, crossing, low, high) in FOOTPRINTS {
        let info = mmusim_trace::TraceInfo::collect(TraceReader::open(sample(name)).unwrap()).unwrap();
        let r = &info.references;
        assert_eq!(
            (r.distinct_4k_pages, r.distinct_2m_pages, r.accessed_bytes, r.page_crossing_records),
            (pages_4k, pages_2m, bytes, crossing),
            "{name}"
        );
        assert_eq!((r.lowest_address, r.highest_address), (Some(low), Some(high)), "{name}");
        assert_eq!((r.address_spaces, r.vms, r.unknown_size_records), (1, 1, 0), "{name}");
    }
}

/// `sha256sum` of each file, against the hash the reader computes while
/// reading compressed bytes (plain files are mapped, and hashed by the caller).
const SHA256SUMS: [(&str, &str); 7] = [
    ("randaccess.lackey.zst", "fdd784e439206fc315717d86f1ac32ba9e40cca90dd843d28dc74e00f84ffdce"),
    ("randaccess32.lackey.zst", "5224a0faf990990e9843412257fc84a16e6d1a3a01fb769f818df76effe333a3"),
    ("sort.lackey.zst", "675d0a8a42933c564c2f82989ee15fff5bd031ce9e8dc83543ac99736db66af5"),
    ("gzip.lackey.xz", "9938c39150c6365fcdb0dea3e04330a7965eaed9b2d5260521483d159851b147"),
    ("python-dict.lackey.gz", "3e18b5a975dd650b1d561f68e2f19167395e80895f9d58f203b1d9b3e97623f9"),
    ("tiny/hand.lackey", "c2e9895930d8619fe1e9050641e1e3b32bd9f3b38240c0f08cf0bab70d11775d"),
    ("tiny/hand.mmt", "c2ff21045c42a6b4951b64f64644f40f22c403a34cbdb20ad94eed2ee118aed6"),
];

#[test]
fn readers_hash_the_file_as_they_read_it() {
    for (name, sum) in SHA256SUMS {
        let mut reader = TraceReader::open(sample(name)).unwrap();
        let mut batch = mmusim_trace::Batch::new();
        while reader.next_batch(&mut batch).unwrap() {}
        let want = (reader.compression() != Compression::None).then_some(sum);
        assert_eq!(reader.sha256().as_deref(), want, "{name}: streamed files only");
    }
}
