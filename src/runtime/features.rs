//! What this runtime implements, as the runtime-spec's features document
//! (features.md) describes it: `berth-runtime features` prints it for
//! callers (containerd, CRI-O, podman) deciding what they may ask for.
//!
//! Every list is read from the tables the code itself uses (mount options,
//! namespaces, capabilities, seccomp), so the document cannot promise what
//! the code does not do. "Enabled" means compiled in, not active on this
//! host, as the spec says; `supportedFlags` alone asks the kernel.

use std::collections::BTreeMap;

use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator};
use serde::{Deserialize, Serialize};

use super::plan::NsKind;

/// The oldest config version we accept.
pub const OCI_VERSION_MIN: &str = "1.0.0";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    pub oci_version_min: String,
    pub oci_version_max: String,
    pub hooks: Vec<String>,
    pub mount_options: Vec<String>,
    pub linux: Linux,
    pub annotations: BTreeMap<String, String>,
    /// Config annotations that change what the runtime does: none, berth
    /// reads no annotation.
    pub potentially_unsafe_config_annotations: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    pub namespaces: Vec<String>,
    pub capabilities: Vec<String>,
    pub cgroup: Cgroup,
    pub seccomp: Seccomp,
    pub apparmor: Enabled,
    pub selinux: Enabled,
    pub intel_rdt: Enabled,
    pub mount_extensions: MountExtensions,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cgroup {
    pub v1: bool,
    pub v2: bool,
    pub systemd: bool,
    pub systemd_user: bool,
    pub rdma: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seccomp {
    pub enabled: bool,
    pub actions: Vec<String>,
    pub operators: Vec<String>,
    pub archs: Vec<String>,
    pub known_flags: Vec<String>,
    pub supported_flags: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enabled {
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountExtensions {
    pub idmap: Enabled,
}

/// The spec's name of a value of one of oci-spec's enums (its serde name).
fn spec_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        // Every enum listed here serializes to a string.
        other => format!("{other:?}"),
    }
}

const ACTIONS: [LinuxSeccompAction; 9] = [
    LinuxSeccompAction::ScmpActKill,
    LinuxSeccompAction::ScmpActKillThread,
    LinuxSeccompAction::ScmpActKillProcess,
    LinuxSeccompAction::ScmpActTrap,
    LinuxSeccompAction::ScmpActErrno,
    LinuxSeccompAction::ScmpActNotify,
    LinuxSeccompAction::ScmpActTrace,
    LinuxSeccompAction::ScmpActLog,
    LinuxSeccompAction::ScmpActAllow,
];

const OPERATORS: [LinuxSeccompOperator; 7] = [
    LinuxSeccompOperator::ScmpCmpNe,
    LinuxSeccompOperator::ScmpCmpLt,
    LinuxSeccompOperator::ScmpCmpLe,
    LinuxSeccompOperator::ScmpCmpEq,
    LinuxSeccompOperator::ScmpCmpGe,
    LinuxSeccompOperator::ScmpCmpGt,
    LinuxSeccompOperator::ScmpCmpMaskedEq,
];

const ARCHS: [Arch; 24] = [
    Arch::ScmpArchNative,
    Arch::ScmpArchX86,
    Arch::ScmpArchX86_64,
    Arch::ScmpArchX32,
    Arch::ScmpArchArm,
    Arch::ScmpArchAarch64,
    Arch::ScmpArchMips,
    Arch::ScmpArchMips64,
    Arch::ScmpArchMips64n32,
    Arch::ScmpArchMipsel,
    Arch::ScmpArchMipsel64,
    Arch::ScmpArchMipsel64n32,
    Arch::ScmpArchPpc,
    Arch::ScmpArchPpc64,
    Arch::ScmpArchPpc64le,
    Arch::ScmpArchS390,
    Arch::ScmpArchS390x,
    Arch::ScmpArchParisc,
    Arch::ScmpArchParisc64,
    Arch::ScmpArchRiscv64,
    Arch::ScmpArchLoongarch64,
    Arch::ScmpArchM68k,
    Arch::ScmpArchSh,
    Arch::ScmpArchSheb,
];

/// The filter flags `linux.seccomp.flags` may name, with the seccomp(2) bits
/// that tell whether this kernel has each.
const FLAGS: [(LinuxSeccompFilterFlag, u32); 4] = [
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
        super::seccomp::flag::TSYNC,
    ),
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagLog,
        super::seccomp::flag::LOG,
    ),
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
        super::seccomp::flag::SPEC_ALLOW,
    ),
    // The kernel takes it only together with a new listener.
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
        super::seccomp::flag::WAIT_KILLABLE_RECV | super::seccomp::flag::NEW_LISTENER,
    ),
];

/// Whether the kernel knows the seccomp(2) filter `flags`: with a null
/// filter it fails EFAULT once the flags passed its check, EINVAL before
/// (libseccomp and runc probe the same way). Nothing is installed.
fn kernel_has_filter_flags(flags: u32) -> bool {
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    // SAFETY: the filter pointer is null, so the kernel reads no memory of
    // ours and installs nothing: it returns EFAULT or EINVAL.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            std::ptr::null::<libc::c_void>(),
        )
    };
    r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// The document, with `supportedFlags` from this kernel.
