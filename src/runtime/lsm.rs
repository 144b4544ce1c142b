//! Linux security modules a container process can be confined by:
//! `process.apparmorProfile` and `process.selinuxLabel`.
//!
//! Asking for a profile on a host without that LSM is an error, not a
//! silent "unconfined" (as runc's validator does). Which LSMs are active is
//! what the kernel says: lsm_list_modules(2) (Linux 6.8), else securityfs's
//! `lsm` file, else the modules' own switches. The label is written to
//! `/proc/thread-self/attr/…/exec` through a verified procfs handle
//! (CVE-2019-16884) and takes effect at the next exec.

use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::plan::ProcessPlan;
use super::procfs::{self, ProcFs};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "process.apparmorProfile {profile:?} was asked for, but AppArmor is not enabled on this host (active LSMs: {active})"
    )]
    NoAppArmor { profile: String, active: String },
    #[error(
        "process.selinuxLabel {label:?} was asked for, but SELinux is not enabled on this host (active LSMs: {active})"
    )]
    NoSelinux { label: String, active: String },
    #[error("process.selinuxLabel {0:?} is not a label (user:role:type[:level])")]
    BadLabel(String),
    #[error("process.apparmorProfile {0:?} is not a profile name")]
    BadProfile(String),
    #[error("{what}: {source}")]
    Proc {
        what: &'static str,
        source: procfs::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// The LSM ids of lsm_list_modules(2) (include/uapi/linux/lsm.h).
const LSM_ID_SELINUX: u64 = 101;
const LSM_ID_APPARMOR: u64 = 104;

/// The active LSMs, by name, as the kernel reports them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Active {
    pub names: Vec<String>,
}

