//! Unpacking one layer tarball into its own directory, ready to be an
//! overlayfs lowerdir, without ever touching anything outside it.
//!
//! Layers are hostile input (containerd CVE-2021-32760, umoci CVE-2021-29136,
//! docker CVE-2018-15664). Every entry is placed relative to directory fds
//! opened with `O_NOFOLLOW`, so no name is resolved through a symlink: an
//! entry whose parent path is a symlink or a file, a name with `..` or a
//! leading `/`, a hardlink whose target is such a path, a whiteout naming
//! `..` and a non-directory entry for the layer root are all refused, as is a
//! stream that decompresses past the size limit. The caller unpacks into a
//! fresh private directory and deletes it on any error, so nothing of a
//! rejected layer stays.
//!
//! Whiteouts become overlayfs whiteouts (OCI image spec, "Whiteouts"):
//! `.wh.NAME` a char 0:0 device NAME, `.wh..wh..opq` the
//! `trusted.overlay.opaque=y` xattr on its directory.
//!
//! Speed: decompression and hashing run on their own thread, feeding the tar
//! parser through a bounded channel; new small files are created by two
//! writer threads (creation is most of the kernel's work), and anything that
//! could touch a path a writer has not finished waits behind a barrier.
//! Nothing is fsynced here: the store calls syncfs once per layer, before
//! the layer becomes visible.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use super::digest::{Digest, HashingReader, is_limit_error};
use super::manifest::Compression;
use super::targuard::{TarGuard, oversized};

/// Default cap on a layer's uncompressed size: larger than any sane image
/// layer, small enough that a bomb stops long before the disk fills.
pub const DEFAULT_MAX_LAYER_SIZE: u64 = 64 << 30;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const CHUNK: usize = 1 << 20;
/// Files up to this size are created by writer threads.
const ASYNC_MAX_FILE: u64 = 1 << 20;
/// Writer threads per layer: file creation is mostly kernel time, and two
/// threads keep a second core busy while the parser reads ahead.
const WRITERS: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("entry {entry:?}: {why}")]
    Hostile { entry: String, why: String },
    #[error("entry {entry:?}: {op}: {source}")]
    Io {
        entry: String,
        op: &'static str,
        source: io::Error,
    },
    #[error("reading the layer: {0}")]
    Read(io::Error),
    #[error("uncompressed layer exceeds the size limit of {0} bytes (a decompression bomb?)")]
    TooBig(u64),
    #[error("the layer parser stopped early")]
    Stopped,
    #[error("opening the layer directory {path}: {source}")]
    Root { path: PathBuf, source: io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

/// What unpacking measured: the diffID (sha256 of the uncompressed tar) and
/// its size.
#[derive(Debug, Clone)]
pub struct Unpacked {
    pub diff_id: Digest,
    pub size: u64,
}

/// A tar entry name split into where it goes, after the safety checks.
#[derive(Debug, PartialEq, Eq)]
pub struct EntryPath {
    pub parents: Vec<OsString>,
    /// `None` for the layer root itself (`./`).
    pub name: Option<OsString>,
}

/// What an entry's final name means under the OCI whiteout rules.
#[derive(Debug, PartialEq, Eq)]
pub enum Special {
    Plain,
    /// `.wh.NAME`: NAME is deleted from lower layers.
    Whiteout(OsString),
    /// `.wh..wh..opq`: the parent directory hides lower contents.
    Opaque,
    /// Other `.wh..wh.` names are AUFS bookkeeping, ignored.
    AufsMeta,
}

/// Splits and checks a tar name. `..` anywhere and absolute names are
/// refused rather than cleaned: only a hostile or broken writer makes them.
pub fn entry_path(raw: &[u8]) -> std::result::Result<EntryPath, &'static str> {
    if raw.first() == Some(&b'/') {
        return Err("absolute path");
    }
    if raw.contains(&0) {
        return Err("NUL in path");
    }
    let mut parts: Vec<OsString> = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => continue,
            b".." => return Err("path contains '..'"),
            c => parts.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    let name = parts.pop();
    Ok(EntryPath {
        parents: parts,
        name,
    })
}