pub fn features() -> Features {
    let mut f = static_features();
    f.linux.seccomp.supported_flags = FLAGS
        .iter()
        .filter(|(_, bits)| kernel_has_filter_flags(*bits))
        .map(|(flag, _)| spec_name(flag))
        .collect();
    f
}

/// Everything but what the kernel is asked (pure).
pub fn static_features() -> Features {
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "io.github.seccomp.libseccomp.version".to_string(),
        super::seccomp::libseccomp_version(),
    );
    annotations.insert(
        "org.berth.runtime.version".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    );
    let mut capabilities: Vec<caps::Capability> = caps::all().into_iter().collect();
    capabilities.sort_by_key(|c| c.index());
    Features {
        oci_version_min: OCI_VERSION_MIN.to_string(),
        oci_version_max: super::SPEC_VERSION.to_string(),
        hooks: super::hooks::STAGES.iter().map(|s| s.to_string()).collect(),
        mount_options: super::mount_options::known()
            .into_iter()
            .map(str::to_string)
            .collect(),
        linux: Linux {
            namespaces: NsKind::ALL
                .iter()
                .map(|k| spec_name(&k.spec_type()))
                .collect(),
            capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
            cgroup: Cgroup {
                v1: true,
                v2: true,
                systemd: false,
                systemd_user: false,
                rdma: false,
            },
            seccomp: Seccomp {
                enabled: true,
                actions: ACTIONS.iter().map(spec_name).collect(),
                operators: OPERATORS.iter().map(spec_name).collect(),
                archs: ARCHS.iter().map(spec_name).collect(),
                known_flags: FLAGS.iter().map(|(f, _)| spec_name(f)).collect(),
                supported_flags: Vec::new(),
            },
            // Labels and profiles are applied (lsm.rs) where the host has
            // the module, refused where it has not.
            apparmor: Enabled { enabled: true },
            selinux: Enabled { enabled: true },
            intel_rdt: Enabled { enabled: false },
            mount_extensions: MountExtensions {
                idmap: Enabled { enabled: false },
            },
        },
        annotations,
        potentially_unsafe_config_annotations: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_specs() {
        let f = static_features();
        assert_eq!(f.linux.seccomp.actions[0], "SCMP_ACT_KILL");
        assert!(f.linux.seccomp.archs.contains(&"SCMP_ARCH_X86_64".into()));
        assert!(
            f.linux
                .seccomp
                .operators
                .contains(&"SCMP_CMP_MASKED_EQ".into())
        );
        assert!(
            f.linux
                .seccomp
                .known_flags
                .contains(&"SECCOMP_FILTER_FLAG_SPEC_ALLOW".into())
        );
        let mut ns = f.linux.namespaces.clone();
        ns.sort();
        assert_eq!(
            ns,
            [
                "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"
            ]
        );
        assert!(f.linux.capabilities.contains(&"CAP_SYS_ADMIN".into()));
        assert!(f.mount_options.contains(&"rbind".into()));
        assert!(f.mount_options.contains(&"rro".into()));
        assert_eq!(f.hooks.len(), 6);
    }

    #[test]
    fn oci_spec_reads_it() {
        let text = serde_json::to_string(&static_features()).unwrap();
        let parsed: oci_spec::runtime::Features = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.oci_version_max(), super::super::SPEC_VERSION);
        let linux = parsed.linux().as_ref().unwrap();
        assert_eq!(
            linux.cgroup().as_ref().unwrap().v1(),
            &Some(true),
            "cgroup.v1"
        );
        assert_eq!(linux.namespaces().as_ref().unwrap().len(), 8);
        assert_eq!(
            linux
                .seccomp()
                .as_ref()
                .unwrap()
                .archs()
                .as_ref()
                .unwrap()
                .len(),
            ARCHS.len()
        );
    }

    #[test]
    fn every_listed_seccomp_name_is_accepted_by_the_profile_parser() {
        let f = static_features();
        for a in &f.linux.seccomp.actions {
            if a == "SCMP_ACT_NOTIFY" {
                continue; // needs a listener: checked in seccomp's tests
            }
            let json = format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["getpid"],"action":"{a}"}}]}}"#
            );
            let s: oci_spec::runtime::LinuxSeccomp = serde_json::from_str(&json).unwrap();
            super::super::seccomp::Profile::from_spec(&s).unwrap_or_else(|e| panic!("{a}: {e}"));
        }
        for arch in &f.linux.seccomp.archs {
            let json =
                format!(r#"{{"defaultAction":"SCMP_ACT_ALLOW","architectures":["{arch}"]}}"#);
            let s: oci_spec::runtime::LinuxSeccomp = serde_json::from_str(&json).unwrap();
            super::super::seccomp::Profile::from_spec(&s).unwrap_or_else(|e| panic!("{arch}: {e}"));
        }
    }
}
