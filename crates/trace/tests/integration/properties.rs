//! Properties of writing, reading and mixing, over generated records.

use std::path::Path;

use crate::common::read_all;
use mmusim_trace::{convert, Access, Batch, BatchSource, Kind, OutputFormat, TraceReader, TraceSpec, Workload};
use proptest::prelude::*;

fn kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(Kind::ALL.to_vec())
}

/// References in context 0 of VM 0 (all Lackey text can express).
fn plain_access() -> impl Strategy<Value = Access> {
    (kind(), any::<u64>(), any::<u16>()).prop_map(|(kind, addr, size)| Access::new(kind, addr, size))
}

fn tagged_access() -> impl Strategy<Value = Access> {
    (plain_access(), 0u16..4, 0u16..3).prop_map(|(a, context, vm)| Access { context, vm, ..a })
}

fn write_lackey(path: &Path, records: &[Access]) {
    let mut writer = mmusim_trace::LackeyWriter::new(Vec::new());
    for record in records {
        writer.write(record).unwrap();
    }
    std::fs::write(path, writer.into_inner()).unwrap();
}

fn write_binary(path: &Path, records: &[Access]) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer = mmusim_trace::BinaryWriter::new(file, "proptest").unwrap();
    for record in records {
        writer.write(record).unwrap();
    }
    writer.finish().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn binary_round_trip_preserves_every_field(records in prop::collection::vec(tagged_access(), 1..3000)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.mmt");
        write_binary(&path, &records);
        prop_assert_eq!(read_all(TraceReader::open(&path).unwrap()).unwrap(), records);
    }

    #[test]
    fn lackey_round_trip_through_convert_and_compression(
        records in prop::collection::vec(plain_access(), 1..3000),
        ext in prop::sample::select(vec!["", ".gz", ".xz", ".zst"]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("t.lackey");
        write_lackey(&text, &records);
        let binary = dir.path().join(format!("t.mmt{ext}"));
        let summary = convert(&text, None, &binary, OutputFormat::Mmusim).unwrap();
        prop_assert_eq!(summary.written.records, records.len() as u64);
        let back = dir.path().join(format!("back.lackey{ext}"));
        convert(&binary, None, &back, OutputFormat::from_path(&back)).unwrap();
        prop_assert_eq!(read_all(TraceReader::open(&back).unwrap()).unwrap(), records.clone());
        if ext.is_empty() {
            prop_assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&text).unwrap());
        }
    }

    #[test]
    fn mixing_keeps_every_record_once_in_order_with_exact_quanta(
        traces in prop::collection::vec(prop::collection::vec(plain_access(), 0..400), 1..5),
        quantum in 1u64..20,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut specs = Vec::new();
        for (i, records) in traces.iter().enumerate() {
            let path = dir.path().join(format!("{i}.mmt"));
            write_binary(&path, records);
            specs.push(TraceSpec::new(path));
        }
        let mut mix = Workload::new(specs, quantum).open().unwrap();
        let mut mixed = Vec::new();
        let mut batch = Batch::new();
        while mix.next_batch(&mut batch).unwrap() {
            mixed.extend_from_slice(&batch);
        }
        prop_assert_eq!(mixed.len(), traces.iter().map(Vec::len).sum::<usize>());

        // Which trace each mixed context came from: contexts are numbered in
        // order of first appearance, one per trace.
        let mut owner: Vec<usize> = Vec::new();
        let mut next = vec![0usize; traces.len()];
        let mut slices: Vec<(usize, u64)> = Vec::new();
        for access in &mixed {
            let context = usize::from(access.context);
            if context == owner.len() {
                // A new context belongs to the first trace (in rotation
                // order) that has records left and no context yet.
                let trace = (0..traces.len())
                    .find(|&t| !owner.contains(&t) && next[t] < traces[t].len())
                    .unwrap();
                owner.push(trace);
            }
            let trace = if traces.len() == 1 { 0 } else { owner[context] };
            let want = traces[trace][next[trace]];
            prop_assert_eq!(Access { context: 0, vm: 0, ..*access }, want);
            next[trace] += 1;
            match slices.last_mut() {
                Some((t, fetches)) if *t == trace => *fetches += u64::from(access.kind == Kind::Fetch),
                _ => slices.push((trace, u64::from(access.kind == Kind::Fetch))),
            }
        }
        // A slice that ends in a switch to another trace ends because its
        // quantum is full, or because its trace ended (then it holds at most
        // a quantum). Only the last trace left may run on past its quantum.
        for (i, &(trace, fetches)) in slices.iter().enumerate() {
            if i + 1 == slices.len() {
                break;
            }
            let resumes_later = slices[i + 1..].iter().any(|&(t, _)| t == trace);
            if resumes_later {
                prop_assert_eq!(fetches, quantum, "slice {} of trace {}", i, trace);
            } else {
                prop_assert!(fetches <= quantum, "slice {} of trace {}", i, trace);
            }
        }
    }
}
