//! Sweep specs: parsed and expanded into runs (which resolves every run's
//! config), refused with an error or planned, never a panic.

fn main() {
    let path = mmusim_fuzz::input_path(".toml");
    afl::fuzz!(|data: &[u8]| {
        mmusim_fuzz::write_input(&path, data);
        let _ = mmusim_report::plan::load(&path);
    });
}
