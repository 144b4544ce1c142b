//! `berth create [OPTIONS] IMAGE [COMMAND] [ARG…]` and the flags `run`
//! shares with it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use berth::engine::config::{HostConfig, LogConfig, SeccompChoice, Ulimit};
use berth::engine::create::Request;
use berth::engine::restart::RestartPolicy;
use berth::engine::{Engine, mounts, units};
use berth::image::manifest::Platform;
use berth::image::reference::Reference;
use berth::image::registry::{self, Options};
use berth::network::ports;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct CreateFlags {
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Keep STDIN open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Set environment variables (KEY=VAL, or KEY to take it from here)
    #[arg(short = 'e', long = "env", value_name = "KEY=VAL")]
    pub env: Vec<String>,
    /// Read environment variables from a file
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// user[:group], names looked up in the image
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Overwrite the image's ENTRYPOINT
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(long)]
    pub hostname: Option<String>,
    /// Bind mount or volume: /host:/ctr[:ro], name:/ctr[:ro], /ctr
    #[arg(short = 'v', long = "volume", value_name = "SPEC")]
    pub volume: Vec<String>,
    /// type=bind|volume|tmpfs,source=…,target=…[,readonly]
    #[arg(long = "mount", value_name = "SPEC")]
    pub mount: Vec<String>,
    /// Mount a tmpfs: /path[:options]
    #[arg(long = "tmpfs", value_name = "PATH")]
    pub tmpfs: Vec<String>,
    /// Mount the root filesystem read-only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Memory limit (e.g. 64m)
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory plus swap limit, -1 for unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs (e.g. 0.5)
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Limit the number of processes (-1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Ulimit: name=soft[:hard]
    #[arg(long = "ulimit")]
    pub ulimit: Vec<String>,
    /// Add capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give all capabilities, devices and no confinement
    #[arg(long)]
    pub privileged: bool,
    /// no-new-privileges, seccomp=FILE, seccomp=unconfined
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// no, on-failure[:N], always, unless-stopped
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Seconds to wait for the stop signal before SIGKILL
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<u64>,
    /// Set metadata: key=value
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Run an init (berth-init) as pid 1 that forwards signals and reaps
    #[arg(long)]
    pub init: bool,
    /// Network: bridge, none, host, container:NAME, or a network's name
    #[arg(long = "network", alias = "net", default_value = "bridge")]
    pub network: String,
    /// Publish a port: [hostIP:][hostPort:]containerPort[/tcp|/udp]
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Publish every port the image exposes on a free host port
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Pull the image from a plain-HTTP registry if absent
    #[arg(long)]
    pub insecure: bool,
    /// Log rotation of the json-file driver: max-size=SIZE, max-file=N
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
    /// The log driver: json-file (the only one)
    #[arg(long = "log-driver", default_value = "json-file")]
    pub log_driver: String,
    /// The cgroup the container's cgroup is made under (default /berth)
    #[arg(long = "cgroup-parent", env = "BERTH_CGROUP_PARENT", value_parser = parse_cgroup_parent)]
    pub cgroup_parent: Option<String>,
    /// The image
    pub image: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn read_env_file(path: &PathBuf) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read env file {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(expand_env)
        .collect())
}

/// `KEY` alone takes KEY's value from our environment, or is dropped if
/// we have none, as docker does.
fn expand_env(e: &str) -> Option<String> {
    if e.contains('=') {
        return Some(e.to_string());
    }
    std::env::var(e).ok().map(|v| format!("{e}={v}"))
}

