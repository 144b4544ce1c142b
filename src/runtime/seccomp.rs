//! `linux.seccomp`: the profile checked and translated into a [`Profile`]
//! (pure), compiled to a classic BPF program by libseccomp (in the runtime,
//! before the container's process exists), and installed by the process
//! itself with seccomp(2) as late as possible.
//!
//! The program is compiled by libseccomp but loaded by us, so that every
//! filter flag of the runtime-spec is available whatever the libseccomp
//! version (WAIT_KILLABLE_RECV needs libseccomp 2.6 otherwise), and so that
//! the only syscall between "filter installed" and the exec is the exec.
//!
//! Ordering (as runc): with `noNewPrivileges`, the filter is installed right
//! before the final exec; without it the kernel wants CAP_SYS_ADMIN, so it
//! is installed before the user switch drops capabilities, and the rest of
//! the setup runs under the filter.
//!
//! SCMP_ACT_NOTIFY: the runtime connects to `listenerPath` (a host path, so
//! before the process leaves the host's mount namespace) and the process
//! sends the listener fd over that connection right after installing the
//! filter, with a `ContainerProcessState` as the message (runtime-spec,
//! config-linux.md "Seccomp").

use std::io::{Read, Seek};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use nix::errno::Errno;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("linux.seccomp: {0}")]
    Invalid(String),
    #[error("seccomp: compile the filter: {0}")]
    Compile(String),
    #[error("seccomp: install the filter: {errno}{hint}")]
    Install { errno: Errno, hint: &'static str },
    #[error("seccomp: listener {path}: {source}")]
    Listener {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("seccomp: send the notify fd to the listener: {0}")]
    Send(Errno),
}

pub type Result<T> = std::result::Result<T, Error>;

fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Invalid(msg.into()))
}

/// The largest program the kernel accepts (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;
/// The largest errno the kernel passes back (MAX_ERRNO).
const MAX_ERRNO: u32 = 4095;
/// Arguments a syscall can have.
const MAX_ARGS: usize = 6;

/// What happens when a rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    KillThread,
    KillProcess,
    Trap,
    Errno(u16),
    Trace(u16),
    Log,
    Allow,
    Notify,
}

impl Action {
    fn from_spec(a: LinuxSeccompAction, errno_ret: Option<u32>, what: &str) -> Result<Action> {
        // As runc: ERRNO and TRACE without a value return EPERM.
        let value = |name: &str| -> Result<u16> {
            match errno_ret {
                None => Ok(libc::EPERM as u16),
                Some(v) if v <= MAX_ERRNO => Ok(v as u16),
                Some(v) => invalid(format!(
                    "{what}: {name} value {v} is out of range (at most {MAX_ERRNO})"
                )),
            }
        };
        Ok(match a {
            LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
                Action::KillThread
            }
            LinuxSeccompAction::ScmpActKillProcess => Action::KillProcess,
            LinuxSeccompAction::ScmpActTrap => Action::Trap,
            LinuxSeccompAction::ScmpActErrno => Action::Errno(value("errnoRet")?),
            LinuxSeccompAction::ScmpActTrace => Action::Trace(value("errnoRet")?),
            LinuxSeccompAction::ScmpActLog => Action::Log,
            LinuxSeccompAction::ScmpActAllow => Action::Allow,
            LinuxSeccompAction::ScmpActNotify => Action::Notify,
        })
    }

    fn to_scmp(self) -> ScmpAction {
        match self {
            Action::KillThread => ScmpAction::KillThread,
            Action::KillProcess => ScmpAction::KillProcess,
            Action::Trap => ScmpAction::Trap,
            Action::Errno(e) => ScmpAction::Errno(i32::from(e)),
            Action::Trace(v) => ScmpAction::Trace(v),
            Action::Log => ScmpAction::Log,
            Action::Allow => ScmpAction::Allow,
            Action::Notify => ScmpAction::Notify,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// (arg & mask) == value
    MaskedEq {
        mask: u64,
    },
}

/// One argument condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cond {
    pub index: u32,
    pub op: Op,
    pub value: u64,
}

impl Cond {
    fn to_scmp(self) -> ScmpArgCompare {
        let op = match self.op {
            Op::Ne => ScmpCompareOp::NotEqual,
            Op::Lt => ScmpCompareOp::Less,
            Op::Le => ScmpCompareOp::LessOrEqual,
            Op::Eq => ScmpCompareOp::Equal,
            Op::Ge => ScmpCompareOp::GreaterEqual,
            Op::Gt => ScmpCompareOp::Greater,
            Op::MaskedEq { mask } => ScmpCompareOp::MaskedEqual(mask),
        };
        ScmpArgCompare::new(self.index, op, self.value)
    }
}