/// Classifies a final name under the whiteout rules.
pub fn special(name: &OsStr) -> std::result::Result<Special, &'static str> {
    let b = name.as_bytes();
    if b == OPAQUE_MARKER.as_bytes() {
        return Ok(Special::Opaque);
    }
    if b.starts_with(b".wh..wh.") {
        return Ok(Special::AufsMeta);
    }
    match b.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        Some(b"") | Some(b".") | Some(b"..") => Err("whiteout names '', '.' or '..'"),
        Some(target) => Ok(Special::Whiteout(OsStr::from_bytes(target).to_os_string())),
        None => Ok(Special::Plain),
    }
}

/// Unpacks the (possibly compressed) layer stream `blob` into the empty
/// directory `dest`. `max_size` bounds the uncompressed bytes.
pub fn unpack<R: Read + Send>(
    blob: R,
    compression: Compression,
    dest: &Path,
    max_size: u64,
) -> Result<Unpacked> {
    let root = rustix::fs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::Root {
        path: dest.to_path_buf(),
        source: e.into(),
    })?;
    thread::scope(|scope| {
        let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(8);
        let producer = scope.spawn(move || decompress(blob, compression, max_size, tx));
        let mut reader = ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        };
        let applied = apply(TarGuard::new(&mut reader), &root, max_size);
        let applied = applied.map_err(|e| match e {
            Error::Read(io) if oversized(&io).is_some() => Error::Hostile {
                entry: "(tar header)".to_string(),
                why: oversized(&io).map(|o| o.to_string()).unwrap_or_default(),
            },
            e => e,
        });
        let drained = applied.and_then(|()| {
            io::copy(&mut reader, &mut io::sink())
                .map(|_| ())
                .map_err(Error::Read)
        });
        drop(reader);
        let produced = producer.join().unwrap_or_else(|_| {
            Err(Error::Read(io::Error::other(
                "decompression thread panicked",
            )))
        });
        match (produced, drained) {
            (Ok(unpacked), Ok(())) => Ok(unpacked),
            // The parser refused the layer and the producer only saw it stop.
            (Err(Error::Stopped), Err(e)) => Err(e),
            // Otherwise the producer's failure (a bomb, a corrupt stream) is
            // the root cause of whatever the tar side saw.
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        }
    })
}

/// Decompresses and hashes on its own thread, sending chunks to the parser.
fn decompress<R: Read>(
    blob: R,
    compression: Compression,
    max_size: u64,
    tx: SyncSender<io::Result<Vec<u8>>>,
) -> Result<Unpacked> {
    let inner: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            CHUNK, blob,
        ))),
        Compression::Zstd => Box::new(zstd::Decoder::new(blob).map_err(Error::Read)?),
        Compression::None => Box::new(blob),
    };
    let mut hashing = HashingReader::with_limit(inner, max_size);
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            match hashing.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // The blob reader below may have a limit of its own;
                    // only this reader's count says the output was too big.
                    let err = if is_limit_error(&e) && hashing.count() > max_size {
                        Error::TooBig(max_size)
                    } else {
                        Error::Read(e)
                    };
                    let _ = tx.send(Err(io::Error::other(err.to_string())));
                    return Err(err);
                }
            }
        }
        if filled == 0 {
            break;
        }
        chunk.truncate(filled);
        if tx.send(Ok(chunk)).is_err() {
            // The parser stopped (it reports why); stop reading.
            return Err(Error::Stopped);
        }
    }
    let (diff_id, size) = hashing.finish().map_err(Error::Read)?;
    Ok(Unpacked { diff_id, size })
}

struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.buf = chunk?;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Metadata common to every entry kind.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

fn apply<R: Read>(reader: R, root: &OwnedFd, max_size: u64) -> Result<()> {
    let shared_root = rustix::io::fcntl_dupfd_cloexec(root, 0).map_err(|e| Error::Root {
        path: PathBuf::from("."),
        source: e.into(),
    })?;
    thread::scope(|scope| {
        let writers = Writers::start(scope, WRITERS);
        let applied = apply_entries(reader, root, Arc::new(shared_root), &writers, max_size);
        let written = writers.finish();
        applied.and(written)
    })
}