impl Active {
    pub fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// From securityfs's `lsm` file: "lockdown,capability,apparmor".
    pub fn parse_list(text: &str) -> Active {
        Active {
            names: text
                .trim()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    /// From lsm_list_modules(2) ids.
    pub fn from_ids(ids: &[u64]) -> Active {
        let name = |id: u64| -> String {
            match id {
                100 => "capability",
                LSM_ID_SELINUX => "selinux",
                102 => "smack",
                103 => "tomoyo",
                LSM_ID_APPARMOR => "apparmor",
                105 => "yama",
                106 => "loadpin",
                107 => "safesetid",
                108 => "lockdown",
                109 => "bpf",
                110 => "landlock",
                111 => "ima",
                112 => "evm",
                113 => "ipe",
                _ => return format!("lsm#{id}"),
            }
            .to_string()
        };
        Active {
            names: ids.iter().map(|&i| name(i)).collect(),
        }
    }

    fn describe(&self) -> String {
        if self.names.is_empty() {
            "none".into()
        } else {
            self.names.join(",")
        }
    }
}

/// Asks the kernel which LSMs are active.
pub fn active() -> Active {
    if let Some(ids) = list_modules() {
        return Active::from_ids(&ids);
    }
    if let Ok(text) = std::fs::read_to_string("/sys/kernel/security/lsm") {
        return Active::parse_list(&text);
    }
    // Old kernel, securityfs not mounted: each module's own switch.
    let mut names = Vec::new();
    if std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
    {
        names.push("apparmor".to_string());
    }
    if Path::new("/sys/fs/selinux/enforce").exists() {
        names.push("selinux".to_string());
    }
    Active { names }
}

/// lsm_list_modules(2); None where the kernel lacks it (before 6.8).
fn list_modules() -> Option<Vec<u64>> {
    const SYS_LSM_LIST_MODULES: libc::c_long = 461;
    let mut ids = [0u64; 32];
    let mut size = std::mem::size_of_val(&ids) as u32;
    // SAFETY: the kernel writes at most `size` bytes to `ids` and updates
    // `size`; both live across the call.
    let n = unsafe {
        libc::syscall(
            SYS_LSM_LIST_MODULES,
            ids.as_mut_ptr(),
            &mut size as *mut u32,
            0u32,
        )
    };
    if n < 0 {
        tracing::debug!("lsm_list_modules: {}", Errno::last());
        return None;
    }
    Some(ids[..(n as usize).min(ids.len())].to_vec())
}

/// Checks, in the runtime before the container exists, that what `p` asks
/// for can be had here.
pub fn check(p: &ProcessPlan, active: &Active) -> Result<()> {
    if let Some(profile) = &p.apparmor_profile {
        check_profile(profile)?;
        if !active.has("apparmor") {
            return Err(Error::NoAppArmor {
                profile: profile.clone(),
                active: active.describe(),
            });
        }
    }
    if let Some(label) = &p.selinux_label {
        check_label(label)?;
        if !active.has("selinux") {
            return Err(Error::NoSelinux {
                label: label.clone(),
                active: active.describe(),
            });
        }
    }
    Ok(())
}

fn check_profile(profile: &str) -> Result<()> {
    if profile.contains(['\0', '\n']) {
        return Err(Error::BadProfile(profile.to_string()));
    }
    Ok(())
}

fn check_label(label: &str) -> Result<()> {
    let fields: Vec<&str> = label.splitn(4, ':').collect();
    if fields.len() < 3 || fields[..3].iter().any(|f| f.is_empty()) || label.contains(['\0', '\n'])
    {
        return Err(Error::BadLabel(label.to_string()));
    }
    Ok(())
}

/// One write to a procfs attribute file.
#[derive(Debug, PartialEq, Eq)]
pub struct AttrWrite {
    /// Relative to the procfs root.
    pub path: PathBuf,
    pub data: Vec<u8>,
    pub what: &'static str,
}

/// What must be written for `p`. `apparmor_dir` says whether the kernel has
/// the per-LSM `attr/apparmor/` directory (Linux 5.1), which is preferred
/// to the shared `attr/exec` when several LSMs are stacked.
pub fn writes(p: &ProcessPlan, apparmor_dir: bool) -> Vec<AttrWrite> {
    let mut out = Vec::new();
    if let Some(profile) = &p.apparmor_profile {
        let path = if apparmor_dir {
            "thread-self/attr/apparmor/exec"
        } else {
            "thread-self/attr/exec"
        };
        out.push(AttrWrite {
            path: path.into(),
            // AppArmor's change_onexec request.
            data: format!("exec {profile}").into_bytes(),
            what: "set the apparmor profile",
        });
    }
    if let Some(label) = &p.selinux_label {
        out.push(AttrWrite {
            path: "thread-self/attr/exec".into(),
            data: label.as_bytes().to_vec(),
            what: "set the selinux label",
        });
    }
    out
}

/// Applies the profile and label to this thread's next exec. Runs in the
/// container process, after pivot_root, through the container's /proc.
pub fn apply(p: &ProcessPlan) -> Result<()> {
    if p.apparmor_profile.is_none() && p.selinux_label.is_none() {
        return Ok(());
    }
    let what = "set the lsm label";
    let proc = ProcFs::open(Path::new("/proc"), what).map_err(|source| Error::Proc {
        what: "lsm",
        source,
    })?;
    let apparmor_dir = proc
        .open_file(
            Path::new("thread-self/attr/apparmor"),
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
            what,
        )
        .is_ok();
    for w in writes(p, apparmor_dir) {
        proc.write(&w.path, &w.data, w.what)
            .map_err(|source| Error::Proc {
                what: w.what,
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(apparmor: Option<&str>, selinux: Option<&str>) -> ProcessPlan {
        let spec: oci_spec::runtime::Process =
            serde_json::from_str(r#"{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"]}"#).unwrap();
        let mut p = super::super::plan::plan_process(&spec).unwrap();
        p.apparmor_profile = apparmor.map(str::to_string);
        p.selinux_label = selinux.map(str::to_string);
        p
    }

    #[test]
    fn lists_parse() {
        let a = Active::parse_list("lockdown,capability,landlock,bpf\n");
        assert_eq!(a.names, ["lockdown", "capability", "landlock", "bpf"]);
        assert!(!a.has("apparmor"));
        let b = Active::from_ids(&[108, 100, 104]);
        assert_eq!(b.names, ["lockdown", "capability", "apparmor"]);
        assert!(b.has("apparmor"));
    }

    #[test]
    fn asking_for_a_missing_lsm_is_an_error() {
        let none = Active::parse_list("capability,landlock");
        let e = check(&process(Some("docker-default"), None), &none).unwrap_err();
        assert_eq!(
            e.to_string(),
            "process.apparmorProfile \"docker-default\" was asked for, but AppArmor is not enabled on this host (active LSMs: capability,landlock)"
        );
        let e = check(
            &process(None, Some("system_u:system_r:container_t:s0")),
            &none,
        )
        .unwrap_err();
        assert!(e.to_string().contains("SELinux is not enabled"), "{e}");
        assert!(check(&process(None, None), &none).is_ok());
    }

    #[test]
    fn present_lsms_are_accepted() {
        let both = Active::from_ids(&[LSM_ID_APPARMOR, LSM_ID_SELINUX]);
        assert!(check(&process(Some("p"), Some("u:r:t:s0")), &both).is_ok());
    }

    #[test]
    fn malformed_labels_are_refused() {
        let se = Active::from_ids(&[LSM_ID_SELINUX]);
        for bad in ["container_t", "u:r", "u::t", "u:r:t\n"] {
            assert!(
                matches!(
                    check(&process(None, Some(bad)), &se),
                    Err(Error::BadLabel(_))
                ),
                "{bad:?}"
            );
        }
        assert!(check(&process(None, Some("u:r:t")), &se).is_ok());
    }

    #[test]
    fn what_gets_written_where() {
        let p = process(Some("docker-default"), Some("u:r:t:s0:c1,c2"));
        let w = writes(&p, true);
        assert_eq!(w[0].path, Path::new("thread-self/attr/apparmor/exec"));
        assert_eq!(w[0].data, b"exec docker-default");
        assert_eq!(w[1].path, Path::new("thread-self/attr/exec"));
        assert_eq!(w[1].data, b"u:r:t:s0:c1,c2");
        let old = writes(&p, false);
        assert_eq!(old[0].path, Path::new("thread-self/attr/exec"));
        assert!(writes(&process(None, None), true).is_empty());
    }
}