/// A rule for one syscall name. Its conditions must all hold (one libseccomp
/// rule); a syscall's rules are alternatives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub syscall: String,
    pub action: Action,
    pub conds: Vec<Cond>,
}

/// The flags of seccomp(2) (SECCOMP_FILTER_FLAG_*).
pub mod flag {
    pub const TSYNC: u32 = 1 << 0;
    pub const LOG: u32 = 1 << 1;
    pub const SPEC_ALLOW: u32 = 1 << 2;
    pub const NEW_LISTENER: u32 = 1 << 3;
    pub const WAIT_KILLABLE_RECV: u32 = 1 << 5;
}

/// Where the listener fd of SCMP_ACT_NOTIFY goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub path: PathBuf,
    pub metadata: String,
}

/// A checked `linux.seccomp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub default: Action,
    /// Architectures besides the native one.
    pub arches: Vec<ScmpArch>,
    /// SECCOMP_FILTER_FLAG_* bits for seccomp(2).
    pub flags: u32,
    pub rules: Vec<Rule>,
    pub listener: Option<Listener>,
}

fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

fn op(o: LinuxSeccompOperator, value: u64, value_two: Option<u64>) -> (Op, u64) {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => (Op::Ne, value),
        LinuxSeccompOperator::ScmpCmpLt => (Op::Lt, value),
        LinuxSeccompOperator::ScmpCmpLe => (Op::Le, value),
        LinuxSeccompOperator::ScmpCmpEq => (Op::Eq, value),
        LinuxSeccompOperator::ScmpCmpGe => (Op::Ge, value),
        LinuxSeccompOperator::ScmpCmpGt => (Op::Gt, value),
        // The spec's value is the mask and valueTwo the datum (as runc and
        // libseccomp's SCMP_CMP_MASKED_EQ).
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            (Op::MaskedEq { mask: value }, value_two.unwrap_or(0))
        }
    }
}

impl Profile {
    /// Checks and translates `linux.seccomp`. Unknown actions, operators,
    /// architectures and flags are already refused by the config parser;
    /// unknown syscall names are not an error here (see [`compile`]).
    pub fn from_spec(s: &LinuxSeccomp) -> Result<Profile> {
        let default =
            Action::from_spec(s.default_action(), s.default_errno_ret(), "defaultAction")?;
        if default == Action::Notify {
            // Every syscall, including those we need to hand the fd over,
            // would wait for a listener that has not got the fd yet.
            return invalid("SCMP_ACT_NOTIFY cannot be the default action");
        }

        let mut arches = Vec::new();
        for a in s.architectures().iter().flatten() {
            let a = arch(*a);
            if a != ScmpArch::Native && !arches.contains(&a) {
                arches.push(a);
            }
        }

        let mut rules = Vec::new();
        for (i, call) in s.syscalls().iter().flatten().enumerate() {
            let what = format!("syscalls[{i}]");
            if call.names().is_empty() {
                return invalid(format!("{what} names no syscall"));
            }
            let action = Action::from_spec(call.action(), call.errno_ret(), &what)?;
            let mut conds = Vec::new();
            let mut per_arg = [0usize; MAX_ARGS];
            for (j, a) in call.args().iter().flatten().enumerate() {
                if a.index() >= MAX_ARGS {
                    return invalid(format!(
                        "{what}.args[{j}]: index {} is out of range (0 to {})",
                        a.index(),
                        MAX_ARGS - 1
                    ));
                }
                per_arg[a.index()] += 1;
                let (op, value) = op(a.op(), a.value(), a.value_two());
                conds.push(Cond {
                    index: a.index() as u32,
                    op,
                    value,
                });
            }
            for name in call.names() {
                if name.is_empty() {
                    return invalid(format!("{what} has an empty syscall name"));
                }
                if action == Action::Notify && name == "sendmsg" {
                    // The process hands the listener fd over with sendmsg
                    // after the filter is in place.
                    return invalid(format!(
                        "{what}: SCMP_ACT_NOTIFY cannot be used for sendmsg"
                    ));
                }
                // A rule with the default action changes nothing (and
                // libseccomp refuses it), as runc does.
                if action == default {
                    continue;
                }
                if per_arg.iter().any(|&n| n > 1) {
                    // Conditions on the same argument cannot all hold in one
                    // libseccomp rule: as runc, each becomes its own rule.
                    for c in &conds {
                        rules.push(Rule {
                            syscall: name.clone(),
                            action,
                            conds: vec![*c],
                        });
                    }
                } else {
                    rules.push(Rule {
                        syscall: name.clone(),
                        action,
                        conds: conds.clone(),
                    });
                }
            }
        }

        let notify = rules.iter().any(|r| r.action == Action::Notify);
        let mut flags = 0;
        match s.flags() {
            // runc's default when the profile says nothing: no forced
            // speculative-store-bypass mitigation for filtered processes.
            None => flags |= flag::SPEC_ALLOW,
            Some(list) => {
                for f in list {
                    flags |= match f {
                        LinuxSeccompFilterFlag::SeccompFilterFlagLog => flag::LOG,
                        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => flag::SPEC_ALLOW,
                        // The process is single-threaded when it installs
                        // the filter: nothing to synchronize.
                        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 0,
                        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                            if !notify {
                                return invalid(
                                    "flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs an SCMP_ACT_NOTIFY rule",
                                );
                            }
                            flag::WAIT_KILLABLE_RECV
                        }
                    };
                }
            }
        }
        let path = s
            .listener_path()
            .clone()
            .filter(|p| !p.as_os_str().is_empty());
        let listener = match (notify, path) {
            (false, _) => None,
            (true, None) => return invalid("SCMP_ACT_NOTIFY rules need a listenerPath"),
            (true, Some(p)) if !p.is_absolute() => {
                return invalid(format!("listenerPath {} must be absolute", p.display()));
            }
            (true, Some(p)) => {
                flags |= flag::NEW_LISTENER;
                Some(Listener {
                    path: p,
                    metadata: s.listener_metadata().clone().unwrap_or_default(),
                })
            }
        };
        Ok(Profile {
            default,
            arches,
            flags,
            rules,
            listener,
        })
    }
}

