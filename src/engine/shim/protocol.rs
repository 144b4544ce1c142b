//! The shim's socket protocol: frames of `kind: u8`, `len: u32` (big
//! endian), `len` bytes of payload. Small, so that attach, logs -f, stop and
//! wait need nothing but a connected unix socket.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// Frames from a client.
pub mod to_shim {
    /// JSON [`super::Attach`]: stream output (and take stdin) from now on.
    pub const ATTACH: u8 = 1;
    pub const STDIN: u8 = 2;
    pub const STDIN_CLOSE: u8 = 3;
    /// JSON [`super::Resize`].
    pub const RESIZE: u8 = 4;
    /// JSON [`super::Stop`]: stop signal, then SIGKILL after the timeout.
    pub const STOP: u8 = 5;
    /// JSON [`super::Kill`].
    pub const KILL: u8 = 6;
    /// Reply with EXIT once the container has exited for good.
    pub const WAIT: u8 = 7;
}

/// Frames from the shim.
pub mod from_shim {
    pub const STDOUT: u8 = 101;
    pub const STDERR: u8 = 102;
    /// JSON [`super::ExitStatus`].
    pub const EXIT: u8 = 103;
    /// JSON [`super::Started`].
    pub const STARTED: u8 = 104;
    /// A UTF-8 error message.
    pub const ERROR: u8 = 105;
    pub const OK: u8 = 106;
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Attach {
    pub stdin: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Resize {
    pub rows: u16,
    pub cols: u16,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stop {
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Kill {
    pub signal: i32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitStatus {
    pub code: i32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Started {
    pub pid: i32,
}

/// Largest payload accepted: a bound, so a broken peer cannot make us
/// allocate without limit.
pub const MAX_FRAME: usize = 1 << 20;

pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + payload.len());
    v.push(kind);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    w.write_all(&encode(kind, payload))
}

pub fn write_json<T: Serialize>(w: &mut impl Write, kind: u8, v: &T) -> io::Result<()> {
    write_frame(w, kind, &serde_json::to_vec(v).unwrap_or_default())
}

/// Reads one frame, blocking; `None` at a clean EOF.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head[..1]) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    r.read_exact(&mut head[1..])?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is too large"),
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

/// After EXIT: waits (a bounded time) for the shim to hang up, which it
/// does by exiting, so a command that returns has nothing left running.
pub fn wait_hangup(conn: &mut std::os::unix::net::UnixStream) {
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let mut buf = [0u8; 4096];
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

/// Splits frames out of bytes arriving in pieces (the shim reads
/// non-blocking sockets).
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if there is one. Err on an oversized frame.
    pub fn next_frame(&mut self) -> io::Result<Option<(u8, Vec<u8>)>> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame of {len} bytes is too large"),
            ));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let kind = self.buf[0];
        let payload = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Ok(Some((kind, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_pieces() {
        let mut bytes = encode(to_shim::STDIN, b"hello");
        bytes.extend(encode(to_shim::WAIT, b""));
        let mut d = Decoder::default();
        d.push(&bytes[..3]);
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(&bytes[3..]);
        assert_eq!(
            d.next_frame().unwrap(),
            Some((to_shim::STDIN, b"hello".to_vec()))
        );
        assert_eq!(d.next_frame().unwrap(), Some((to_shim::WAIT, vec![])));
        assert_eq!(d.next_frame().unwrap(), None);
        let mut r = &bytes[..];
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((to_shim::STDIN, b"hello".to_vec()))
        );
        let mut huge = vec![1u8];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        let mut d = Decoder::default();
        d.push(&huge);
        assert!(d.next_frame().is_err());
    }
}