fn apply_entries<R: Read>(
    reader: R,
    root: &OwnedFd,
    shared_root: Arc<OwnedFd>,
    writers: &Writers,
    max_size: u64,
) -> Result<()> {
    let mut archive = tar::Archive::new(reader);
    // File bytes written so far. A GNU sparse entry's holes are not in the
    // stream but are written out as zeros: a 2 KiB entry can claim 1 TiB.
    let mut written: u64 = 0;
    let mut walker = Walker {
        root: shared_root,
        cached: None,
    };
    // Paths this layer has created (hashed; a collision only costs a
    // barrier), and those a writer thread may still be creating.
    let mut seen: HashSet<u64> = HashSet::new();
    let mut pending: HashSet<u64> = HashSet::new();
    let mut dir_times: HashMap<Vec<OsString>, Timespec> = HashMap::new();
    let mut copy_buf = vec![0u8; 256 << 10];
    for entry in archive.entries().map_err(Error::Read)? {
        let mut entry = entry.map_err(Error::Read)?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let hostile = |why: &str| Error::Hostile {
            entry: shown.clone(),
            why: why.to_string(),
        };
        let io_err = |op: &'static str| {
            let entry = shown.clone();
            move |source: io::Error| Error::Io { entry, op, source }
        };
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            continue;
        }
        let path = entry_path(&raw).map_err(hostile)?;
        // The entry's parent, opened (or made) inside the layer: again after
        // anything that may have replaced a directory on the way.
        macro_rules! parent_dir {
            () => {
                walker
                    .dir(&path.parents, true)
                    .map_err(|e| e.into_error(&shown))?
            };
        }
        let meta = read_meta(&mut entry).map_err(io_err("reading headers"))?;
        let mut prefix = PathHasher::default();
        for parent in &path.parents {
            prefix.push(parent);
            seen.insert(prefix.key());
        }

        let Some(name) = path.name else {
            // The layer root: only its metadata can change.
            if kind != tar::EntryType::Directory {
                return Err(hostile("would replace the layer root with a non-directory"));
            }
            set_meta(root.as_fd(), &meta).map_err(io_err("setting metadata"))?;
            dir_times.insert(Vec::new(), meta.mtime);
            continue;
        };
        let parent = parent_dir!();

        match special(&name).map_err(hostile)? {
            Special::AufsMeta => continue,
            Special::Opaque => {
                rustix::fs::fsetxattr(parent, "trusted.overlay.opaque", b"y", XattrFlags::empty())
                    .map_err(|e| io_err("setting trusted.overlay.opaque")(e.into()))?;
                continue;
            }
            Special::Whiteout(target) => {
                let key = prefix.key_with(&target);
                if seen.contains(&key) {
                    writers.barrier(&mut pending)?;
                }
                seen.insert(key);
                walker
                    .remove(&path.parents, &target)
                    .map_err(io_err("replacing"))?;
                let parent = parent_dir!();
                rustix::fs::mknodat(
                    parent,
                    &target,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rustix::fs::makedev(0, 0),
                )
                .map_err(|e| io_err("creating whiteout device")(e.into()))?;
                continue;
            }
            Special::Plain => {}
        }
        if matches!(
            kind,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse
        ) {
            written = written.saturating_add(entry.size());
            if written > max_size {
                return Err(Error::TooBig(max_size));
            }
        }
        let key = prefix.key_with(&name);
        let regular = matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous);
        if regular && entry.size() <= ASYNC_MAX_FILE && !seen.contains(&key) {
            // A new small file: its creation, the slow part on most
            // filesystems, goes to a writer thread.
            let mut data = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut data).map_err(Error::Read)?;
            let dir = walker
                .shared(&path.parents, true)
                .map_err(|e| e.into_error(&shown))?;
            writers.submit(FileJob {
                dir,
                name,
                data,
                meta,
                entry: shown,
            })?;
            seen.insert(key);
            pending.insert(key);
            continue;
        }
        // Anything that may replace, link to or land on a path a writer is
        // still creating waits for the writers first.
        let link_target_pending = kind == tar::EntryType::Link
            && entry
                .link_name_bytes()
                .and_then(|t| entry_path(&t).ok())
                .is_some_and(|t| {
                    let mut h = PathHasher::default();
                    t.parents.iter().for_each(|c| h.push(c));
                    t.name.is_some_and(|n| pending.contains(&h.key_with(&n)))
                });
        if seen.contains(&key) || link_target_pending {
            writers.barrier(&mut pending)?;
        }
        seen.insert(key);
        let parent = parent_dir!();

        match kind {
            tar::EntryType::Directory => {
                let existing = rustix::fs::statat(parent, &name, AtFlags::SYMLINK_NOFOLLOW);
                let is_dir = matches!(&existing, Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory);
                if !is_dir {
                    if existing.is_ok() {
                        walker
                            .remove(&path.parents, &name)
                            .map_err(io_err("replacing"))?;
                    }
                    let parent = parent_dir!();
                    rustix::fs::mkdirat(parent, &name, Mode::from_raw_mode(0o700))
                        .map_err(|e| io_err("mkdir")(e.into()))?;
                }
                let parent = parent_dir!();
                let dir = rustix::fs::openat(
                    parent,
                    &name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io_err("open")(e.into()))?;
                set_meta(dir.as_fd(), &meta).map_err(io_err("setting metadata"))?;
                let mut full = path.parents.clone();
                full.push(name);
                dir_times.insert(full, meta.mtime);
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                let fd = match rustix::fs::openat(parent, &name, flags, Mode::from_raw_mode(0o600))
                {
                    Err(Errno::EXIST) => {
                        walker
                            .remove(&path.parents, &name)
                            .map_err(io_err("replacing"))?;
                        let parent = parent_dir!();
                        rustix::fs::openat(parent, &name, flags, Mode::from_raw_mode(0o600))
                    }
                    other => other,
                }
                .map_err(|e| io_err("create")(e.into()))?;
                let mut file = File::from(fd);
                loop {
                    let n = match entry.read(&mut copy_buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(Error::Read(e)),
                    };
                    file.write_all(&copy_buf[..n]).map_err(io_err("write"))?;
                }
                set_meta(file.as_fd(), &meta).map_err(io_err("setting metadata"))?;
                rustix::fs::futimens(&file, &times(meta.mtime))
                    .map_err(|e| io_err("setting mtime")(e.into()))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| hostile("symlink without a target"))?
                    .into_owned();
                let target = OsStr::from_bytes(&target);
                if let Err(Errno::EXIST) = rustix::fs::symlinkat(target, parent, &name) {
                    walker
                        .remove(&path.parents, &name)
                        .map_err(io_err("replacing"))?;
                    let parent = parent_dir!();
                    rustix::fs::symlinkat(target, parent, &name)
                        .map_err(|e| io_err("symlink")(e.into()))?;
                }
                let parent = parent_dir!();
                rustix::fs::chownat(
                    parent,
                    &name,
                    Some(Uid::from_raw(meta.uid)),
                    Some(Gid::from_raw(meta.gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| io_err("chown")(e.into()))?;
                rustix::fs::utimensat(parent, &name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| io_err("setting mtime")(e.into()))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| hostile("hardlink without a target"))?
                    .into_owned();
                let target_path = entry_path(&target)
                    .map_err(|why| hostile(&format!("hardlink target: {why}")))?;
                let Some(target_name) = target_path.name else {
                    return Err(hostile("hardlink to the layer root"));
                };
                // The target's directory is opened and kept apart from the
                // walker's cache, which `parent` lives in.
                let target_dir = walker
                    .open_dir(&target_path.parents)
                    .map_err(|e| e.into_error(&shown))?;
                let parent = parent_dir!();
                match rustix::fs::linkat(&target_dir, &target_name, parent, &name, AtFlags::empty()) {
                    Err(Errno::EXIST) => {
                        walker.remove(&path.parents, &name).map_err(io_err("replacing"))?;
                        let parent = walker.dir(&path.parents, true).map_err(|e| e.into_error(&shown))?;
                        rustix::fs::linkat(&target_dir, &target_name, parent, &name, AtFlags::empty())
                    }
                    other => other,
                }
                .map_err(|e| io_err("hardlink")(e.into()))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (file_type, dev) = match kind {
                    tar::EntryType::Fifo => (FileType::Fifo, 0),
                    _ => {
                        let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                        let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                        let ft = if kind == tar::EntryType::Char {
                            FileType::CharacterDevice
                        } else {
                            FileType::BlockDevice
                        };
                        (ft, rustix::fs::makedev(major, minor))
                    }
                };
                if let Err(Errno::EXIST) =
                    rustix::fs::mknodat(parent, &name, file_type, Mode::empty(), dev)
                {
                    walker
                        .remove(&path.parents, &name)
                        .map_err(io_err("replacing"))?;
                    let parent = parent_dir!();
                    rustix::fs::mknodat(parent, &name, file_type, Mode::empty(), dev)
                        .map_err(|e| io_err("mknod")(e.into()))?;
                }
                let parent = parent_dir!();
                // A node cannot be opened without side effects; O_PATH gives
                // an fd to chown, and /proc/self/fd names it for chmod.
                let node = rustix::fs::openat(
                    parent,
                    &name,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io_err("open")(e.into()))?;
                let node_path = proc_fd(&node);
                rustix::fs::chownat(
                    rustix::fs::CWD,
                    &node_path,
                    Some(Uid::from_raw(meta.uid)),
                    Some(Gid::from_raw(meta.gid)),
                    AtFlags::empty(),
                )
                .map_err(|e| io_err("chown")(e.into()))?;
                rustix::fs::chmodat(
                    rustix::fs::CWD,
                    &node_path,
                    Mode::from_raw_mode(meta.mode),
                    AtFlags::empty(),
                )
                .map_err(|e| io_err("chmod")(e.into()))?;
                rustix::fs::utimensat(
                    rustix::fs::CWD,
                    &node_path,
                    &times(meta.mtime),
                    AtFlags::empty(),
                )
                .map_err(|e| io_err("setting mtime")(e.into()))?;
            }
            other => {
                tracing::debug!(entry = %shown, kind = ?other, "skipping unsupported tar entry type")
            }
        }
    }
    writers.barrier(&mut pending)?;
    walker.cached = None;
    // Directory mtimes last: creating their children changed them.
    let mut dirs: Vec<(Vec<OsString>, Timespec)> = dir_times.into_iter().collect();
    dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    for (path, mtime) in dirs {
        // A directory later replaced by another kind of entry is skipped.
        if let Ok(dir) = walker.open_dir(&path) {
            let _ = rustix::fs::futimens(&dir, &times(mtime));
        }
    }
    Ok(())
}

