//! Reading on one thread, simulating on another.
//!
//! A reader thread fills batches and hands them over a bounded channel; the
//! caller's closure consumes them in order and hands the emptied batches
//! back for reuse. Order is kept, so results are what a single thread would
//! compute; at most `DEPTH + 1` batches exist, so memory stays bounded; and
//! the simulation's thread spends no time decoding.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use mmusim_trace::{Access, Batch, BatchSource, TraceError};

/// Batches in flight between the threads.
const DEPTH: usize = 4;

/// Why a pipelined run stopped.
#[derive(Debug)]
pub enum Stop<E> {
    /// The source could not be read.
    Trace(TraceError),
    /// The consumer gave up.
    Consumer(E),
}

/// Feeds every batch of `source`, in order, to `consume`, reading the next
/// batches on another thread meanwhile.
pub fn for_each_batch<S, E>(source: &mut S, mut consume: impl FnMut(&[Access]) -> Result<(), E>) -> Result<(), Stop<E>>
where
    S: BatchSource + Send,
{
    for_each_chunk(source, 1, |chunk| chunk.iter().try_for_each(|batch| consume(batch)))
}

/// Feeds `source` to `consume` in chunks of up to `batches_per_chunk`
/// batches, in order (only the last chunk may be shorter), reading ahead on
/// another thread. Sweeps hand each chunk to many simulators at once, so a
/// chunk must be large enough to amortize that hand-over.
pub fn for_each_chunk<S, E>(
    source: &mut S,
    batches_per_chunk: usize,
    mut consume: impl FnMut(&[Batch]) -> Result<(), E>,
) -> Result<(), Stop<E>>
where
    S: BatchSource + Send,
{
    let batches_per_chunk = batches_per_chunk.max(1);
    std::thread::scope(|scope| {
        let (full_tx, full_rx): (SyncSender<Result<Vec<Batch>, TraceError>>, Receiver<_>) = sync_channel(DEPTH);
        let (empty_tx, empty_rx) = sync_channel::<Vec<Batch>>(DEPTH + 1);
        for _ in 0..=DEPTH {
            let chunk = (0..batches_per_chunk).map(|_| Batch::new()).collect();
            empty_tx.send(chunk).expect("the receiver is alive");
        }
        scope.spawn(move || {
            // Ends when the source ends or fails, or when the consumer has
            // gone (its end of either channel dropped).
            while let Ok(mut chunk) = empty_rx.recv() {
                let mut filled = 0;
                let mut ended = false;
                while filled < chunk.len() {
                    match source.next_batch(&mut chunk[filled]) {
                        Ok(true) => filled += 1,
                        Ok(false) => {
                            ended = true;
                            break;
                        }
                        Err(e) => {
                            let _ = full_tx.send(Err(e));
                            return;
                        }
                    }
                }
                if filled > 0 {
                    // Only the chunk's filled batches go out; the rest are
                    // spare (the chunk is full-sized again when it returns).
                    chunk.truncate(filled);
                    if full_tx.send(Ok(chunk)).is_err() {
                        return;
                    }
                }
                if ended {
                    return;
                }
            }
        });
        for item in full_rx {
            let mut chunk = item.map_err(Stop::Trace)?;
            consume(&chunk).map_err(Stop::Consumer)?;
            chunk.resize_with(batches_per_chunk, Batch::new);
            // The reader may already have finished; then nobody needs it.
            let _ = empty_tx.send(chunk);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmusim_trace::{Kind, TraceSpec, Workload};

    fn write_lackey(dir: &std::path::Path, lines: usize) -> std::path::PathBuf {
        let path = dir.join("t.lackey");
        let text: String = (0..lines).map(|i| format!("I  {:08x},4\n", 0x400000 + 4 * i)).collect();
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn batches_arrive_complete_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_lackey(dir.path(), 50_000);
        let mut mix = Workload::new(vec![TraceSpec::new(&path)], 100).open().unwrap();
        let mut seen = Vec::new();
        for_each_batch(&mut mix, |batch| {
            seen.extend(batch.iter().map(|a| a.addr));
            Ok::<(), ()>(())
        })
        .unwrap();
        let want: Vec<u64> = (0..50_000).map(|i| 0x400000 + 4 * i).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn a_consumer_error_stops_the_reader_and_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_lackey(dir.path(), 200_000);
        let mut mix = Workload::new(vec![TraceSpec::new(&path)], 100).open().unwrap();
        let mut batches = 0;
        let result = for_each_batch(&mut mix, |_| {
            batches += 1;
            if batches == 3 {
                Err("enough")
            } else {
                Ok(())
            }
        });
        assert!(matches!(result, Err(Stop::Consumer("enough"))));
        assert_eq!(batches, 3);
    }

    #[test]
    fn a_trace_error_comes_back_after_the_good_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.lackey");
        let mut text: String = (0..10_000).map(|i| format!(" L {:08x},8\n", 0x1000 + 8 * i)).collect();
        text.push_str("garbage\n");
        std::fs::write(&path, text).unwrap();
        let mut mix = Workload::new(vec![TraceSpec::new(&path)], 100).open().unwrap();
        let mut records = 0;
        let result = for_each_batch(&mut mix, |batch| {
            records += batch.len();
            assert!(batch.iter().all(|a| a.kind == Kind::Load));
            Ok::<(), ()>(())
        });
        match result {
            Err(Stop::Trace(e)) => assert!(e.to_string().contains("line 10001"), "{e}"),
            other => panic!("expected a trace error, got {other:?}"),
        }
        assert!(records <= 10_000);
    }

    #[test]
    fn chunks_hold_whole_batches_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_lackey(dir.path(), 50_000);
        let mut mix = Workload::new(vec![TraceSpec::new(&path)], 100).open().unwrap();
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        for_each_chunk(&mut mix, 3, |chunk| {
            sizes.push(chunk.len());
            seen.extend(chunk.iter().flat_map(|b| b.iter().map(|a| a.addr)));
            Ok::<(), ()>(())
        })
        .unwrap();
        let want: Vec<u64> = (0..50_000).map(|i| 0x400000 + 4 * i).collect();
        assert_eq!(seen, want);
        // 50,000 records are 13 batches of up to 4096: four chunks of 3, one of 1.
        assert_eq!(sizes, [3, 3, 3, 3, 1]);
    }
}
