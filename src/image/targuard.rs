//! Follows a tar stream's headers as it passes, to refuse metadata entries
//! (PAX `x`, GNU long names `L`/`K`) larger than [`MAX_METADATA`]: the tar
//! reader buffers those whole in memory, so a layer declaring a 10 GB PAX
//! header would otherwise be a memory bomb that the layer size limit allows.
//! Go's archive/tar has the same 1 MiB cap. Pure stream logic, no I/O.

use std::fmt;
use std::io::{self, Read};

const BLOCK: usize = 512;
/// Largest PAX or long-name entry accepted.
pub const MAX_METADATA: u64 = 1 << 20;

/// The error a guarded read returns; recognised by [`is_oversized`].
#[derive(Debug)]
pub struct Oversized {
    pub kind: char,
    pub size: u64,
}

impl fmt::Display for Oversized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tar metadata entry of type '{}' is {} bytes (limit {MAX_METADATA})",
            self.kind, self.size
        )
    }
}

impl std::error::Error for Oversized {}

/// Whether `err` came from the guard.
pub fn oversized(err: &io::Error) -> Option<&Oversized> {
    err.get_ref().and_then(|e| e.downcast_ref::<Oversized>())
}

enum State {
    Header,
    /// Data (and padding) of the current entry still to pass.
    Data(u64),
    /// GNU sparse extension blocks, then this much data.
    SparseExtension(u64),
    /// After the end-of-archive block (or a header we cannot follow, which
    /// the tar reader itself will reject): pass bytes through.
    Done,
}

pub struct TarGuard<R> {
    inner: R,
    state: State,
    block: [u8; BLOCK],
    filled: usize,
    /// PAX data being collected, to learn a `size` override.
    pax: Option<Vec<u8>>,
    /// Size of the next file entry, from a PAX `size` record.
    next_size: Option<u64>,
}