/// A small regular file for a writer thread to create.
struct FileJob {
    dir: Arc<OwnedFd>,
    name: OsString,
    data: Vec<u8>,
    meta: Meta,
    entry: String,
}

impl FileJob {
    fn run(self) -> Result<()> {
        let io_err = |op: &'static str| {
            let entry = self.entry.clone();
            move |source: io::Error| Error::Io { entry, op, source }
        };
        // O_EXCL: the parser only sends names nothing in the layer has
        // used, so an existing name here is an error, never replaced.
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&*self.dir, &self.name, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| io_err("create")(e.into()))?;
        let mut file = File::from(fd);
        file.write_all(&self.data).map_err(io_err("write"))?;
        set_meta(file.as_fd(), &self.meta).map_err(io_err("setting metadata"))?;
        rustix::fs::futimens(&file, &times(self.meta.mtime))
            .map_err(|e| io_err("setting mtime")(e.into()))?;
        Ok(())
    }
}

#[derive(Default)]
struct WriterState {
    submitted: u64,
    done: u64,
    error: Option<Error>,
}

/// Writer threads fed through a bounded queue, with a barrier.
struct Writers {
    tx: Mutex<Option<SyncSender<FileJob>>>,
    state: Arc<(Mutex<WriterState>, Condvar)>,
}

