//! Every trace decoder, plain and through each decompressor: the first byte
//! picks a forced format (or detection from the content), the rest is the
//! file. Reading must end in records or an error, never a panic or a hang.

use mmusim_trace::{Batch, Format, TraceReader};

fn main() {
    let path = mmusim_fuzz::input_path(".trace");
    afl::fuzz!(|data: &[u8]| {
        let Some((&selector, bytes)) = data.split_first() else { return };
        mmusim_fuzz::write_input(&path, bytes);
        let format = Format::ALL.get(usize::from(selector) % (Format::ALL.len() + 1)).copied();
        if let Ok(mut reader) = TraceReader::open_as(&path, format) {
            let mut batch = Batch::new();
            while let Ok(true) = reader.next_batch(&mut batch) {}
        }
    });
}
