//! The members of a zip archive read one after another as one stream, as
//! drmemtrace stores a thread's trace: `chunk.0000`, `chunk.0001`, ... each a
//! run of records. The archive is read front to back from its local headers
//! (no seeking: a pipe works), each member checked against its CRC.
//!
//! The zip reader borrows the stream for each member it hands out, so the
//! archive is read on a thread of its own that passes the members' bytes over
//! a bounded channel: memory stays bounded by the channel, not by a member.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};

/// Bytes per message, and messages in flight.
const PIECE_BYTES: usize = 256 * 1024;
const PIECES_IN_FLIGHT: usize = 4;

/// Where each member starts in the stream of their bytes, to name the
/// member an offset falls in.
#[derive(Clone, Debug, Default)]
pub(crate) struct MemberStarts(Arc<Mutex<Vec<u64>>>);

impl MemberStarts {
    fn push(&self, offset: u64) {
        self.0.lock().expect("never poisoned: pushing does not panic").push(offset);
    }

    /// The member (its index) that the stream's byte `offset` is in, and the
    /// offset within it.
    pub fn locate(&self, offset: u64) -> Option<(u32, u64)> {
        let starts = self.0.lock().expect("never poisoned: pushing does not panic");
        let index = starts.partition_point(|&start| start <= offset).checked_sub(1)?;
        Some((index as u32, offset - starts[index]))
    }
}

/// The name the `index`th member must have.
pub(crate) fn member_name(index: u32) -> String {
    format!("chunk.{index:04}")
}

enum Piece {
    Bytes(Vec<u8>),
    Failed(io::Error),
}

/// A `Read` of the archive's members' bytes, in order.
pub(crate) struct ZipMembers {
    pieces: Receiver<Piece>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ZipMembers {
    pub fn new<R: Read + Send + 'static>(mut archive: R, starts: MemberStarts) -> ZipMembers {
        let (send, pieces) = sync_channel(PIECES_IN_FLIGHT);
        std::thread::spawn(move || {
            let mut offset = 0u64;
            let mut index = 0u32;
            let result = (|| -> io::Result<()> {
                loop {
                    let member = zip::read::read_zipfile_from_stream(&mut archive)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, member_error(index, &e.to_string())))?;
                    let Some(mut member) = member else { break };
                    let expected = member_name(index);
                    let name = member.name().map(|n| n.into_owned()).unwrap_or_default();
                    if name != expected {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("zip member number {index} is named {name:?}; expected {expected}"),
                        ));
                    }
                    starts.push(offset);
                    loop {
                        let mut piece = vec![0u8; PIECE_BYTES];
                        let mut filled = 0;
                        while filled < piece.len() {
                            match member.read(&mut piece[filled..]) {
                                Ok(0) => break,
                                Ok(n) => filled += n,
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                                Err(e) => {
                                    return Err(io::Error::new(e.kind(), member_error(index, &e.to_string())));
                                }
                            }
                        }
                        if filled == 0 {
                            break;
                        }
                        piece.truncate(filled);
                        offset += filled as u64;
                        if send.send(Piece::Bytes(piece)).is_err() {
                            // The reader was dropped: stop quietly.
                            return Ok(());
                        }
                    }
                    index += 1;
                }
                // The central directory: read it to the end, so the file's
                // hash covers every byte.
                io::copy(&mut archive, &mut io::sink())?;
                Ok(())
            })();
            if let Err(e) = result {
                let _ = send.send(Piece::Failed(e));
            }
        });
        ZipMembers { pieces, current: Vec::new(), pos: 0, done: false }
    }
}

fn member_error(index: u32, why: &str) -> String {
    format!("zip member {} (number {index}): {why}", member_name(index))
}

impl Read for ZipMembers {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.done {
                return Ok(0);
            }
            match self.pieces.recv() {
                Ok(Piece::Bytes(bytes)) => {
                    self.current = bytes;
                    self.pos = 0;
                }
                Ok(Piece::Failed(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The thread finished: every member has been read.
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_located_in_their_member() {
        let starts = MemberStarts::default();
        assert_eq!(starts.locate(5), None);
        for start in [0, 100, 250] {
            starts.push(start);
        }
        assert_eq!(starts.locate(0), Some((0, 0)));
        assert_eq!(starts.locate(99), Some((0, 99)));
        assert_eq!(starts.locate(100), Some((1, 0)));
        assert_eq!(starts.locate(1000), Some((2, 750)));
        assert_eq!(member_name(3), "chunk.0003");
    }
}