impl Writers {
    fn start<'scope>(scope: &'scope thread::Scope<'scope, '_>, n: usize) -> Writers {
        let (tx, rx) = sync_channel::<FileJob>(64);
        let rx = Arc::new(Mutex::new(rx));
        let state: Arc<(Mutex<WriterState>, Condvar)> = Arc::default();
        for _ in 0..n {
            let (rx, state) = (Arc::clone(&rx), Arc::clone(&state));
            scope.spawn(move || {
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let result = job.run();
                    let (lock, cvar) = &*state;
                    if let Ok(mut st) = lock.lock() {
                        st.done += 1;
                        if let Err(e) = result {
                            st.error.get_or_insert(e);
                        }
                        cvar.notify_all();
                    }
                }
            });
        }
        Writers {
            tx: Mutex::new(Some(tx)),
            state,
        }
    }

    fn take_error(&self) -> Result<()> {
        match self.state.0.lock() {
            Ok(mut st) => st.error.take().map_or(Ok(()), Err),
            Err(_) => Err(Error::Read(io::Error::other("a writer thread panicked"))),
        }
    }

    fn submit(&self, job: FileJob) -> Result<()> {
        self.take_error()?;
        if let Ok(mut st) = self.state.0.lock() {
            st.submitted += 1;
        }
        let sent = match self.tx.lock() {
            Ok(tx) => tx.as_ref().is_some_and(|tx| tx.send(job).is_ok()),
            Err(_) => false,
        };
        if sent {
            Ok(())
        } else {
            Err(Error::Read(io::Error::other("the writer threads stopped")))
        }
    }

    /// Waits until every submitted file exists; reports the first failure.
    fn barrier(&self, pending: &mut HashSet<u64>) -> Result<()> {
        pending.clear();
        let (lock, cvar) = &*self.state;
        let mut st = lock
            .lock()
            .map_err(|_| Error::Read(io::Error::other("a writer thread panicked")))?;
        while st.done < st.submitted {
            st = cvar
                .wait(st)
                .map_err(|_| Error::Read(io::Error::other("a writer thread panicked")))?;
        }
        st.error.take().map_or(Ok(()), Err)
    }

    /// Stops the threads after the queue drains.
    fn finish(self) -> Result<()> {
        let result = self.barrier(&mut HashSet::new());
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        result
    }
}

