//! What `mmusim trace info` reports about a trace: counts by kind, bytes,
//! footprint in 4 KiB and 2 MiB pages, address range.

use std::collections::HashSet;

use serde::{Serialize, Serializer};

use crate::access::{Access, Kind};
use crate::error::TraceError;
use crate::format::Format;
use crate::input::Compression;
use crate::mix::BatchSource;
use crate::reader::{Batch, TraceReader};

const PAGE_4K_SHIFT: u32 = 12;
const PAGE_2M_SHIFT: u32 = 21;

/// References of each kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KindCounts {
    pub fetch: u64,
    pub load: u64,
    pub store: u64,
    pub modify: u64,
}

impl KindCounts {
    pub fn add(&mut self, kind: Kind) {
        match kind {
            Kind::Fetch => self.fetch += 1,
            Kind::Load => self.load += 1,
            Kind::Store => self.store += 1,
            Kind::Modify => self.modify += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.fetch + self.load + self.store + self.modify
    }
}

/// Counts and footprint of a stream of references. Pages are counted per
/// address space (VM and context), and an access that crosses a page
/// boundary touches both pages.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReferenceStats {
    pub records: u64,
    pub by_kind: KindCounts,
    /// Instruction fetches, which is what mmusim counts as instructions.
    pub instructions: u64,
    /// Sum of the sizes of references whose size is known.
    pub accessed_bytes: u64,
    /// References whose format records no size.
    pub unknown_size_records: u64,
    /// References that cross a 4 KiB boundary.
    pub page_crossing_records: u64,
    pub distinct_4k_pages: u64,
    pub distinct_2m_pages: u64,
    /// Lowest byte referenced.
    #[serde(serialize_with = "hex_option")]
    pub lowest_address: Option<u64>,
    /// Highest byte referenced.
    #[serde(serialize_with = "hex_option")]
    pub highest_address: Option<u64>,
    /// Distinct (VM, context) address spaces.
    pub address_spaces: u64,
    /// Distinct VMs.
    pub vms: u64,
    #[serde(skip)]
    footprint: Footprint,
}

/// Pages seen so far, keyed by address space and page number.
#[derive(Clone, Debug, Default)]
struct Footprint {
    pages_4k: HashSet<(u16, u16, u64)>,
    pages_2m: HashSet<(u16, u16, u64)>,
    spaces: HashSet<(u16, u16)>,
    vms: HashSet<u16>,
    last_4k: Option<(u16, u16, u64)>,
}

fn hex_option<S: Serializer>(value: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        // Hex strings: JSON numbers above 2^53 lose digits in most readers.
        Some(v) => serializer.serialize_str(&format!("{v:#x}")),
        None => serializer.serialize_none(),
    }
}

impl ReferenceStats {
    pub fn add(&mut self, accesses: &[Access]) {
        for access in accesses {
            self.records += 1;
            self.by_kind.add(access.kind);
            if access.size == 0 {
                self.unknown_size_records += 1;
            } else {
                self.accessed_bytes += u64::from(access.size);
            }
            let first = access.addr;
            let last = access.last_byte();
            self.lowest_address = Some(self.lowest_address.map_or(first, |low| low.min(first)));
            self.highest_address = Some(self.highest_address.map_or(last, |high| high.max(last)));
            let space = (access.vm, access.context);
            let (first_page, last_page) = (first >> PAGE_4K_SHIFT, last >> PAGE_4K_SHIFT);
            if first_page != last_page {
                self.page_crossing_records += 1;
            }
            let footprint = &mut self.footprint;
            // Most references fall in the page of the one before: skip the
            // set lookups for them.
            if footprint.last_4k != Some((space.0, space.1, first_page)) || first_page != last_page {
                footprint.spaces.insert(space);
                footprint.vms.insert(space.0);
                for page in first_page..=last_page {
                    footprint.pages_4k.insert((space.0, space.1, page));
                    let large = page >> (PAGE_2M_SHIFT - PAGE_4K_SHIFT);
                    footprint.pages_2m.insert((space.0, space.1, large));
                }
                footprint.last_4k = Some((space.0, space.1, last_page));
            }
        }
        self.instructions = self.by_kind.fetch;
        self.distinct_4k_pages = self.footprint.pages_4k.len() as u64;
        self.distinct_2m_pages = self.footprint.pages_2m.len() as u64;
        self.address_spaces = self.footprint.spaces.len() as u64;
        self.vms = self.footprint.vms.len() as u64;
    }

    /// Reads `source` to its end, counting everything.
    pub fn collect(source: &mut impl BatchSource) -> Result<ReferenceStats, TraceError> {
        let mut stats = ReferenceStats::default();
        let mut batch = Batch::new();
        while source.next_batch(&mut batch)? {
            stats.add(&batch);
        }
        Ok(stats)
    }
}

/// Everything `trace info` says about one file.
#[derive(Clone, Debug, Serialize)]
pub struct TraceInfo {
    pub path: String,
    pub format: Format,
    pub compression: Compression,
    /// Size of the file on disk.
    pub file_bytes: u64,
    /// Size after decompression.
    pub decoded_bytes: u64,
    /// The provenance hash of the file's bytes (`HASH_ALGORITHM`), computed
    /// while reading it.
    pub xxh3_128: Option<String>,
    /// Records read but not references (Dinero's cache-maintenance records,
    /// drmemtrace's markers and the like).
    pub skipped_records: u64,
    /// A drmemtrace trace's records other than references, by category.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drmemtrace: Option<crate::DrmemtraceCounts>,
    /// The source description of an mmusim binary trace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(flatten)]
    pub references: ReferenceStats,
}

impl TraceInfo {
    /// Reads the whole trace behind `reader`.
    pub fn collect(mut reader: TraceReader) -> Result<TraceInfo, TraceError> {
        let references = ReferenceStats::collect(&mut reader)?;
        Ok(TraceInfo {
            path: reader.path().display().to_string(),
            format: reader.format(),
            compression: reader.compression(),
            file_bytes: reader.file_bytes(),
            decoded_bytes: reader.decoded_bytes(),
            xxh3_128: reader.hash(),
            skipped_records: reader.skipped(),
            drmemtrace: reader.drmemtrace_counts(),
            description: reader.binary_header().map(|h| h.description.clone()),
            references,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_pages_per_address_space_and_page_crossings() {
        let mut stats = ReferenceStats::default();
        let mut other_space = Access::new(Kind::Load, 0x1000, 4);
        other_space.context = 1;
        stats.add(&[
            Access::new(Kind::Fetch, 0x1000, 4),
            Access::new(Kind::Load, 0x1ffc, 8), // crosses into page 2
            Access::new(Kind::Store, 0x20_0000, 0),
            other_space,
        ]);
        assert_eq!(stats.records, 4);
        assert_eq!(stats.instructions, 1);
        assert_eq!(stats.by_kind, KindCounts { fetch: 1, load: 2, store: 1, modify: 0 });
        assert_eq!(stats.accessed_bytes, 16);
        assert_eq!(stats.unknown_size_records, 1);
        assert_eq!(stats.page_crossing_records, 1);
        assert_eq!(stats.distinct_4k_pages, 4, "pages 1 and 2, page 0x200, and page 1 of context 1");
        assert_eq!(stats.distinct_2m_pages, 3);
        assert_eq!(stats.lowest_address, Some(0x1000));
        assert_eq!(stats.highest_address, Some(0x20_0000));
        assert_eq!((stats.address_spaces, stats.vms), (2, 1));
    }
}
