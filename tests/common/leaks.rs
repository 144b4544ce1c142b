//! The leak checker: a snapshot of what a test owns on the host before it
//! runs and after it has cleaned up, and every difference reported.
//!
//! Tests run concurrently inside one test binary, so a snapshot of the whole
//! host would see the neighbours' containers. Everything is scoped instead:
//!
//! - mounts: mount points under the test's directories, and mounts whose
//!   source or options name them (overlay lowerdirs);
//! - cgroups: the test's cgroup paths (an engine's `--cgroup-parent`, a
//!   runtime container's `/berth/ID`) in every hierarchy;
//! - processes: those whose environment carries the test's tag (every
//!   command the helpers start does, and shims inherit it), those in the
//!   test's cgroups, and their descendants;
//! - file descriptors of the test process: those naming the test's
//!   directories; and, when the binary runs one test at a time and no other
//!   scope lived meanwhile, every one;
//! - network links and nftables tables by the names the test's engine uses
//!   (its bridges, the veths of the containers it saw);
//! - files under the test's directories, minus the furniture an engine
//!   keeps on purpose (store content, lock files, empty top directories).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The environment variable that marks a test's processes.
pub const TAG_VAR: &str = "BERTH_TEST_SCOPE";

/// What a test owns.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Directories the test made: mounts, fds and (for `files`) content.
    pub dirs: Vec<PathBuf>,
    /// Of `dirs`, those whose files are compared.
    pub files: Vec<Files>,
    /// Cgroup paths relative to each hierarchy's root.
    pub cgroups: Vec<String>,
    /// Interface names and nftables table names.
    pub links: Vec<String>,
    pub nft_tables: Vec<String>,
    /// Strings whose presence in the nftables ruleset is a leak.
    pub nft_mentions: Vec<String>,
    /// The value of [`TAG_VAR`] in the test's processes.
    pub tag: String,
}

/// A directory whose files are compared, with the paths (relative to it)
/// allowed to appear, change or go: `a/b` exactly, `a/b/**` it and
/// anything below, `*` within one name. `deny` wins over `allow`.
#[derive(Clone, Debug, Default)]
pub struct Files {
    pub dir: PathBuf,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

/// Scopes alive now, and scopes ever made: a scope that saw no other from
/// birth to check may compare every fd of the process.
static LIVE: Mutex<(usize, u64)> = Mutex::new((0, 0));

pub struct Checker {
    pub scope: Scope,
    before: Snapshot,
    alone_since: Option<u64>,
    done: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Snapshot {
    mounts: BTreeSet<String>,
    cgroups: BTreeSet<String>,
    procs: BTreeMap<i32, String>,
    scoped_fds: BTreeSet<String>,
    all_fds: BTreeSet<String>,
    links: BTreeSet<String>,
    nft: BTreeSet<String>,
    files: BTreeMap<String, String>,
}

impl Checker {
    /// Takes the "before" snapshot.
    pub fn new(scope: Scope) -> Checker {
        let alone_since = {
            let mut l = LIVE.lock().unwrap_or_else(|e| e.into_inner());
            l.0 += 1;
            l.1 += 1;
            (l.0 == 1).then_some(l.1)
        };
        let before = Snapshot::take(&scope);
        Checker {
            scope,
            before,
            alone_since,
            done: false,
        }
    }

    /// Retakes the "before" snapshot (after setup the test does not count
    /// as its own, such as loading the fixture image).
    pub fn rebase(&mut self) {
        self.before = Snapshot::take(&self.scope);
    }