/// Hashes a path one component at a time, so every prefix of an entry's
/// path gets a key without building strings.
#[derive(Default, Clone)]
struct PathHasher(std::collections::hash_map::DefaultHasher);

impl PathHasher {
    fn push(&mut self, component: &OsStr) {
        use std::hash::Hash;
        component.as_bytes().hash(&mut self.0);
    }
    fn key(&self) -> u64 {
        use std::hash::Hasher;
        self.0.finish()
    }
    fn key_with(&self, name: &OsStr) -> u64 {
        let mut h = self.clone();
        h.push(name);
        h.key()
    }
}

fn proc_fd(fd: &OwnedFd) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn times(mtime: Timespec) -> Timestamps {
    Timestamps {
        last_access: mtime,
        last_modification: mtime,
    }
}

/// Owner, mode (after chown, which clears set-id bits) and xattrs.
fn set_meta(fd: BorrowedFd<'_>, meta: &Meta) -> io::Result<()> {
    rustix::fs::fchown(
        fd,
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
    )?;
    rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode))?;
    for (name, value) in &meta.xattrs {
        rustix::fs::fsetxattr(fd, name.as_os_str(), value, XattrFlags::empty())?;
    }
    Ok(())
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
    let header = entry.header();
    let mut meta = Meta {
        mode: header.mode()? & 0o7777,
        uid: header.uid()?.try_into().unwrap_or(u32::MAX),
        gid: header.gid()?.try_into().unwrap_or(u32::MAX),
        mtime: Timespec {
            tv_sec: header.mtime()?.try_into().unwrap_or(0),
            tv_nsec: 0,
        },
        xattrs: Vec::new(),
    };
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax {
            let ext = ext?;
            let key = ext.key_bytes();
            let value = ext.value_bytes();
            let text = std::str::from_utf8(value).unwrap_or("");
            match key {
                b"uid" => meta.uid = text.parse().unwrap_or(meta.uid),
                b"gid" => meta.gid = text.parse().unwrap_or(meta.gid),
                b"mtime" => meta.mtime = pax_time(text).unwrap_or(meta.mtime),
                _ => {
                    if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                        // A layer must not forge overlayfs metadata
                        // (redirects, opaque flags) for the engine's mount.
                        if !name.starts_with(b"trusted.overlay.") {
                            meta.xattrs
                                .push((OsStr::from_bytes(name).to_os_string(), value.to_vec()));
                        }
                    }
                }
            }
        }
    }
    Ok(meta)
}