/// A compiled filter, ready for seccomp(2).
#[derive(Clone, Debug)]
pub struct Program {
    insns: Vec<libc::sock_filter>,
    flags: u32,
}

impl Program {
    pub fn len(&self) -> usize {
        self.insns.len()
    }
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }
    pub fn flags(&self) -> u32 {
        self.flags
    }
}

/// The libseccomp we are linked with, "2.5.4" (or "unknown").
pub fn libseccomp_version() -> String {
    match libseccomp::ScmpVersion::current() {
        Ok(v) => format!("{}.{}.{}", v.major, v.minor, v.micro),
        Err(_) => "unknown".to_string(),
    }
}

fn scmp_err(what: &str) -> impl FnOnce(libseccomp::error::SeccompError) -> Error + '_ {
    move |e| Error::Compile(format!("{what}: {e}"))
}

/// Compiles the profile for this machine. A syscall name libseccomp does
/// not know is skipped (a profile written for a newer kernel or another
/// architecture), as runc does; names it knows but this architecture lacks
/// resolve to pseudo numbers that match nothing here.
pub fn compile(p: &Profile) -> Result<Program> {
    let mut ctx =
        ScmpFilterContext::new(p.default.to_scmp()).map_err(scmp_err("default action"))?;
    // We set no_new_privs ourselves, when the config asks for it.
    ctx.set_ctl_nnp(false).map_err(scmp_err("no_new_privs"))?;
    for a in &p.arches {
        ctx.add_arch(*a)
            .map_err(scmp_err(&format!("architecture {a:?}")))?;
    }
    for r in &p.rules {
        let Ok(nr) = ScmpSyscall::from_name(&r.syscall) else {
            tracing::debug!("seccomp: unknown syscall {:?} ignored", r.syscall);
            continue;
        };
        let conds: Vec<ScmpArgCompare> = r.conds.iter().map(|c| c.to_scmp()).collect();
        ctx.add_rule_conditional(r.action.to_scmp(), nr, &conds)
            .map_err(|e| Error::Compile(format!("rule for {}: {e}", r.syscall)))?;
    }
    let bytes = export(&ctx)?;
    let insns = decode(&bytes)?;
    if insns.len() > MAX_INSNS {
        return Err(Error::Compile(format!(
            "the profile needs {} BPF instructions, more than the kernel's {MAX_INSNS}",
            insns.len()
        )));
    }
    Ok(Program {
        insns,
        flags: p.flags,
    })
}