    /// Every difference between now and the "before" snapshot, in words.
    pub fn leaks(&self) -> Vec<String> {
        let after = Snapshot::take(&self.scope);
        let mut out = Vec::new();
        let set_diff =
            |what: &str, a: &BTreeSet<String>, b: &BTreeSet<String>, out: &mut Vec<String>| {
                for x in b.difference(a) {
                    out.push(format!("{what} left behind: {x}"));
                }
                for x in a.difference(b) {
                    out.push(format!("{what} gone that was there before: {x}"));
                }
            };
        set_diff("mount", &self.before.mounts, &after.mounts, &mut out);
        set_diff("cgroup", &self.before.cgroups, &after.cgroups, &mut out);
        set_diff("fd", &self.before.scoped_fds, &after.scoped_fds, &mut out);
        set_diff("link", &self.before.links, &after.links, &mut out);
        set_diff("nft", &self.before.nft, &after.nft, &mut out);
        for (pid, desc) in &after.procs {
            if !self.before.procs.contains_key(pid) {
                out.push(format!("process left behind: {pid} {desc}"));
            }
        }
        let alone = single_threaded() && {
            let l = LIVE.lock().unwrap_or_else(|e| e.into_inner());
            self.alone_since.is_some_and(|g| l.0 == 1 && l.1 == g)
        };
        if alone {
            set_diff(
                "fd (process-wide)",
                &self.before.all_fds,
                &after.all_fds,
                &mut out,
            );
        }
        for rules in &self.scope.files {
            let dir = &rules.dir;
            let key = |rel: &str| format!("{}/{rel}", dir.display());
            let allowed_path = |rel: &str| {
                rules.allow.iter().any(|p| glob(p, rel)) && !rules.deny.iter().any(|p| glob(p, rel))
            };
            let before: BTreeMap<&String, &String> = self
                .before
                .files
                .iter()
                .filter(|(k, _)| k.starts_with(&key("")))
                .collect();
            for (k, v) in after.files.iter().filter(|(k, _)| k.starts_with(&key(""))) {
                let rel = &k[key("").len()..];
                match before.get(k) {
                    None if !allowed_path(rel) => out.push(format!("file left behind: {k} ({v})")),
                    Some(old) if *old != v && !allowed_path(rel) => {
                        out.push(format!("file changed: {k} ({old} -> {v})"))
                    }
                    _ => {}
                }
            }
            for (k, v) in before {
                let rel = &k[key("").len()..];
                if !after.files.contains_key(k) && !allowed_path(rel) {
                    out.push(format!("file lost: {k} ({v})"));
                }
            }
        }
        out
    }

    /// Fails the test (panics) with every leak.
    #[track_caller]
    pub fn assert_no_leaks(&mut self) {
        self.done = true;
        let leaks = self.leaks();
        assert!(
            leaks.is_empty(),
            "leak check of {}: {} leak(s):\n  {}",
            self.scope.tag,
            leaks.len(),
            leaks.join("\n  ")
        );
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        let mut l = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        l.0 = l.0.saturating_sub(1);
    }
}

/// Whether the test binary runs one test at a time (`--test-threads=1` or
/// RUST_TEST_THREADS=1): only then is every fd of the process the current
/// test's business (helpers that are not scopes open fds too).
fn single_threaded() -> bool {
    let args: Vec<String> = std::env::args().collect();
    std::env::var("RUST_TEST_THREADS").is_ok_and(|v| v == "1")
        || args.iter().any(|a| a == "--test-threads=1")
        || args
            .windows(2)
            .any(|w| w[0] == "--test-threads" && w[1] == "1")
}

/// `pat` matches `rel`: exact, `x/**` (x and below), `*` (one name).
fn glob(pat: &str, rel: &str) -> bool {
    if let Some(prefix) = pat.strip_suffix("/**") {
        return rel == prefix
            || rel.strip_prefix(prefix).is_some_and(|r| r.starts_with('/'))
            || (prefix.contains('*') && glob_parts(prefix, rel, true));
    }
    glob_parts(pat, rel, false)
}

fn glob_parts(pat: &str, rel: &str, prefix_only: bool) -> bool {
    let p: Vec<&str> = pat.split('/').collect();
    let r: Vec<&str> = rel.split('/').collect();
    if r.len() < p.len() || (!prefix_only && r.len() != p.len()) {
        return false;
    }
    p.iter().zip(&r).all(|(p, r)| name_match(p, r))
}

/// One path component against a pattern with `*` anywhere.
fn name_match(p: &str, r: &str) -> bool {
    match p.split_once('*') {
        None => p == r,
        Some((pre, post)) => {
            r.len() >= pre.len() + post.len() && r.starts_with(pre) && {
                let rest = &r[pre.len()..];
                (0..=rest.len()).any(|i| rest.is_char_boundary(i) && name_match(post, &rest[i..]))
                    || post.is_empty()
            }
        }
    }
}

impl Snapshot {
    fn take(scope: &Scope) -> Snapshot {
        let dirs: Vec<String> = scope.dirs.iter().map(|d| d.display().to_string()).collect();
        let under = |p: &str| {
            dirs.iter()
                .any(|d| p == d || p.starts_with(&format!("{d}/")))
        };
        let mentions = |p: &str| dirs.iter().any(|d| p.contains(d.as_str()));
        let mut s = Snapshot::default();

        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut cgroup_mounts = Vec::new();
        for line in mountinfo.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(mp) = fields.get(4) else { continue };
            let post = line.split_once(" - ").map(|(_, p)| p).unwrap_or("");
            if post.starts_with("cgroup ") || post.starts_with("cgroup2 ") {
                cgroup_mounts.push(mp.to_string());
            }
            if under(mp) || mentions(post) {
                s.mounts
                    .insert(format!("{mp} ({})", post.split(' ').next().unwrap_or("")));
            }
        }

