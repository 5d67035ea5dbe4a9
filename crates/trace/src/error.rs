//! Errors that name the file, where in it, and what was expected.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in a trace an error was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// The file as a whole (cannot be opened, is empty, has no known format).
    File,
    /// A 1-based line of a text format.
    Line(u64),
    /// A 0-based byte offset of a binary format. `decompressed` says the offset
    /// counts bytes after decompression, not bytes of the file on disk.
    Byte { offset: u64, decompressed: bool },
    /// A compressed stream that failed to decode: `consumed` bytes of the file
    /// had been read when the decoder gave up.
    Compressed { consumed: u64 },
    /// A byte offset within a member (`chunk.NNNN`) of a zip archive.
    Member { index: u32, offset: u64 },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Location::File => Ok(()),
            Location::Line(line) => write!(f, "line {line}"),
            Location::Byte { offset, decompressed: false } => write!(f, "byte offset {offset}"),
            Location::Byte { offset, decompressed: true } => {
                write!(f, "byte offset {offset} of the decompressed data")
            }
            Location::Member { index, offset } => {
                write!(f, "zip member {}, byte offset {offset} of it", crate::zip_members::member_name(index))
            }
            Location::Compressed { consumed } => {
                write!(f, "compressed stream, within the first {consumed} bytes of the file")
            }
        }
    }
}

/// A trace that cannot be read as asked. Reading stops at the first error:
/// a trace is never silently shortened.
#[derive(Debug)]
pub struct TraceError {
    path: PathBuf,
    location: Location,
    message: String,
}

impl TraceError {
    pub fn new(path: impl Into<PathBuf>, location: Location, message: impl Into<String>) -> TraceError {
        TraceError { path: path.into(), location, message: message.into() }
    }

    /// An operating-system error on the file as a whole.
    pub fn io(path: impl Into<PathBuf>, what: &str, err: &std::io::Error) -> TraceError {
        TraceError::new(path, Location::File, format!("{what}: {err}"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn location(&self) -> Location {
        self.location
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Location::File => write!(f, "{}: {}", self.path.display(), self.message),
            location => write!(f, "{}: {}: {}", self.path.display(), location, self.message),
        }
    }
}

impl std::error::Error for TraceError {}

/// A decoder's complaint before the reader attaches the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    pub location: Location,
    pub message: String,
}

impl DecodeError {
    pub fn line(line: u64, message: impl Into<String>) -> DecodeError {
        DecodeError { location: Location::Line(line), message: message.into() }
    }

    pub fn byte(offset: u64, message: impl Into<String>) -> DecodeError {
        DecodeError { location: Location::Byte { offset, decompressed: false }, message: message.into() }
    }

    pub fn at(self, path: &Path, decompressed: bool) -> TraceError {
        let location = match self.location {
            Location::Byte { offset, .. } => Location::Byte { offset, decompressed },
            other => other,
        };
        TraceError::new(path, location, self.message)
    }
}

/// Shows a few bytes of bad input the way a user would want to read them.
pub(crate) fn show_bytes(bytes: &[u8]) -> String {
    const LIMIT: usize = 40;
    let shown = &bytes[..bytes.len().min(LIMIT)];
    let mut text = String::from("\"");
    text.extend(shown.iter().flat_map(|&b| std::ascii::escape_default(b)).map(char::from));
    text.push('"');
    if bytes.len() > LIMIT {
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_and_place() {
        let err = DecodeError::line(12, "expected a hex address").at(Path::new("t.lackey"), false);
        assert_eq!(err.to_string(), "t.lackey: line 12: expected a hex address");
        let err = DecodeError::byte(640, "truncated record").at(Path::new("t.bin.zst"), true);
        assert_eq!(err.to_string(), "t.bin.zst: byte offset 640 of the decompressed data: truncated record");
        let err = TraceError::new("x", Location::File, "empty file");
        assert_eq!(err.to_string(), "x: empty file");
    }

    #[test]
    fn shown_bytes_are_escaped_and_cut() {
        assert_eq!(show_bytes(b"I  12,\x01"), "\"I  12,\\x01\"");
        assert!(show_bytes(&[b'a'; 100]).ends_with("\"..."));
    }
}
