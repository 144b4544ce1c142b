//! The OCI config of an engine container, from its [`Config`] and
//! [`HostConfig`], with docker's defaults: its 14 capabilities, masked and
//! read-only paths, /dev, /dev/shm, cgroup and sysfs mounts, and the seccomp
//! profile. Pure: tested without root.

use serde_json::{Value, json};

use super::config::{Config, HostConfig, RuntimeContext, SeccompChoice};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("unknown capability {0:?}")]
    UnknownCap(String),
    #[error("unknown ulimit {0:?}: use a name like nofile, nproc, core, memlock, stack")]
    UnknownUlimit(String),
    #[error("invalid seccomp profile: {0}")]
    Seccomp(String),
    #[error("no command: the image has no Entrypoint or Cmd and none was given")]
    NoCommand,
}

/// docker's default capabilities.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn cap_name(c: &str) -> Result<String, Error> {
    let up = c.to_ascii_uppercase();
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    full.parse::<caps::Capability>()
        .map_err(|_| Error::UnknownCap(c.to_string()))?;
    Ok(full)
}

/// docker's capability arithmetic: defaults, minus --cap-drop, plus
/// --cap-add; `ALL` in either.
pub fn capabilities(host: &HostConfig) -> Result<Vec<String>, Error> {
    let all: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
    if host.privileged {
        let mut v = all;
        v.sort();
        return Ok(v);
    }
    let mut set: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    if host.cap_drop.iter().any(|c| c.eq_ignore_ascii_case("all")) {
        set.clear();
    } else {
        for c in &host.cap_drop {
            let name = cap_name(c)?;
            set.retain(|s| *s != name);
        }
    }
    if host.cap_add.iter().any(|c| c.eq_ignore_ascii_case("all")) {
        set = all;
    } else {
        for c in &host.cap_add {
            let name = cap_name(c)?;
            if !set.contains(&name) {
                set.push(name);
            }
        }
    }
    set.sort();
    Ok(set)
}

/// The `--ulimit`s name known limits (checked at create, not first at
/// start).
pub fn check_ulimits(host: &HostConfig) -> Result<(), Error> {
    host.ulimits
        .iter()
        .try_for_each(|u| rlimit_type(&u.name).map(drop))
}

fn rlimit_type(name: &str) -> Result<&'static str, Error> {
    Ok(match name {
        "core" => "RLIMIT_CORE",
        "cpu" => "RLIMIT_CPU",
        "data" => "RLIMIT_DATA",
        "fsize" => "RLIMIT_FSIZE",
        "locks" => "RLIMIT_LOCKS",
        "memlock" => "RLIMIT_MEMLOCK",
        "msgqueue" => "RLIMIT_MSGQUEUE",
        "nice" => "RLIMIT_NICE",
        "nofile" => "RLIMIT_NOFILE",
        "nproc" => "RLIMIT_NPROC",
        "rss" => "RLIMIT_RSS",
        "rtprio" => "RLIMIT_RTPRIO",
        "rttime" => "RLIMIT_RTTIME",
        "sigpending" => "RLIMIT_SIGPENDING",
        "stack" => "RLIMIT_STACK",
        "as" => "RLIMIT_AS",
        other => return Err(Error::UnknownUlimit(other.to_string())),
    })
}

/// The process's argv: entrypoint then cmd, behind /dev/init with --init.
pub fn argv(cfg: &Config, init: bool) -> Result<Vec<String>, Error> {
    let mut args: Vec<String> = cfg
        .entrypoint
        .iter()
        .chain(cfg.cmd.iter())
        .cloned()
        .collect();
    if args.is_empty() {
        return Err(Error::NoCommand);
    }
    if init {
        args.splice(0..0, ["/dev/init".to_string(), "--".to_string()]);
    }
    Ok(args)
}

fn env(cfg: &Config, ctx: &RuntimeContext) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    let mut set = |kv: String| {
        let key = kv.split('=').next().unwrap_or_default().to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(kv);
    };
    set(DEFAULT_PATH.to_string());
    set(format!("HOSTNAME={}", cfg.hostname));
    if cfg.tty {
        set("TERM=xterm".to_string());
    }
    for e in &cfg.env {
        set(e.clone());
    }
    if let Some(h) = &ctx.home
        && !env.iter().any(|e| e.starts_with("HOME="))
    {
        env.push(format!("HOME={h}"));
    }
    env
}

