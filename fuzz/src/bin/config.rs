//! Machine configs (TOML, with `base` and `--set` overrides): the input is
//! a config file; its first line, if it starts with `#set `, is an override.

fn main() {
    let path = mmusim_fuzz::input_path(".toml");
    afl::fuzz!(|data: &[u8]| {
        mmusim_fuzz::write_input(&path, data);
        let text = String::from_utf8_lossy(data);
        let overrides: Vec<(String, String)> = text
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("#set "))
            .and_then(|o| mmusim_report::config_file::parse_override(o).ok())
            .into_iter()
            .collect();
        let _ = mmusim_report::config_file::load(&path, &overrides);
    });
}