/// Compiled programs kept under the runtime's state root, keyed by what
/// the program depends on, as crun keeps them (`.cache/seccomp`): docker's
/// default profile takes libseccomp 10-20 ms to compile, on the critical
/// path of every container start, and is the same for almost every one.
///
/// A file is the SHA-256 of the program, then the program: a torn write (a
/// crash before it reached the disk) reads as a miss, never as a shorter
/// filter. Only root can write there (the state root is 0700).
pub struct Cache {
    dir: PathBuf,
}

const HASH_LEN: usize = 32;

/// Programs kept: at a store past this, the oldest written go (leftover
/// temp files of crashed stores too), so distinct profiles over the months
/// do not fill the state root.
const CACHE_KEEP: usize = 64;

impl Cache {
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    /// The cache file of a profile: everything compile() reads, and the
    /// versions of the compilers (ours and libseccomp).
    fn path(&self, p: &Profile) -> PathBuf {
        use sha2::Digest;
        let key = format!(
            "berth {} libseccomp {} {}\n{:?}\n{:?}\n{:?}",
            env!("CARGO_PKG_VERSION"),
            libseccomp_version(),
            std::env::consts::ARCH,
            p.default,
            p.arches,
            p.rules
        );
        self.dir
            .join(hex::encode(sha2::Sha256::digest(key.as_bytes())))
    }

    /// The program from the cache, or compiled (and stored for next time).
    pub fn compile(&self, p: &Profile) -> Result<Program> {
        let path = self.path(p);
        if let Some(insns) = std::fs::read(&path).ok().and_then(|b| Self::check(&b)) {
            return Ok(Program {
                insns,
                flags: p.flags,
            });
        }
        let prog = compile(p)?;
        match self.store(&path, &prog) {
            Ok(()) => self.prune(CACHE_KEEP),
            Err(e) => tracing::debug!("seccomp: cache {}: {e}", path.display()),
        }
        Ok(prog)
    }