impl<R: Read> TarGuard<R> {
    pub fn new(inner: R) -> Self {
        TarGuard {
            inner,
            state: State::Header,
            block: [0; BLOCK],
            filled: 0,
            pax: None,
            next_size: None,
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.state {
                State::Done => return Ok(()),
                State::Data(remaining) => {
                    let n = (remaining.min(bytes.len() as u64)) as usize;
                    if let Some(pax) = &mut self.pax {
                        pax.extend_from_slice(&bytes[..n]);
                    }
                    bytes = &bytes[n..];
                    self.state = State::Data(remaining - n as u64);
                    if remaining == n as u64 {
                        self.state = State::Header;
                        if let Some(pax) = self.pax.take() {
                            self.next_size = pax_size(&pax);
                        }
                    }
                }
                State::Header | State::SparseExtension(_) => {
                    let n = (BLOCK - self.filled).min(bytes.len());
                    self.block[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
                    self.filled += n;
                    bytes = &bytes[n..];
                    if self.filled == BLOCK {
                        self.filled = 0;
                        self.on_block()?;
                    }
                }
            }
        }
        Ok(())
    }

    fn on_block(&mut self) -> io::Result<()> {
        let b = &self.block;
        if let State::SparseExtension(size) = self.state {
            self.state = if b[504] != 0 {
                State::SparseExtension(size)
            } else {
                data(size)
            };
            return Ok(());
        }
        if b.iter().all(|&x| x == 0) {
            self.state = State::Done;
            return Ok(());
        }
        let kind = b[156];
        let Some(mut size) = numeric(&b[124..136]) else {
            self.state = State::Done;
            return Ok(());
        };
        let extension = matches!(kind, b'x' | b'g' | b'L' | b'K');
        if matches!(kind, b'x' | b'L' | b'K') && size > MAX_METADATA {
            return Err(io::Error::other(Oversized {
                kind: kind as char,
                size,
            }));
        }
        if !extension && let Some(s) = self.next_size.take() {
            size = s;
        }
        if kind == b'g' {
            self.next_size = None;
        }
        self.pax = (kind == b'x').then(Vec::new);
        // Old GNU sparse headers may be followed by extension blocks.
        let gnu = &b[257..265] == b"ustar  \0";
        self.state = if kind == b'S' && gnu && b[482] != 0 {
            State::SparseExtension(size)
        } else {
            data(size)
        };
        if let State::Data(0) = self.state {
            self.state = State::Header;
            if let Some(pax) = self.pax.take() {
                self.next_size = pax_size(&pax);
            }
        }
        Ok(())
    }
}

/// Saturates: a size near 2^64 (base-256 lets a header claim one) must not
/// wrap to a small one (found by fuzzing); no stream is that long anyway.
fn data(size: u64) -> State {
    State::Data(size.div_ceil(BLOCK as u64).saturating_mul(BLOCK as u64))
}

/// A tar numeric field: octal text, or base-256 when the high bit is set.
fn numeric(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let text: Vec<u8> = field
        .iter()
        .copied()
        .filter(|c| *c != 0 && *c != b' ')
        .collect();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(std::str::from_utf8(&text).ok()?, 8).ok()
}

/// The `size` record of PAX data ("LEN key=value\n" records).
fn pax_size(data: &[u8]) -> Option<u64> {
    let mut rest = data;
    let mut size = None;
    while !rest.is_empty() {
        let Some(space) = rest.iter().position(|&c| c == b' ') else {
            return size;
        };
        let Some(len) = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
        else {
            return size;
        };
        if len <= space || len > rest.len() {
            return size;
        }
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(v) = record.strip_prefix(b"size=") {
            size = std::str::from_utf8(v).ok().and_then(|v| v.parse().ok());
        }
        rest = &rest[len..];
    }
    size
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.feed(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        f(&mut b);
        b.into_inner().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    }

    fn read_all(bytes: &[u8]) -> io::Result<Vec<String>> {
        let mut archive = tar::Archive::new(TarGuard::new(bytes));
        let mut names = Vec::new();
        for e in archive.entries()? {
            let mut e = e?;
            let mut data = Vec::new();
            e.read_to_end(&mut data)?;
            names.push(format!(
                "{}:{}",
                String::from_utf8_lossy(&e.path_bytes()),
                data.len()
            ));
        }
        Ok(names)
    }

    #[test]
    fn passes_ordinary_archives_with_long_names_and_pax() {
        let long = "d/".repeat(80) + "file";
        let bytes = build(|b| {
            file(b, "a", b"hello");
            file(b, &long, &[7u8; 1000]);
            b.append_pax_extensions([("size", &b"3"[..]), ("mtime", &b"1.5"[..])])
                .unwrap();
            let mut h = tar::Header::new_ustar();
            h.set_size(3);
            b.append_data(&mut h, "p", &b"abc"[..]).unwrap();
            file(b, "z", b"");
        });
        assert_eq!(
            read_all(&bytes).unwrap(),
            vec![
                "a:5".to_string(),
                format!("{long}:1000"),
                "p:3".into(),
                "z:0".into()
            ]
        );
    }

    #[test]
    fn refuses_oversized_metadata() {
        let big = vec![b'a'; (MAX_METADATA + 10) as usize];
        let bytes = build(|b| {
            b.append_pax_extensions([("comment", &big[..])]).unwrap();
            file(b, "a", b"x");
        });
        let err = read_all(&bytes).unwrap_err();
        assert!(
            err.to_string().contains("limit") || oversized(&err).is_some(),
            "{err}"
        );
        let mut guard = TarGuard::new(&bytes[..]);
        let err = io::copy(&mut guard, &mut io::sink()).unwrap_err();
        assert_eq!(oversized(&err).map(|o| o.kind), Some('x'));
    }

    #[test]
    fn a_size_near_2_64_does_not_wrap() {
        let mut h = tar::Header::new_gnu();
        h.set_path("big").unwrap();
        h.as_gnu_mut().unwrap().size = [
            0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend([0u8; 1024]);
        let mut guard = TarGuard::new(&bytes[..]);
        io::copy(&mut guard, &mut io::sink()).unwrap();
        assert!(matches!(guard.state, State::Data(n) if n > u64::MAX - 4096));
    }

    #[test]
    fn numeric_fields() {
        assert_eq!(numeric(b"00000001750\0"), Some(0o1750));
        assert_eq!(numeric(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]), Some(256));
        assert_eq!(pax_size(b"12 size=100\n21 mtime=1.500000000\n"), Some(100));
        assert_eq!(pax_size(b"21 mtime=1.500000000\n10 size=7\n\n"), Some(7));
    }
}