        for mp in &cgroup_mounts {
            for rel in &scope.cgroups {
                let dir = Path::new(mp).join(rel.trim_start_matches('/'));
                if dir.is_dir() {
                    walk_dirs(&dir, &mut s.cgroups);
                }
            }
        }

        s.procs = scoped_processes(scope, &s.cgroups);

        let me = std::process::id().to_string();
        for e in fs::read_dir("/proc/self/fd")
            .into_iter()
            .flatten()
            .flatten()
        {
            let target = fs::read_link(e.path())
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            let fd = e.file_name().to_string_lossy().into_owned();
            // The read_dir's own fd names /proc/<pid>/fd.
            if target == format!("/proc/{me}/fd") {
                continue;
            }
            if under(&target) || mentions(&target) {
                s.scoped_fds.insert(format!("{fd} -> {target}"));
            }
            s.all_fds.insert(format!("{fd} -> {target}"));
        }

        if !scope.links.is_empty() {
            for l in host_links() {
                if scope.links.contains(&l) {
                    s.links.insert(l);
                }
            }
        }
        if !scope.nft_tables.is_empty() || !scope.nft_mentions.is_empty() {
            let rules = host_ruleset();
            for t in &scope.nft_tables {
                if rules.contains(&format!("table inet {t} "))
                    || rules.contains(&format!("table ip {t} "))
                {
                    s.nft.insert(format!("table {t}"));
                }
            }
            for m in &scope.nft_mentions {
                if rules.contains(m.as_str()) {
                    s.nft.insert(format!("a rule naming {m}"));
                }
            }
        }

        for rules in &scope.files {
            let dir = &rules.dir;
            if let Ok(meta) = fs::symlink_metadata(dir) {
                walk_files(dir, dir, meta.dev(), &mut s.files);
            }
        }
        s
    }
}

/// The host's interface names (`ip -j link`).
fn host_links() -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["-j", "link", "show"])
        .output()
        .expect("run ip: is iproute2 installed?");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l["ifname"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `nft list ruleset`, as text.
fn host_ruleset() -> String {
    let out = std::process::Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .expect("run nft: is nftables installed?");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn walk_dirs(dir: &Path, out: &mut BTreeSet<String>) {
    out.insert(dir.display().to_string());
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk_dirs(&e.path(), out);
        }
    }
}

