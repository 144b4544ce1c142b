//! Container logs in docker's json-file format: one JSON object per line,
//! `{"log": "...\n", "stream": "stdout", "time": "RFC 3339"}`, rotated at a
//! size limit to `NAME.1`, `NAME.2`, ... (the oldest last), as docker's
//! `max-size` and `max-file` options do.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} log {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// When a log is rotated and how many files it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// Bytes of the current file before it is rotated.
    pub max_size: u64,
    /// Files kept, the current one included: 1 empties the file instead.
    pub max_files: u32,
}

impl Default for Rotation {
    /// 10 MiB and one older file (docker's json-file has no limit by
    /// default; an unbounded log is how disks fill).
    fn default() -> Rotation {
        Rotation {
            max_size: 10 << 20,
            max_files: 2,
        }
    }
}

/// Longest partial line kept before it is written anyway.
const MAX_PARTIAL: usize = 16 * 1024;

pub struct Writer {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: Rotation,
    partial: [Vec<u8>; 2],
}

fn stream_index(stream: &str) -> usize {
    if stream == "stderr" { 1 } else { 0 }
}

impl Writer {
    pub fn open(path: &Path, rotation: Rotation) -> Result<Writer> {
        let file = open_append(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Writer {
            path: path.to_path_buf(),
            file,
            size,
            rotation,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Adds output of `stream`: complete lines become entries, the rest waits
    /// for its newline (or for [`Writer::flush`]).
    pub fn write(&mut self, stream: &str, data: &[u8]) -> Result<()> {
        let i = stream_index(stream);
        let mut buf = std::mem::take(&mut self.partial[i]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + nl + 1;
            self.entry(stream, &buf[start..end])?;
            start = end;
        }
        let rest = buf[start..].to_vec();
        if rest.len() >= MAX_PARTIAL {
            self.entry(stream, &rest)?;
        } else {
            self.partial[i] = rest;
        }
        Ok(())
    }

    /// Writes what is left of unfinished lines (at exit).
    pub fn flush(&mut self) -> Result<()> {
        for (i, stream) in ["stdout", "stderr"].iter().enumerate() {
            let rest = std::mem::take(&mut self.partial[i]);
            if !rest.is_empty() {
                self.entry(stream, &rest)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, stream: &str, line: &[u8]) -> Result<()> {
        let e = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: stream.to_string(),
            time: crate::runtime::state::now_rfc3339(),
        };
        let mut text = serde_json::to_vec(&e).unwrap_or_default();
        text.push(b'\n');
        if self.size > 0 && self.size + text.len() as u64 > self.rotation.max_size {
            self.rotate()?;
        }
        // One write per entry, so a reader never sees half a line from us.
        if let Err(source) = self.file.write_all(&text) {
            // A full disk takes part of a line: cut it off, or the next
            // entry would be glued to it and lost too.
            let _ = self.file.set_len(self.size);
            return Err(Error::Io {
                op: "write",
                path: self.path.clone(),
                source,
            });
        }
        self.size += text.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io {
                op: "rotate",
                path,
                source,
            }
        };
        if self.rotation.max_files <= 1 {
            // Appends go to the new end: readers that follow start over.
            self.file.set_len(0).map_err(err(&self.path))?;
        } else {
            // NAME.(k) becomes NAME.(k+1); the last one is replaced.
            for k in (1..self.rotation.max_files - 1).rev() {
                let from = rotated(&self.path, k);
                match fs::rename(&from, rotated(&self.path, k + 1)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(err(&from)(e));
                    }
                    _ => {}
                }
            }
            fs::rename(&self.path, rotated(&self.path, 1)).map_err(err(&self.path))?;
            self.file = open_append(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| Error::Io {
            op: "open",
            path: path.to_path_buf(),
            source,
        })
}

/// The `k`th older file of a log (1 is the newest of them).
pub fn rotated(path: &Path, k: u32) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{k}"));
    PathBuf::from(p)
}

/// Reads every entry, the oldest file first. Lines that do not parse (a
/// torn last line after a crash) are skipped.
pub fn read_all(path: &Path) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    let older = (1..).take_while(|k| rotated(path, *k).exists()).count() as u32;
    let files = (1..=older)
        .rev()
        .map(|k| rotated(path, k))
        .chain([path.to_path_buf()]);
    for p in files {
        let f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(Error::Io {
                    op: "read",
                    path: p,
                    source,
                });
            }
        };
        out.extend(
            BufReader::new(f)
                .lines()
                .map_while(|l| l.ok())
                .filter_map(|l| serde_json::from_str(&l).ok()),
        );
    }
    Ok(out)
}

