//! Writing `linux.resources` into the container's cgroup, each controller in
//! the hierarchy that holds it. A value set in the config that this host (or
//! this code) cannot honour is an error naming it: a limit is never dropped
//! silently.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::{Cgroup, CgroupDir, Error, HierarchyKind, Result, write_file};

/// Devices every container may use whatever its rules say, as runc allows:
/// the default device nodes, the pty multiplexer and the ptys.
const ALWAYS_ALLOWED: [&str; 10] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

impl Cgroup {
    fn v1(&self, controller: &str) -> Option<&CgroupDir> {
        self.dirs.iter().find(|d| d.kind.has_controller(controller))
    }

    fn v2(&self) -> Option<&CgroupDir> {
        self.dirs.iter().find(|d| d.kind == HierarchyKind::V2)
    }

    /// Where `controller` lives for this container: its v1 hierarchy, or
    /// the v2 one if the v2 hierarchy offers it.
    fn place(&self, controller: &str) -> Option<(&CgroupDir, bool)> {
        if let Some(d) = self.v1(controller) {
            return Some((d, false));
        }
        let d = self.v2()?;
        let parent = d.dir.parent()?;
        super::v2_controllers(parent)
            .iter()
            .any(|c| c == controller)
            .then_some((d, true))
    }

    fn need(&self, controller: &'static str, what: &str) -> Result<(&CgroupDir, bool)> {
        self.place(controller).ok_or_else(|| Error::Unsupported {
            what: what.to_string(),
            why: format!("the {controller} controller is not available on this host"),
        })
    }

    /// Applies the resources the config sets.
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        if let Some(devs) = r.devices() {
            self.apply_devices(devs)?;
        }
        if let Some(p) = r.pids() {
            let (d, _) = self.need("pids", "linux.resources.pids.limit")?;
            let v = if p.limit() <= 0 {
                "max".to_string()
            } else {
                p.limit().to_string()
            };
            write_file(&d.dir.join("pids.max"), &v)?;
        }
        if let Some(m) = r.memory() {
            if let Some(limit) = m.limit() {
                let (d, v2) = self.need("memory", "linux.resources.memory.limit")?;
                let (file, v) = if v2 {
                    (
                        "memory.max",
                        if limit < 0 {
                            "max".to_string()
                        } else {
                            limit.to_string()
                        },
                    )
                } else {
                    ("memory.limit_in_bytes", limit.to_string())
                };
                write_file(&d.dir.join(file), &v)?;
            }
            let others = [
                ("reservation", m.reservation().is_some()),
                ("swap", m.swap().is_some()),
                ("kernel", m.kernel().is_some()),
                ("kernelTCP", m.kernel_tcp().is_some()),
                ("swappiness", m.swappiness().is_some()),
                ("disableOOMKiller", m.disable_oom_killer().is_some()),
                ("useHierarchy", m.use_hierarchy().is_some()),
                ("checkBeforeUpdate", m.check_before_update().is_some()),
            ];
            unsupported("memory", &others)?;
        }
        if let Some(c) = r.cpu() {
            let others = [
                ("shares", c.shares().is_some()),
                ("quota", c.quota().is_some()),
                ("period", c.period().is_some()),
                ("realtimeRuntime", c.realtime_runtime().is_some()),
                ("realtimePeriod", c.realtime_period().is_some()),
                ("cpus", c.cpus().as_deref().is_some_and(|s| !s.is_empty())),
                ("mems", c.mems().as_deref().is_some_and(|s| !s.is_empty())),
                ("idle", c.idle().is_some()),
            ];
            unsupported("cpu", &others)?;
        }
        let rest = [
            ("blockIO", r.block_io().is_some()),
            (
                "hugepageLimits",
                r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty()),
            ),
            ("network", r.network().is_some()),
            ("rdma", r.rdma().as_ref().is_some_and(|v| !v.is_empty())),
            (
                "unified",
                r.unified().as_ref().is_some_and(|v| !v.is_empty()),
            ),
        ];
        unsupported("resources", &rest)
    }

    fn apply_devices(&self, rules: &[LinuxDeviceCgroup]) -> Result<()> {
        if let Some(d) = self.v1("devices") {
            // Start from nothing, then allow: rules apply in order.
            write_file(&d.dir.join("devices.deny"), "a")?;
            for rule in rules {
                let line = device_rule(rule);
                let file = if rule.allow() {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                write_file(&d.dir.join(file), &line)?;
            }
            for line in ALWAYS_ALLOWED {
                write_file(&d.dir.join("devices.allow"), line)?;
            }
            return Ok(());
        }
        if self.v2().is_some() {
            return Err(Error::Unsupported {
                what: "linux.resources.devices".into(),
                why: "device rules on cgroup v2 need an eBPF program, not written yet".into(),
            });
        }
        Ok(())
    }
}

fn unsupported(group: &str, fields: &[(&str, bool)]) -> Result<()> {
    match fields.iter().find(|(_, set)| *set) {
        Some((name, _)) => Err(Error::Unsupported {
            what: format!("linux.resources.{group}.{name}"),
            why: "not implemented yet; remove it from the config".into(),
        }),
        None => Ok(()),
    }
}

/// A v1 devices rule line: "c 1:3 rwm", with `*` for wildcards.
pub fn device_rule(r: &LinuxDeviceCgroup) -> String {
    let t = match r.typ() {
        None | Some(LinuxDeviceType::A) => "a",
        Some(LinuxDeviceType::B) => "b",
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => "c",
        Some(LinuxDeviceType::P) => "p",
    };
    let num = |n: Option<i64>| {
        n.filter(|n| *n >= 0)
            .map_or("*".to_string(), |n| n.to_string())
    };
    let access = r
        .access()
        .clone()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "rwm".to_string());
    if t == "a" {
        return format!("a *:* {access}");
    }
    format!("{t} {}:{} {access}", num(r.major()), num(r.minor()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_rules() {
        let r: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":false,"access":"rwm"}"#).unwrap();
        assert_eq!(device_rule(&r), "a *:* rwm");
        let r: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":true,"type":"c","major":10,"access":"rw"}"#).unwrap();
        assert_eq!(device_rule(&r), "c 10:* rw");
    }
}