fn parse_ulimit(s: &str) -> Result<Ulimit> {
    let (name, vals) = s
        .split_once('=')
        .with_context(|| format!("invalid --ulimit {s:?}: use name=soft[:hard]"))?;
    let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
    let num = |v: &str| -> Result<u64> {
        if v == "-1" || v == "unlimited" {
            return Ok(u64::MAX);
        }
        v.parse()
            .with_context(|| format!("invalid --ulimit {s:?}: {v:?} is not a number"))
    };
    let (soft, hard) = (num(soft)?, num(hard)?);
    if soft > hard {
        bail!("invalid --ulimit {s:?}: soft limit {soft} is above hard limit {hard}");
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// An absolute cgroup path without `.`, `..` or empty parts.
fn parse_cgroup_parent(s: &str) -> std::result::Result<String, String> {
    let bad = |why: &str| Err(format!("invalid --cgroup-parent {s:?}: {why}"));
    let Some(rest) = s.strip_prefix('/') else {
        return bad("it must start with /");
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return bad("it names the root cgroup");
    }
    if rest
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == ".." || p.contains('\0'))
    {
        return bad("empty, '.' and '..' parts are not allowed");
    }
    Ok(format!("/{rest}"))
}

impl CreateFlags {
    pub fn request(&self) -> Result<Request> {
        let mut host = HostConfig {
            readonly_rootfs: self.read_only,
            privileged: self.privileged,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            restart_policy: RestartPolicy::parse(&self.restart)?,
            auto_remove: self.rm,
            init: self.init,
            network_mode: self.network.clone(),
            port_bindings: ports::to_bindings(
                &self
                    .publish
                    .iter()
                    .map(|p| p.parse::<ports::PortSpec>())
                    .collect::<std::result::Result<Vec<_>, _>>()?,
            ),
            publish_all_ports: self.publish_all,
            cpuset_cpus: self.cpuset_cpus.clone().unwrap_or_default(),
            cpu_shares: self.cpu_shares.unwrap_or(0),
            pids_limit: self.pids_limit.unwrap_or(0),
            cgroup_parent: self.cgroup_parent.clone().unwrap_or_default(),
            ..Default::default()
        };
        if self.log_driver != "json-file" {
            bail!(
                "unsupported --log-driver {:?}: berth writes json-file logs only",
                self.log_driver
            );
        }
        host.log_config = LogConfig::from_opts(&self.log_opt).map_err(anyhow::Error::msg)?;
        if self.rm && host.restart_policy != RestartPolicy::No {
            bail!("conflicting options: --restart and --rm");
        }
        if let Some(m) = &self.memory {
            host.memory = units::parse_size(m)? as i64;
        }
        if let Some(s) = &self.memory_swap {
            host.memory_swap = if s == "-1" {
                -1
            } else {
                units::parse_size(s)? as i64
            };
            if host.memory_swap > 0 && host.memory_swap < host.memory {
                bail!("--memory-swap {s} must be at least --memory");
            }
        }
        if let Some(c) = self.cpus {
            if !(c > 0.0 && c.is_finite()) {
                bail!("invalid --cpus {c}: use a positive number");
            }
            host.nano_cpus = (c * 1e9) as i64;
        }
        for u in &self.ulimit {
            host.ulimits.push(parse_ulimit(u)?);
        }
        for opt in &self.security_opt {
            match opt.split_once(['=', ':']) {
                None if opt == "no-new-privileges" => host.no_new_privileges = true,
                Some(("no-new-privileges", v)) => host.no_new_privileges = v != "false",
                Some(("seccomp", "unconfined")) => host.seccomp = SeccompChoice::Unconfined,
                Some(("seccomp", path)) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("read seccomp profile {path}"))?;
                    serde_json::from_str::<serde_json::Value>(&text)
                        .with_context(|| format!("seccomp profile {path} is not JSON"))?;
                    host.seccomp = SeccompChoice::Profile(text);
                }
                _ => bail!(
                    "invalid --security-opt {opt:?}: use no-new-privileges, seccomp=FILE or seccomp=unconfined"
                ),
            }
        }
        for v in &self.volume {
            host.mounts.push(mounts::parse_volume(v)?);
        }
        for m in &self.mount {
            host.mounts.push(mounts::parse_mount(m)?);
        }
        for t in &self.tmpfs {
            host.mounts.push(mounts::parse_tmpfs(t)?);
        }
        // -v creates a missing host directory, as docker does (--mount does not).
        for (m, spec) in host
            .mounts
            .iter()
            .zip(self.volume.iter().map(Some).chain(std::iter::repeat(None)))
        {
            if m.kind == "bind" && spec.is_some() && !std::path::Path::new(&m.source).exists() {
                std::fs::create_dir_all(&m.source)
                    .with_context(|| format!("create bind source {}", m.source))?;
            }
        }
        let mut env: Vec<String> = Vec::new();
        for f in &self.env_file {
            env.extend(read_env_file(f)?);
        }
        env.extend(self.env.iter().filter_map(|e| expand_env(e)));
        let mut labels = BTreeMap::new();
        for l in &self.label {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            labels.insert(k.to_string(), v.to_string());
        }
        if let Some(sig) = &self.stop_signal
            && berth::engine::shim::parse_signal(sig).is_none()
        {
            bail!("invalid --stop-signal {sig:?}");
        }
        Ok(Request {
            name: self.name.clone(),
            image: self.image.clone(),
            command: self.command.clone(),
            entrypoint: self.entrypoint.clone(),
            env,
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            hostname: self.hostname.clone(),
            labels,
            tty: self.tty,
            interactive: self.interactive,
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
            host,
        })
    }
}

/// Pulls the image if the store does not have it, as docker does.
pub fn ensure_image(cli: &Cli, image: &str, insecure: bool) -> Result<()> {
    let store = super::store(cli)?;
    match store.resolve(image) {
        Ok(_) => return Ok(()),
        Err(berth::image::store::Error::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let reference: Reference = image.parse()?;
    eprintln!("Unable to find image '{reference}' locally");
    let options = Options {
        plain_http: insecure,
        credentials: None,
    }
    .with_root_settings(&cli.root, &reference.registry)?;
    let display = crate::progress::for_terminal(false);
    registry::pull(
        &store,
        &reference,
        &options,
        &Platform::host(),
        display.as_ref(),
    )?;
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub flags: CreateFlags,
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32> {
    let req = args.flags.request()?;
    ensure_image(cli, &req.image, args.flags.insecure)?;
    let engine = Engine::new(&cli.root, &cli.state);
    let rec = engine.create(&req)?;
    println!("{}", rec.id);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits() {
        let u = parse_ulimit("nofile=100:200").unwrap();
        assert_eq!((u.soft, u.hard), (100, 200));
        assert_eq!(parse_ulimit("core=-1").unwrap().hard, u64::MAX);
        assert!(parse_ulimit("nofile=3:2").is_err());
        assert!(parse_ulimit("nofile").is_err());
    }

    #[test]
    fn cgroup_parents() {
        assert_eq!(parse_cgroup_parent("/a/b/").unwrap(), "/a/b");
        for bad in ["a", "/", "/a/../b", "/a//b", "/./a", ""] {
            assert!(parse_cgroup_parent(bad).is_err(), "{bad}");
        }
    }
}