    /// Keeps the `keep` newest files, by modification time.
    fn prune(&self, keep: usize) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if files.len() <= keep {
            return;
        }
        files.sort_by_key(|f| std::cmp::Reverse(f.0));
        for (_, path) in &files[keep..] {
            let _ = std::fs::remove_file(path);
        }
    }

    fn check(file: &[u8]) -> Option<Vec<libc::sock_filter>> {
        use sha2::Digest;
        let (hash, bytes) = file.split_at_checked(HASH_LEN)?;
        if sha2::Sha256::digest(bytes).as_slice() != hash {
            return None;
        }
        decode(bytes).ok().filter(|i| i.len() <= MAX_INSNS)
    }

    fn store(&self, path: &Path, prog: &Program) -> std::io::Result<()> {
        use sha2::Digest;
        use std::os::unix::fs::DirBuilderExt;
        let mut bytes = Vec::with_capacity(prog.insns.len() * 8);
        for i in &prog.insns {
            bytes.extend_from_slice(&i.code.to_ne_bytes());
            bytes.extend_from_slice(&[i.jt, i.jf]);
            bytes.extend_from_slice(&i.k.to_ne_bytes());
        }
        let mut file = sha2::Sha256::digest(&bytes).to_vec();
        file.extend_from_slice(&bytes);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        // Whole or not at all, also with two creates storing at once.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &file)?;
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

/// The raw program, through a memfd (libseccomp 2.5 exports only to an fd).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>> {
    let io = |op: &'static str| move |e: std::io::Error| Error::Compile(format!("{op}: {e}"));
    let fd = rustix::fs::memfd_create("berth-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| Error::Compile(format!("memfd_create: {e}")))?;
    ctx.export_bpf(&fd).map_err(scmp_err("export"))?;
    let mut f = std::fs::File::from(fd);
    f.rewind().map_err(io("rewind"))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(io("read"))?;
    Ok(bytes)
}

/// `struct sock_filter` array from its bytes (native byte order).
fn decode(bytes: &[u8]) -> Result<Vec<libc::sock_filter>> {
    const SIZE: usize = std::mem::size_of::<libc::sock_filter>();
    if bytes.is_empty() || !bytes.len().is_multiple_of(SIZE) {
        return Err(Error::Compile(format!(
            "libseccomp exported {} bytes, not a BPF program",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(SIZE)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

/// Installs the program on the calling thread. Returns the listener fd when
/// the program has SCMP_ACT_NOTIFY rules.
pub fn install(prog: &Program) -> Result<Option<OwnedFd>> {
    let fprog = libc::sock_fprog {
        len: prog.insns.len() as u16,
        filter: prog.insns.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at `prog.insns`, alive for the call; the kernel
    // copies the program.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(prog.flags),
            &fprog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        let errno = Errno::last();
        let hint = match errno {
            Errno::EACCES => " (without noNewPrivileges the filter needs CAP_SYS_ADMIN)",
            Errno::EINVAL => " (a flag this kernel does not support?)",
            _ => "",
        };
        return Err(Error::Install { errno, hint });
    }
    if prog.flags & flag::NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER, seccomp returns a new fd we now own.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as i32) }));
    }
    Ok(None)
}

/// Connects to the listener (from the runtime, in the host's mount
/// namespace); the container process later sends the fd on it.
pub fn connect_listener(path: &Path) -> Result<OwnedFd> {
    let s = std::os::unix::net::UnixStream::connect(path).map_err(|source| Error::Listener {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(s.into())
}

/// What a container process needs for its filter, made by the runtime
/// before the process exists: the compiled program and, for
/// SCMP_ACT_NOTIFY, a connection to the listener and its metadata.
pub struct Setup {
    pub program: Program,
    pub listener: Option<(OwnedFd, String)>,
}

impl Setup {
    pub fn prepare(p: &Profile, cache: &Cache) -> Result<Setup> {
        let program = cache.compile(p)?;
        let listener = match &p.listener {
            Some(l) => Some((connect_listener(&l.path)?, l.metadata.clone())),
            None => None,
        };
        Ok(Setup { program, listener })
    }
}

/// runtime-spec `ContainerProcessState`, the message that comes with the
/// listener fd.
#[derive(Debug, Serialize)]
pub struct ProcessState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub fds: [&'static str; 1],
    pub pid: i32,
    pub metadata: &'a str,
    pub state: super::state::HookState<'a>,
}

impl<'a> ProcessState<'a> {
    pub fn new(pid: i32, metadata: &'a str, state: super::state::HookState<'a>) -> Self {
        ProcessState {
            oci_version: super::SPEC_VERSION,
            fds: ["seccompFd"],
            pid,
            metadata,
            state,
        }
    }
}

/// Sends the listener fd with the serialized [`ProcessState`], then the
/// connection is closed by the caller.
pub fn send_listener(socket: &OwnedFd, fd: &OwnedFd, message: &[u8]) -> Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [std::io::IoSlice::new(message)];
    let sent = sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        &cmsg,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(Error::Send)?;
    // A stream socket may take a long message in parts.
    let mut rest = &message[sent.min(message.len())..];
    while !rest.is_empty() {
        let n = nix::sys::socket::send(socket.as_raw_fd(), rest, MsgFlags::MSG_NOSIGNAL)
            .map_err(Error::Send)?;
        rest = &rest[n..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> Result<Profile> {
        let s: LinuxSeccomp = serde_json::from_str(json).expect("valid LinuxSeccomp JSON");
        Profile::from_spec(&s)
    }

    #[test]
    fn actions_and_errno() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[
                {"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
                {"names":["mkdir"],"action":"SCMP_ACT_ERRNO"},
                {"names":["uname"],"action":"SCMP_ACT_KILL"},
                {"names":["getpid"],"action":"SCMP_ACT_KILL_PROCESS"},
                {"names":["getppid"],"action":"SCMP_ACT_TRACE","errnoRet":7},
                {"names":["chdir"],"action":"SCMP_ACT_LOG"},
                {"names":["chmod"],"action":"SCMP_ACT_TRAP"}]}"#,
        )
        .unwrap();
        assert_eq!(p.default, Action::Errno(38));
        let got: Vec<(&str, Action)> = p
            .rules
            .iter()
            .map(|r| (r.syscall.as_str(), r.action))
            .collect();
        assert_eq!(
            got,
            [
                ("read", Action::Allow),
                ("write", Action::Allow),
                ("mkdir", Action::Errno(libc::EPERM as u16)),
                ("uname", Action::KillThread),
                ("getpid", Action::KillProcess),
                ("getppid", Action::Trace(7)),
                ("chdir", Action::Log),
                ("chmod", Action::Trap),
            ]
        );
        // runc's default when flags are absent.
        assert_eq!(p.flags, flag::SPEC_ALLOW);
    }

    #[test]
    fn rules_with_the_default_action_are_dropped() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["mkdir"],"action":"SCMP_ACT_ERRNO"},
                {"names":["rmdir"],"action":"SCMP_ACT_ERRNO","errnoRet":2}]}"#,
        )
        .unwrap();
        assert_eq!(p.rules.len(), 1);
        assert_eq!(p.rules[0].syscall, "rmdir");
    }

    #[test]
    fn errno_out_of_range() {
        let e = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":70000}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "linux.seccomp: syscalls[0]: errnoRet value 70000 is out of range (at most 4095)"
        );
    }

    #[test]
    fn unknown_action_op_arch_and_flag_are_parse_errors() {
        for bad in [
            r#"{"defaultAction":"SCMP_ACT_NOPE"}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_FOO"}]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_ALMOST"}]}]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_Z80"]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_BOGUS"]}"#,
        ] {
            assert!(serde_json::from_str::<LinuxSeccomp>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn conditions_on_distinct_args_form_one_rule() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ERRNO",
                "args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"},{"index":1,"value":255,"valueTwo":3,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
        )
        .unwrap();
        assert_eq!(p.rules.len(), 1);
        assert_eq!(
            p.rules[0].conds,
            [
                Cond {
                    index: 0,
                    op: Op::Eq,
                    value: 8
                },
                Cond {
                    index: 1,
                    op: Op::MaskedEq { mask: 255 },
                    value: 3
                }
            ]
        );
    }

    #[test]
    fn conditions_on_one_arg_split_into_rules() {
        // runc's behaviour: "arg0 == 0 or arg0 == 8", not "and".
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW",
                "args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap();
        assert_eq!(p.rules.len(), 2);
        assert!(p.rules.iter().all(|r| r.conds.len() == 1));
    }

    #[test]
    fn argument_index_is_checked() {
        let e = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO",
                "args":[{"index":6,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("syscalls[0].args[0]: index 6"),
            "{e}"
        );
    }

    #[test]
    fn notify_needs_a_listener_and_sets_the_flag() {
        let e = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("listenerPath"), "{e}");
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock","listenerMetadata":"m",
                "flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV","SECCOMP_FILTER_FLAG_LOG"],
                "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        )
        .unwrap();
        assert_eq!(
            p.flags,
            flag::NEW_LISTENER | flag::WAIT_KILLABLE_RECV | flag::LOG
        );
        assert_eq!(
            p.listener,
            Some(Listener {
                path: "/run/agent.sock".into(),
                metadata: "m".into()
            })
        );
        for bad in [
            r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/a"}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/a","syscalls":[{"names":["sendmsg"],"action":"SCMP_ACT_NOTIFY"}]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"rel","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        ] {
            assert!(profile(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn explicit_empty_flags_mean_none() {
        let p = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":[]}"#).unwrap();
        assert_eq!(p.flags, 0);
    }

    #[test]
    fn cache_returns_the_compiled_program_and_refuses_torn_files() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("cache"));
        let words = |p: &Program| -> Vec<(u16, u8, u8, u32)> {
            p.insns.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect()
        };
        let fresh = compile(&p).unwrap();
        let first = cache.compile(&p).unwrap();
        let path = cache.path(&p);
        assert!(path.is_file(), "stored");
        let again = cache.compile(&p).unwrap();
        assert_eq!(words(&first), words(&fresh));
        assert_eq!(words(&again), words(&fresh));
        // A shorter file whose length still divides into instructions.
        let file = std::fs::read(&path).unwrap();
        std::fs::write(&path, &file[..file.len() - 8]).unwrap();
        assert!(Cache::check(&std::fs::read(&path).unwrap()).is_none());
        assert_eq!(words(&cache.compile(&p).unwrap()), words(&fresh));
        // Another profile, another file.
        let q = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["rmdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#).unwrap();
        assert_ne!(cache.path(&q), path);
    }

    #[test]
    fn cache_keeps_the_newest_programs() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_path_buf());
        let t0 = std::time::SystemTime::now() - std::time::Duration::from_secs(1000);
        for i in 0..10u64 {
            let f = std::fs::File::create(dir.path().join(format!("p{i}"))).unwrap();
            f.set_modified(t0 + std::time::Duration::from_secs(i))
                .unwrap();
        }
        cache.prune(10);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 10);
        cache.prune(4);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["p6", "p7", "p8", "p9"]);
    }

    #[test]
    fn compiles_and_skips_unknown_syscalls() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
                "syscalls":[{"names":["mkdir","mkdirat","no_such_syscall_ever","socketcall"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
        )
        .unwrap();
        let prog = compile(&p).unwrap();
        assert!(!prog.is_empty() && prog.len() < MAX_INSNS);
        // The last instruction of a libseccomp program is a return.
        assert_eq!(prog.insns.last().unwrap().code & 0x07, 0x06);
    }
}
