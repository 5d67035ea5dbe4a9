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

/// xxh3-128 of each file (Python's `xxhash` package, the reference
/// implementation's binding), against the hash the reader computes in the
/// pass that decodes the file, mapped (plain) or streamed (compressed).
const XXH3_128: [(&str, &str); 7] = [
    ("randaccess.lackey.zst", "3ead2a8fe90e87ed5091a6b9510b6a90"),
    ("randaccess32.lackey.zst", "80d00f68ff0d2980eea638a6ac95ac94"),
    ("sort.lackey.zst", "4e49114f3b07188f04d1e60ade40aebd"),
    ("gzip.lackey.xz", "d8eb57923cb400d50b6eacc6a5de37c5"),
    ("python-dict.lackey.gz", "499a9226c2c1acdfdec5f6a60fdf7293"),
    ("tiny/hand.lackey", "b39aa253e16c75f28f0fd06f87596d90"),
    ("tiny/hand.mmt", "fd81bdb83f5d128ad14d1f3ccbeeb18b"),
];

#[test]
fn readers_hash_the_file_as_they_read_it() {
    for (name, sum) in XXH3_128 {
        let mut reader = TraceReader::open(sample(name)).unwrap();
        let mut batch = mmusim_trace::Batch::new();
        assert_eq!(reader.hash(), None, "{name}: no hash before the end");
        while reader.next_batch(&mut batch).unwrap() {}
        assert_eq!(reader.hash().as_deref(), Some(sum), "{name}");
        assert_eq!(mmusim_trace::hash_file(&sample(name)).unwrap(), sum, "{name}: from disk");
    }
}