/// Every path under `dir` with its kind, size and mode; does not cross
/// into other filesystems (a container's rootfs mount is a mount leak,
/// reported as such).
fn walk_files(base: &Path, dir: &Path, dev: u64, out: &mut BTreeMap<String, String>) {
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        let Ok(m) = fs::symlink_metadata(&path) else {
            continue;
        };
        let kind = if m.is_dir() {
            "dir".to_string()
        } else if m.file_type().is_symlink() {
            "symlink".to_string()
        } else if m.is_file() {
            format!("file {} bytes", m.len())
        } else {
            "special".to_string()
        };
        let rel = path
            .strip_prefix(base)
            .unwrap_or(&path)
            .display()
            .to_string();
        out.insert(
            format!("{}/{rel}", base.display()),
            format!("{kind}, mode {:o}", m.mode() & 0o7777),
        );
        if m.is_dir() && m.dev() == dev {
            walk_files(base, &path, dev, out);
        }
    }
}

/// The test's processes: tagged, in its cgroups, or descended from those.
fn scoped_processes(scope: &Scope, cgroup_dirs: &BTreeSet<String>) -> BTreeMap<i32, String> {
    let me = std::process::id() as i32;
    let tag = format!("{TAG_VAR}={}", scope.tag);
    let cg_rels: Vec<String> = scope
        .cgroups
        .iter()
        .map(|c| format!("/{}", c.trim_start_matches('/')))
        .collect();
    let mut parent: BTreeMap<i32, i32> = BTreeMap::new();
    let mut desc: BTreeMap<i32, String> = BTreeMap::new();
    let mut roots = BTreeSet::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid …: comm may hold spaces and parentheses.
        let Some((comm, rest)) = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(") "))
        else {
            continue;
        };
        let mut f = rest.split(' ');
        let state = f.next().unwrap_or("?").to_string();
        let ppid = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        parent.insert(pid, ppid);
        let cmdline = fs::read(e.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        desc.insert(pid, format!("[{state}] ({comm}) {cmdline}"));
        let env = fs::read(e.path().join("environ")).unwrap_or_default();
        let tagged = !scope.tag.is_empty() && env.split(|b| *b == 0).any(|kv| kv == tag.as_bytes());
        let cgroup = fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        let in_cgroup = !cgroup_dirs.is_empty()
            && cgroup.lines().any(|l| {
                l.splitn(3, ':').nth(2).is_some_and(|p| {
                    cg_rels
                        .iter()
                        .any(|c| p == c || p.starts_with(&format!("{c}/")))
                })
            });
        // A zombie holds nothing but its pid, and reaping an orphan is the
        // host's init's job (ours may be slow at it).
        if (tagged || in_cgroup) && state != "Z" {
            roots.insert(pid);
        }
    }
    let mut out = BTreeMap::new();
    for &pid in parent.keys() {
        if desc.get(&pid).is_some_and(|d| d.starts_with("[Z]")) {
            continue;
        }
        let mut p = pid;
        for _ in 0..64 {
            if roots.contains(&p) {
                out.insert(pid, desc.get(&pid).cloned().unwrap_or_default());
                break;
            }
            match parent.get(&p) {
                Some(&pp) if pp > 1 && pp != me => p = pp,
                _ => break,
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn globs() {
        use super::glob;
        assert!(glob("root/locks/**", "root/locks"));
        assert!(glob("root/locks/**", "root/locks/a.lock"));
        assert!(!glob("root/locks/**", "root/locksmith"));
        assert!(glob("root/layers/*/**", "root/layers/abc/root/bin"));
        assert!(glob("root/layers/.tmp-*/**", "root/layers/.tmp-ab/root"));
        assert!(!glob("root/layers/.tmp-*/**", "root/layers/ab/root"));
        assert!(glob("state/shims", "state/shims"));
        assert!(!glob("state/shims", "state/shims/abc"));
        assert!(glob("root/*.json", "root/a.json"));
        assert!(!glob("root/*.json", "root/a/b.json"));
    }
}
