//! `mmusim record`: a program traced on the spot by Valgrind's Lackey tool.
//!
//! Valgrind runs the program with `--tool=lackey --trace-mem=yes` and writes
//! its log, the trace, to a named pipe in a private temporary directory
//! (`--log-file`), not to the program's standard error: the program's own
//! output is untouched. mmusim reads the pipe as it fills, so the trace is
//! never stored uncompressed: it is either written as compressed Lackey text
//! (with the command line, Valgrind's version and the date in leading
//! `==mmusim==` lines, which Lackey readers skip) or simulated as it comes.

use std::ffi::{OsStr, OsString};
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use mmusim_trace::{Format, TraceError, TraceReader, WriteSummary};

/// The Debian package that has Valgrind.
pub const VALGRIND_PACKAGE: &str = "valgrind";

/// Why recording failed.
#[derive(Debug)]
pub enum RecordError {
    /// Valgrind could not be started.
    NoValgrind { valgrind: PathBuf, why: io::Error },
    /// A step of recording could not be done: which, and why.
    Step { what: &'static str, why: io::Error },
    /// The trace could not be read from Valgrind or written.
    Trace(TraceError),
    /// Valgrind wrote no reference: the program did not start (Valgrind's
    /// own messages say why).
    NoReferences { status: ExitStatus },
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::NoValgrind { valgrind, why } => write!(
                f,
                "cannot run {}: {why}; mmusim record runs Valgrind's Lackey tool (on Debian: apt-get install {VALGRIND_PACKAGE})",
                valgrind.display()
            ),
            RecordError::Step { what, why } => write!(f, "cannot {what}: {why}"),
            RecordError::Trace(e) => write!(f, "{e}"),
            RecordError::NoReferences { status } => {
                write!(f, "valgrind recorded no references ({status}): did the program start?")
            }
        }
    }
}

impl std::error::Error for RecordError {}

/// The program Valgrind is: `$MMUSIM_VALGRIND`, else `valgrind` on the PATH.
pub fn valgrind() -> PathBuf {
    std::env::var_os("MMUSIM_VALGRIND").map_or_else(|| PathBuf::from("valgrind"), PathBuf::from)
}

/// Valgrind's version line (`valgrind-3.19.0`).
pub fn valgrind_version(valgrind: &Path) -> Result<String, RecordError> {
    let output = Command::new(valgrind)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|why| RecordError::NoValgrind { valgrind: valgrind.to_owned(), why })?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A program running under Lackey, its trace coming through a named pipe.
#[derive(Debug)]
pub struct Recording {
    /// Keeps the pipe's directory until the recording is dropped.
    _dir: tempfile::TempDir,
    /// The named pipe, as a trace path (`<program>.lackey`).
    pub pipe: PathBuf,
    /// The lines that say what was recorded: command, Valgrind, date.
    pub header: Vec<String>,
    watcher: std::thread::JoinHandle<io::Result<ExitStatus>>,
}

impl Recording {
    /// Starts `program` (its path, then its arguments) under Valgrind.
    pub fn start(program: &[OsString]) -> Result<Recording, RecordError> {
        let valgrind = valgrind();
        let version = valgrind_version(&valgrind)?;
        let step = |what: &'static str| move |why: io::Error| RecordError::Step { what, why };
        let dir = tempfile::Builder::new()
            .prefix("mmusim-record-")
            .tempdir()
            .map_err(step("make a temporary directory for the pipe"))?;
        let name = program
            .first()
            .and_then(|p| Path::new(p).file_name())
            .map_or_else(|| "program".to_owned(), |n| n.to_string_lossy().into_owned());
        let pipe = dir.path().join(format!("{name}.lackey"));
        let made = Command::new("mkfifo").arg(&pipe).status().map_err(step("run mkfifo"))?;
        if !made.success() {
            return Err(RecordError::Step { what: "make the named pipe", why: io::Error::other(made.to_string()) });
        }
        let mut log_file = OsString::from("--log-file=");
        log_file.push(&pipe);
        let mut child = Command::new(&valgrind)
            .args([OsStr::new("--tool=lackey"), OsStr::new("--trace-mem=yes"), &log_file])
            .args(program)
            .spawn()
            .map_err(|why| RecordError::NoValgrind { valgrind: valgrind.clone(), why })?;
        let watched = pipe.clone();
        // When Valgrind exits, a reader still waiting for the pipe to open
        // (Valgrind never opened it) is let go: opening the pipe for
        // writing without blocking succeeds only while a reader waits.
        let watcher = std::thread::spawn(move || {
            let status = child.wait()?;
            if let Ok(writer) = OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&watched) {
                drop(writer);
            }
            Ok(status)
        });
        let command: Vec<String> = program.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let header = vec![
            format!(
                "recorded by mmusim {}: valgrind --tool=lackey --trace-mem=yes -- {}",
                env!("CARGO_PKG_VERSION"),
                command.join(" ")
            ),
            format!("valgrind: {version}"),
            format!("date: {}", utc_now()),
        ];
        Ok(Recording { _dir: dir, pipe, header, watcher })
    }

    /// Waits for Valgrind to exit; its status is the program's.
    pub fn finish(self) -> Result<ExitStatus, RecordError> {
        self.watcher
            .join()
            .expect("waiting does not panic")
            .map_err(|why| RecordError::Step { what: "wait for valgrind", why })
    }
}

/// What `record` wrote, and how the program ended.
#[derive(Debug)]
pub struct Recorded {
    pub written: WriteSummary,
    pub status: ExitStatus,
}

/// Records `program` into `output` (compressed as its extension says).
pub fn record_to_file(program: &[OsString], output: &Path) -> Result<Recorded, RecordError> {
    let recording = Recording::start(program)?;
    let written = TraceReader::open_as(&recording.pipe, Some(Format::Lackey))
        .and_then(|mut reader| mmusim_trace::write_lackey_trace(&mut reader, output, &recording.header));
    let status = recording.finish()?;
    match written {
        Ok(written) if written.records > 0 => Ok(Recorded { written, status }),
        Ok(_) => Err(RecordError::NoReferences { status }),
        // Nothing came through the pipe at all (an error about the file as
        // a whole, not a bad line), and Valgrind failed: the program never ran.
        Err(e) if !status.success() && e.location() == mmusim_trace::Location::File => {
            Err(RecordError::NoReferences { status })
        }
        Err(e) => Err(RecordError::Trace(e)),
    }
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest / 60 % 60, rest % 60)
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// days-to-civil algorithm: eras of 400 years from 0000-03-01).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_become_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29), "a leap day of a year divisible by 400");
        assert_eq!(civil_from_days(20_426), (2025, 12, 4));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
