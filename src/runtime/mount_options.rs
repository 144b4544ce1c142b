//! Translating an OCI mount entry's `options` into mount(2) flags, data,
//! propagation and recursive attributes (pure: tested without root).

use nix::mount::MsFlags;

/// mount_setattr(2) attribute bits (linux/mount.h); nix does not carry them.
pub mod attr {
    pub const RDONLY: u64 = 0x0000_0001;
    pub const NOSUID: u64 = 0x0000_0002;
    pub const NODEV: u64 = 0x0000_0004;
    pub const NOEXEC: u64 = 0x0000_0008;
    pub const ATIME_MASK: u64 = 0x0000_0070;
    pub const RELATIME: u64 = 0x0000_0000;
    pub const NOATIME: u64 = 0x0000_0010;
    pub const STRICTATIME: u64 = 0x0000_0020;
    pub const NODIRATIME: u64 = 0x0000_0080;
    pub const NOSYMFOLLOW: u64 = 0x0020_0000;
}

/// What one mount entry asks for, flags sorted by how they are applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Flags for the mount(2) call itself (and the read-only remount of a bind).
    pub flags: MsFlags,
    /// Flags the entry cleared explicitly (`rw`, `suid`, …), kept so a bind
    /// remount knows the user asked for them off.
    pub cleared: MsFlags,
    /// Filesystem-specific options, comma-joined for the data argument.
    pub data: Vec<String>,
    /// Propagation changes, applied in order after the mount.
    pub propagation: Vec<MsFlags>,
    /// Recursive attributes (`rro`, `rnosuid`, …) for mount_setattr(AT_RECURSIVE).
    pub rec_set: u64,
    pub rec_clear: u64,
    /// `tmpcopyup` (runc's and crun's extension, for tmpfs): the new tmpfs
    /// starts with a copy of what the rootfs has at the destination.
    pub tmpcopyup: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            data: Vec::new(),
            propagation: Vec::new(),
            rec_set: 0,
            rec_clear: 0,
            tmpcopyup: false,
        }
    }
}

impl Options {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
    pub fn is_readonly(&self) -> bool {
        self.flags.contains(MsFlags::MS_RDONLY)
    }
    pub fn data_string(&self) -> String {
        self.data.join(",")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("mount option {0:?} is not supported (id-mapped mounts are not implemented yet)")]
    Unsupported(String),
}

/// Parses the `options` of a mount entry, as runc does: known flag names
/// become flags, everything else is filesystem data.
pub fn parse(options: &[String]) -> Result<Options, Error> {
    let mut o = Options::default();
    for opt in options {
        let opt = opt.as_str();
        if let Some((set, flag)) = flag_option(opt) {
            if set {
                o.flags.insert(flag);
                o.cleared.remove(flag);
            } else {
                o.flags.remove(flag);
                o.cleared.insert(flag);
            }
            continue;
        }
        if let Some(p) = propagation_option(opt) {
            o.propagation.push(p);
            continue;
        }
        if let Some(change) = recursive_option(opt) {
            match change {
                RecAttr::Set(bits) => {
                    o.rec_set |= bits;
                    o.rec_clear &= !bits;
                }
                RecAttr::Clear(bits) => {
                    o.rec_clear |= bits;
                    o.rec_set &= !bits;
                }
                // The access-time mode is one field: mount_setattr(2) takes
                // a new one only with the whole field in attr_clr.
                RecAttr::Atime(mode) => {
                    o.rec_set = (o.rec_set & !attr::ATIME_MASK) | mode;
                    o.rec_clear |= attr::ATIME_MASK;
                }
            }
            continue;
        }
        match opt {
            "idmap" | "ridmap" => return Err(Error::Unsupported(opt.to_string())),
            EXTENSIONS_TMPCOPYUP => o.tmpcopyup = true,
            // fstab's placeholder: no flag, no data.
            "" | "defaults" => {}
            _ => o.data.push(opt.to_string()),
        }
    }
    Ok(o)
}

/// Named mount(2) flags: `(name, true, flag)` sets, `(name, false, flag)` clears.
const FLAGS: &[(&str, bool, MsFlags)] = &[
    ("ro", true, MsFlags::MS_RDONLY),
    ("rw", false, MsFlags::MS_RDONLY),
    ("bind", true, MsFlags::MS_BIND),
    ("rbind", true, MsFlags::MS_BIND.union(MsFlags::MS_REC)),
    ("nosuid", true, MsFlags::MS_NOSUID),
    ("suid", false, MsFlags::MS_NOSUID),
    ("nodev", true, MsFlags::MS_NODEV),
    ("dev", false, MsFlags::MS_NODEV),
    ("noexec", true, MsFlags::MS_NOEXEC),
    ("exec", false, MsFlags::MS_NOEXEC),
    ("sync", true, MsFlags::MS_SYNCHRONOUS),
    ("async", false, MsFlags::MS_SYNCHRONOUS),
    ("dirsync", true, MsFlags::MS_DIRSYNC),
    ("remount", true, MsFlags::MS_REMOUNT),
    ("mand", true, MsFlags::MS_MANDLOCK),
    ("nomand", false, MsFlags::MS_MANDLOCK),
    ("atime", false, MsFlags::MS_NOATIME),
    ("noatime", true, MsFlags::MS_NOATIME),
    ("diratime", false, MsFlags::MS_NODIRATIME),
    ("nodiratime", true, MsFlags::MS_NODIRATIME),
    ("relatime", true, MsFlags::MS_RELATIME),
    ("norelatime", false, MsFlags::MS_RELATIME),
    ("strictatime", true, MsFlags::MS_STRICTATIME),
    ("nostrictatime", false, MsFlags::MS_STRICTATIME),
    ("lazytime", true, MsFlags::MS_LAZYTIME),
    ("nolazytime", false, MsFlags::MS_LAZYTIME),
    ("silent", true, MsFlags::MS_SILENT),
    ("loud", false, MsFlags::MS_SILENT),
];