/// Builds the config.json for the container.
pub fn build(cfg: &Config, host: &HostConfig, ctx: &RuntimeContext) -> Result<Value, Error> {
    let caps = capabilities(host)?;
    let mut rlimits = Vec::new();
    for u in &host.ulimits {
        rlimits.push(json!({"type": rlimit_type(&u.name)?, "soft": u.soft, "hard": u.hard}));
    }
    let ro = if host.privileged { "rw" } else { "ro" };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", ro]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", ro]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]}),
    ];
    for (src, dest) in &ctx.etc_files {
        mounts.push(json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate"]}));
    }
    for (src, dest, opts) in &ctx.binds {
        let mut o = vec![Value::from("rbind")];
        o.extend(opts.iter().map(|s| Value::from(s.as_str())));
        mounts.push(json!({"destination": dest, "type": "bind", "source": src, "options": o}));
    }
    for (dest, opts) in &ctx.tmpfs {
        let mut o: Vec<Value> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
        o.extend(opts.iter().map(|s| Value::from(s.as_str())));
        mounts.push(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": o}));
    }
    if let Some(init) = &ctx.init_binary {
        mounts.push(json!({"destination": "/dev/init", "type": "bind", "source": init, "options": ["bind", "ro"]}));
    }

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    if !ctx.host_network {
        let mut net = json!({"type": "network"});
        if let Some(p) = &ctx.netns_path {
            net["path"] = json!(p);
        }
        namespaces.push(net);
    }

    let mut resources = serde_json::Map::new();
    if host.privileged {
        resources.insert("devices".into(), json!([{"allow": true, "access": "rwm"}]));
    } else {
        resources.insert("devices".into(), json!([{"allow": false, "access": "rwm"}]));
    }
    let mut memory = serde_json::Map::new();
    if host.memory > 0 {
        memory.insert("limit".into(), host.memory.into());
    }
    if host.memory_swap != 0 {
        memory.insert("swap".into(), host.memory_swap.into());
    }
    if !memory.is_empty() {
        resources.insert("memory".into(), Value::Object(memory));
    }
    let mut cpu = serde_json::Map::new();
    if host.nano_cpus > 0 {
        let period: i64 = 100_000;
        cpu.insert("period".into(), period.into());
        cpu.insert(
            "quota".into(),
            (host.nano_cpus * period / 1_000_000_000).into(),
        );
    }
    if host.cpu_shares > 0 {
        cpu.insert("shares".into(), host.cpu_shares.into());
    }
    if !host.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), host.cpuset_cpus.clone().into());
    }
    if !cpu.is_empty() {
        resources.insert("cpu".into(), Value::Object(cpu));
    }
    if host.pids_limit != 0 {
        resources.insert("pids".into(), json!({"limit": host.pids_limit}));
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": Value::Object(resources),
        "cgroupsPath": ctx.cgroups_path,
    });
    if !host.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    match (&host.seccomp, host.privileged) {
        (_, true) | (SeccompChoice::Unconfined, _) => {}
        (SeccompChoice::Default, false) => {
            if let Some(p) = &ctx.default_seccomp {
                linux["seccomp"] = p.clone();
            }
        }
        (SeccompChoice::Profile(text), false) => {
            let v: Value = serde_json::from_str(text).map_err(|e| Error::Seccomp(e.to_string()))?;
            linux["seccomp"] = v;
        }
    }

    let mut user = json!({"uid": ctx.uid, "gid": ctx.gid});
    if !ctx.additional_gids.is_empty() {
        user["additionalGids"] = json!(ctx.additional_gids);
    }
    let process = json!({
        "terminal": cfg.tty,
        "user": user,
        "args": argv(cfg, host.init)?,
        "env": env(cfg, ctx),
        "cwd": if cfg.working_dir.is_empty() { "/" } else { cfg.working_dir.as_str() },
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": rlimits,
        "noNewPrivileges": host.no_new_privileges,
    });
    Ok(json!({
        "ociVersion": crate::runtime::SPEC_VERSION,
        "process": process,
        "root": {"path": ctx.rootfs, "readonly": host.readonly_rootfs},
        "hostname": cfg.hostname,
        "mounts": mounts,
        "linux": linux,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config {
            cmd: vec!["sh".into()],
            hostname: "abc".into(),
            ..Default::default()
        }
    }

    #[test]
    fn default_caps_and_arithmetic() {
        let mut h = HostConfig::default();
        assert_eq!(capabilities(&h).unwrap().len(), 14);
        h.cap_drop = vec!["NET_RAW".into(), "cap_chown".into()];
        h.cap_add = vec!["SYS_ADMIN".into()];
        let c = capabilities(&h).unwrap();
        assert_eq!(c.len(), 13);
        assert!(
            c.contains(&"CAP_SYS_ADMIN".to_string()) && !c.contains(&"CAP_NET_RAW".to_string())
        );
        h.cap_drop = vec!["ALL".into()];
        h.cap_add = vec!["KILL".into()];
        assert_eq!(capabilities(&h).unwrap(), vec!["CAP_KILL"]);
        h.cap_add = vec!["NOPE".into()];
        assert_eq!(capabilities(&h), Err(Error::UnknownCap("NOPE".into())));
    }

    #[test]
    fn argv_and_init() {
        let mut c = cfg();
        c.entrypoint = vec!["/bin/ep".into()];
        c.cmd = vec!["a".into()];
        assert_eq!(argv(&c, false).unwrap(), vec!["/bin/ep", "a"]);
        assert_eq!(argv(&c, true).unwrap()[..2], ["/dev/init", "--"]);
        assert_eq!(argv(&Config::default(), false), Err(Error::NoCommand));
    }

    #[test]
    fn built_spec_plans() {
        let mut c = cfg();
        c.env = vec!["PATH=/bin".into(), "A=1".into()];
        c.tty = true;
        let h = HostConfig {
            memory: 64 << 20,
            pids_limit: 10,
            nano_cpus: 500_000_000,
            ..Default::default()
        };
        let ctx = RuntimeContext {
            rootfs: "/r".into(),
            cgroups_path: "/berth/x".into(),
            ..Default::default()
        };
        let v = build(&c, &h, &ctx).unwrap();
        let env = v["process"]["env"].as_array().unwrap();
        assert!(
            env.contains(&json!("PATH=/bin"))
                && env.contains(&json!("TERM=xterm"))
                && env.contains(&json!("HOSTNAME=abc"))
        );
        assert_eq!(
            env.iter()
                .filter(|e| e.as_str().unwrap().starts_with("PATH="))
                .count(),
            1
        );
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 50000);
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], 10);
        let spec: oci_spec::runtime::Spec = serde_json::from_value(v).unwrap();
        crate::runtime::plan::Plan::from_spec(&spec, std::path::Path::new("/b")).unwrap();
    }

    #[test]
    fn privileged_drops_confinement() {
        let h = HostConfig {
            privileged: true,
            ..Default::default()
        };
        let v = build(
            &cfg(),
            &h,
            &RuntimeContext {
                rootfs: "/r".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(v["linux"].get("maskedPaths").is_none());
        assert!(
            v["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len()
                > 30
        );
    }
}