/// PAX times are decimal seconds with an optional fraction.
fn pax_time(s: &str) -> Option<Timespec> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let tv_nsec = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    Some(Timespec { tv_sec, tv_nsec })
}

fn proc_fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Opens directories under the layer root one component at a time with
/// `O_NOFOLLOW`, keeping the last one open (tars list a directory's entries
/// together).
struct Walker {
    root: Arc<OwnedFd>,
    /// Shared so a writer thread can keep using a directory the walker has
    /// moved on from.
    cached: Option<(Vec<OsString>, Arc<OwnedFd>)>,
}

enum WalkError {
    NotDir(OsString),
    Io(OsString, io::Error),
}

impl WalkError {
    fn into_error(self, entry: &str) -> Error {
        match self {
            WalkError::NotDir(c) => Error::Hostile {
                entry: entry.to_string(),
                why: format!(
                    "path component {:?} is a symlink or not a directory",
                    c.to_string_lossy()
                ),
            },
            WalkError::Io(c, source) => Error::Io {
                entry: entry.to_string(),
                op: if c.is_empty() { "open" } else { "open parent" },
                source,
            },
        }
    }
}

impl Walker {
    /// Removes whatever `parents/name` is: entries later in a tar replace
    /// earlier ones. Never follows a symlink.
    fn remove(&mut self, parents: &[OsString], name: &OsStr) -> io::Result<()> {
        let parent = self.dir(parents, true).map_err(|e| match e {
            WalkError::NotDir(c) => io::Error::other(format!("{:?} is not a directory", c)),
            WalkError::Io(_, e) => e,
        })?;
        let st = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            // std's remove_dir_all opens each level with O_NOFOLLOW (the
            // CVE-2022-21658 fix).
            std::fs::remove_dir_all(proc_fd_path(parent).join(name))?;
            // The cached directory may have been under it.
            self.cached = None;
        } else {
            rustix::fs::unlinkat(parent, name, AtFlags::empty())?;
        }
        Ok(())
    }

    /// The directory `parents` (relative to the root), created as needed
    /// when `create` (tars may omit directory entries).
    fn dir(
        &mut self,
        parents: &[OsString],
        create: bool,
    ) -> std::result::Result<BorrowedFd<'_>, WalkError> {
        self.fill_cache(parents, create)?;
        Ok(match &self.cached {
            Some((_, fd)) if !parents.is_empty() => fd.as_fd(),
            _ => self.root.as_fd(),
        })
    }

    /// Like [`Walker::dir`], for handing the directory to a writer thread.
    fn shared(
        &mut self,
        parents: &[OsString],
        create: bool,
    ) -> std::result::Result<Arc<OwnedFd>, WalkError> {
        self.fill_cache(parents, create)?;
        Ok(match &self.cached {
            Some((_, fd)) if !parents.is_empty() => Arc::clone(fd),
            _ => Arc::clone(&self.root),
        })
    }

    /// Makes `parents` the cached directory (the root needs no caching).
    fn fill_cache(
        &mut self,
        parents: &[OsString],
        create: bool,
    ) -> std::result::Result<(), WalkError> {
        if parents.is_empty() {
            return Ok(());
        }
        let hit = matches!(&self.cached, Some((p, _)) if p.as_slice() == parents);
        if !hit {
            let fd = self.walk(parents, create)?;
            self.cached = Some((parents.to_vec(), Arc::new(fd)));
        }
        Ok(())
    }

    /// An owned fd for an existing directory, outside the cache.
    fn open_dir(&self, parents: &[OsString]) -> std::result::Result<OwnedFd, WalkError> {
        if parents.is_empty() {
            return rustix::io::fcntl_dupfd_cloexec(&*self.root, 0)
                .map_err(|e| WalkError::Io(OsString::new(), e.into()));
        }
        self.walk(parents, false)
    }

    fn walk(&self, parents: &[OsString], create: bool) -> std::result::Result<OwnedFd, WalkError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut cur: Option<OwnedFd> = None;
        for comp in parents {
            let at = cur.as_ref().map_or(self.root.as_fd(), |fd| fd.as_fd());
            let next = match rustix::fs::openat(at, comp, flags, Mode::empty()) {
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(at, comp, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(WalkError::Io(comp.clone(), e.into())),
                    }
                    rustix::fs::openat(at, comp, flags, Mode::empty())
                }
                other => other,
            };
            cur = Some(match next {
                Ok(fd) => fd,
                Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                    return Err(WalkError::NotDir(comp.clone()));
                }
                Err(e) => return Err(WalkError::Io(comp.clone(), e.into())),
            });
        }
        match cur {
            Some(fd) => Ok(fd),
            None => rustix::io::fcntl_dupfd_cloexec(&*self.root, 0)
                .map_err(|e| WalkError::Io(OsString::new(), e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(parents: &[&str], name: Option<&str>) -> EntryPath {
        EntryPath {
            parents: parents.iter().map(OsString::from).collect(),
            name: name.map(OsString::from),
        }
    }

    #[test]
    fn entry_paths() {
        assert_eq!(
            entry_path(b"./usr/bin/sh").unwrap(),
            p(&["usr", "bin"], Some("sh"))
        );
        assert_eq!(entry_path(b"etc/").unwrap(), p(&[], Some("etc")));
        assert_eq!(entry_path(b"./").unwrap(), p(&[], None));
        assert_eq!(entry_path(b"a//./b").unwrap(), p(&["a"], Some("b")));
        assert!(entry_path(b"../x").is_err());
        assert!(entry_path(b"a/../../x").is_err());
        assert!(entry_path(b"/etc/passwd").is_err());
        assert!(entry_path(b"a/..").is_err());
    }

    #[test]
    fn whiteout_names() {
        assert_eq!(special(OsStr::new("file")).unwrap(), Special::Plain);
        assert_eq!(
            special(OsStr::new(".wh.file")).unwrap(),
            Special::Whiteout("file".into())
        );
        assert_eq!(
            special(OsStr::new(".wh..wh..opq")).unwrap(),
            Special::Opaque
        );
        assert_eq!(
            special(OsStr::new(".wh..wh.plnk")).unwrap(),
            Special::AufsMeta
        );
        assert!(special(OsStr::new(".wh...")).is_err());
        assert!(special(OsStr::new(".wh..")).is_err());
        assert!(special(OsStr::new(".wh.")).is_err());
    }

    /// A tar numeric field in base-256, as GNU tar writes sizes past 8 GiB.
    fn base256(v: u64) -> [u8; 12] {
        let mut f = [0u8; 12];
        f[4..].copy_from_slice(&v.to_be_bytes());
        f[0] = 0x80;
        f
    }

    #[test]
    fn a_sparse_entrys_holes_count_against_the_size_limit() {
        // 512 bytes of data at the end of a 1 TiB file (found by fuzzing:
        // the holes were written out as zeros until the disk filled).
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::GNUSparse);
        h.set_path("holes").unwrap();
        h.set_size(512);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.sparse[0].offset = base256((1 << 40) - 512);
        gnu.sparse[0].numbytes = base256(512);
        gnu.realsize = base256(1 << 40);
        h.set_cksum();
        let mut tar = h.as_bytes().to_vec();
        tar.extend([b'z'; 512]);
        tar.extend([0; 1024]);
        let dir = tempfile::tempdir().unwrap();
        let err = unpack(&tar[..], Compression::None, dir.path(), 1 << 20).unwrap_err();
        assert!(matches!(err, Error::TooBig(_)), "{err}");
    }

    #[test]
    fn pax_times() {
        assert_eq!(
            pax_time("12.5"),
            Some(Timespec {
                tv_sec: 12,
                tv_nsec: 500_000_000
            })
        );
        assert_eq!(
            pax_time("7"),
            Some(Timespec {
                tv_sec: 7,
                tv_nsec: 0
            })
        );
        assert_eq!(pax_time("x"), None);
    }
}
