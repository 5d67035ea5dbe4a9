//! `check`'s inputs and workload files: the first byte picks a tolerance
//! file, a metrics table compared with itself, or a workload file.

fn main() {
    let path = mmusim_fuzz::input_path(".input");
    afl::fuzz!(|data: &[u8]| {
        let Some((&selector, bytes)) = data.split_first() else { return };
        mmusim_fuzz::write_input(&path, bytes);
        match selector % 3 {
            0 => {
                let _ = mmusim_report::check::Tolerances::load(&path);
            }
            1 => {
                if let Ok(table) = mmusim_report::check::read_table(&path) {
                    if let Ok(tolerances) = mmusim_report::check::Tolerances::parse("") {
                        let _ = mmusim_report::check::check(&table, &table, &tolerances);
                    }
                }
            }
            _ => {
                let _ = mmusim_trace::Workload::load(&path);
            }
        }
    });
}