/// Follows a log file from `offset`: returns new complete entries and the
/// new offset. A rotation (file shorter than the offset) starts over.
pub fn read_from(path: &Path, offset: u64) -> Result<(Vec<Entry>, u64)> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(source) => {
            return Err(Error::Io {
                op: "read",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = if len < offset { 0 } else { offset };
    f.seek(SeekFrom::Start(start)).map_err(|source| Error::Io {
        op: "seek",
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = BufReader::new(f);
    let mut out = Vec::new();
    let mut pos = start;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(|source| Error::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        })?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        pos += n as u64;
        if let Ok(e) = serde_json::from_str(&line) {
            out.push(e);
        }
    }
    Ok((out, pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_partials_and_rotation() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.log");
        let mut w = Writer::open(
            &p,
            Rotation {
                max_size: 200,
                max_files: 2,
            },
        )
        .unwrap();
        w.write("stdout", b"one\ntw").unwrap();
        w.write("stderr", b"err\n").unwrap();
        w.write("stdout", b"o\n").unwrap();
        let e = read_all(&p).unwrap();
        assert_eq!(
            e.iter()
                .map(|e| (e.log.as_str(), e.stream.as_str()))
                .collect::<Vec<_>>(),
            [
                ("one\n", "stdout"),
                ("err\n", "stderr"),
                ("two\n", "stdout")
            ]
        );
        for i in 0..10 {
            w.write("stdout", format!("line {i}\n").as_bytes()).unwrap();
        }
        w.write("stdout", b"tail").unwrap();
        w.flush().unwrap();
        assert!(rotated(&p, 1).exists());
        assert!(!rotated(&p, 2).exists());
        let all = read_all(&p).unwrap();
        assert_eq!(all.last().unwrap().log, "tail");
        assert!(fs::metadata(&p).unwrap().len() <= 200);
        let (follow, off) = read_from(&p, 0).unwrap();
        assert_eq!(follow.last().unwrap().log, "tail");
        assert_eq!(read_from(&p, off).unwrap().0.len(), 0);
    }

    #[test]
    fn rotation_keeps_max_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.log");
        let lines = |n: u32, w: &mut Writer| {
            for i in 0..n {
                w.write("stdout", format!("line {i:03}\n").as_bytes())
                    .unwrap();
            }
        };
        // About 75 bytes an entry: two entries a file.
        let rot = |max_files| Rotation {
            max_size: 160,
            max_files,
        };
        let mut w = Writer::open(&p, rot(3)).unwrap();
        lines(20, &mut w);
        assert!(rotated(&p, 1).exists() && rotated(&p, 2).exists());
        assert!(!rotated(&p, 3).exists());
        let all: Vec<String> = read_all(&p).unwrap().into_iter().map(|e| e.log).collect();
        // The newest six, in order, across the three files.
        let want: Vec<String> = (14..20).map(|i| format!("line {i:03}\n")).collect();
        assert_eq!(all, want);

        let q = d.path().join("one.log");
        let mut w = Writer::open(&q, rot(1)).unwrap();
        lines(20, &mut w);
        assert!(!rotated(&q, 1).exists());
        let all: Vec<String> = read_all(&q).unwrap().into_iter().map(|e| e.log).collect();
        assert_eq!(all, ["line 018\n", "line 019\n"]);
    }
}
