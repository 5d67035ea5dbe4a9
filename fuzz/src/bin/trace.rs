//! Every trace decoder, plain and through each decompressor: the first byte
//! picks a forced format (or detection from the content), the rest is the
//! file. Reading must end in records or an error, never a panic or a hang.
//!
//! `MMUSIM_FUZZ_FORMAT=NAME` forces one decoder whatever the first byte says
//! (which is still skipped, so the same seeds serve), for a campaign that
//! spends all its executions on that decoder (`scripts/fuzz.sh 1800 trace:din`).

use mmusim_trace::{Batch, Format, TraceReader};

fn main() {
    let path = mmusim_fuzz::input_path(".trace");
    let forced = std::env::var("MMUSIM_FUZZ_FORMAT").ok().filter(|name| !name.is_empty()).map(|name| {
        *Format::ALL
            .iter()
            .find(|format| format.name() == name)
            .unwrap_or_else(|| panic!("MMUSIM_FUZZ_FORMAT={name} names no trace format"))
    });
    afl::fuzz!(|data: &[u8]| {
        let Some((&selector, bytes)) = data.split_first() else { return };
        mmusim_fuzz::write_input(&path, bytes);
        let format = forced.or_else(|| Format::ALL.get(usize::from(selector) % (Format::ALL.len() + 1)).copied());
        if let Ok(mut reader) = TraceReader::open_as(&path, format) {
            let mut batch = Batch::new();
            while let Ok(true) = reader.next_batch(&mut batch) {}
        }
    });
}