/// Options of the runtime, not of mount(2).
const EXTENSIONS_TMPCOPYUP: &str = "tmpcopyup";

/// Propagation changes.
const PROPAGATION: &[(&str, MsFlags)] = &[
    ("private", MsFlags::MS_PRIVATE),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("shared", MsFlags::MS_SHARED),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", MsFlags::MS_SLAVE),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

/// A recursive attribute change (mount_setattr(2) with AT_RECURSIVE).
#[derive(Clone, Copy)]
enum RecAttr {
    Set(u64),
    Clear(u64),
    /// Sets the access-time mode (noatime, relatime, strictatime).
    Atime(u64),
}

/// The recursive variants runc and crun accept (`rro`, `rnoexec`, …).
const RECURSIVE: &[(&str, RecAttr)] = &[
    ("rro", RecAttr::Set(attr::RDONLY)),
    ("rrw", RecAttr::Clear(attr::RDONLY)),
    ("rnosuid", RecAttr::Set(attr::NOSUID)),
    ("rsuid", RecAttr::Clear(attr::NOSUID)),
    ("rnodev", RecAttr::Set(attr::NODEV)),
    ("rdev", RecAttr::Clear(attr::NODEV)),
    ("rnoexec", RecAttr::Set(attr::NOEXEC)),
    ("rexec", RecAttr::Clear(attr::NOEXEC)),
    ("rnodiratime", RecAttr::Set(attr::NODIRATIME)),
    ("rdiratime", RecAttr::Clear(attr::NODIRATIME)),
    ("rnosymfollow", RecAttr::Set(attr::NOSYMFOLLOW)),
    ("rsymfollow", RecAttr::Clear(attr::NOSYMFOLLOW)),
    ("rnoatime", RecAttr::Atime(attr::NOATIME)),
    ("rrelatime", RecAttr::Atime(attr::RELATIME)),
    ("rstrictatime", RecAttr::Atime(attr::STRICTATIME)),
];

fn flag_option(opt: &str) -> Option<(bool, MsFlags)> {
    FLAGS
        .iter()
        .find(|(name, _, _)| *name == opt)
        .map(|&(_, set, flag)| (set, flag))
}

fn propagation_option(opt: &str) -> Option<MsFlags> {
    PROPAGATION
        .iter()
        .find(|(name, _)| *name == opt)
        .map(|&(_, flag)| flag)
}

fn recursive_option(opt: &str) -> Option<RecAttr> {
    RECURSIVE
        .iter()
        .find(|(name, _)| *name == opt)
        .map(|&(_, change)| change)
}

/// Every option name [`parse`] acts on (the rest is filesystem data), for
/// `features`.
pub fn known() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = FLAGS
        .iter()
        .map(|f| f.0)
        .chain(PROPAGATION.iter().map(|p| p.0))
        .chain(RECURSIVE.iter().map(|r| r.0))
        .chain([EXTENSIONS_TMPCOPYUP])
        .collect();
    all.sort_unstable();
    all
}

/// Parses a `rootfsPropagation` value.
pub fn parse_propagation(value: &str) -> Option<MsFlags> {
    propagation_option(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> Options {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_and_data() {
        let o = p(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data_string(), "mode=755,size=65536k");
    }

    #[test]
    fn later_options_win() {
        let o = p(&["ro", "rw"]);
        assert!(!o.is_readonly());
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn bind_and_propagation() {
        let o = p(&["rbind", "ro", "rslave"]);
        assert!(o.is_bind() && o.flags.contains(MsFlags::MS_REC) && o.is_readonly());
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
    }

    #[test]
    fn recursive_attrs() {
        let o = p(&["rbind", "rro", "rnoexec"]);
        assert_eq!(o.rec_set, attr::RDONLY | attr::NOEXEC);
    }

    #[test]
    fn recursive_atime_modes_clear_the_whole_field() {
        let o = p(&["rnoatime"]);
        assert_eq!((o.rec_set, o.rec_clear), (attr::NOATIME, attr::ATIME_MASK));
        let o = p(&["rnoatime", "rstrictatime"]);
        assert_eq!(o.rec_set, attr::STRICTATIME);
        let o = p(&["rnoatime", "rrelatime", "rro"]);
        assert_eq!((o.rec_set, o.rec_clear), (attr::RDONLY, attr::ATIME_MASK));
    }

    #[test]
    fn known_options_are_not_data() {
        for name in known() {
            let o = p(&[name]);
            assert!(o.data.is_empty(), "{name} went to the data");
        }
        assert!(!known().contains(&"idmap"));
    }

    #[test]
    fn tmpcopyup_is_ours_not_the_kernels() {
        let o = p(&["nosuid", "tmpcopyup", "size=1m"]);
        assert!(o.tmpcopyup);
        assert_eq!(o.data_string(), "size=1m");
    }

    #[test]
    fn idmap_is_refused() {
        assert!(parse(&["idmap".to_string()]).is_err());
    }
}
