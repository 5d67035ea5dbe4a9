//! What every fuzz target shares: the input written to a file of the
//! process's own (in /dev/shm when there is one), since every parser under
//! test reads files by path, as users' files are read.

use std::path::PathBuf;

/// A path for this process's input, ending in `suffix`.
pub fn input_path(suffix: &str) -> PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    dir.join(format!("mmusim-fuzz-{}{suffix}", std::process::id()))
}

/// Writes `data` to `path` (a fresh file each time).
pub fn write_input(path: &std::path::Path, data: &[u8]) {
    std::fs::write(path, data).expect("the fuzz input can be written");
}
