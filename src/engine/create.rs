//! `create`: an image and the flags of `run`/`create` become a container
//! record, a name, volumes and a directory; nothing runs yet.

use std::collections::BTreeMap;

use super::config::{Config, HostConfig, MountSpec};
use super::record::{Record, State, Status};
use super::{Engine, Error, Result, names};

/// What the user asked for, flags already parsed.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub name: Option<String>,
    pub image: String,
    /// `[COMMAND] [ARG…]` after the image.
    pub command: Vec<String>,
    /// `--entrypoint`: Some("") clears the image's.
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub interactive: bool,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u64>,
    pub host: HostConfig,
}

/// The image's config merged with the request, as docker merges them.
pub fn merge(req: &Request, image: &oci_spec::image::Config, id: &str) -> Config {
    let (entrypoint, cmd) = match &req.entrypoint {
        // --entrypoint resets the image's Cmd too.
        Some(ep) => (
            if ep.is_empty() {
                vec![]
            } else {
                vec![ep.clone()]
            },
            req.command.clone(),
        ),
        None => {
            let ep = image.entrypoint().clone().unwrap_or_default();
            let cmd = if req.command.is_empty() {
                image.cmd().clone().unwrap_or_default()
            } else {
                req.command.clone()
            };
            (ep, cmd)
        }
    };
    let mut env = image.env().clone().unwrap_or_default();
    env.extend(req.env.iter().cloned());
    let mut labels: BTreeMap<String, String> = image
        .labels()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels.extend(req.labels.clone());
    let volumes = image
        .volumes()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|v| (v, serde_json::json!({})))
        .collect();
    let exposed_ports = image
        .exposed_ports()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p, serde_json::json!({})))
        .collect();
    Config {
        hostname: req.hostname.clone().unwrap_or_else(|| id[..12].to_string()),
        user: req
            .user
            .clone()
            .or_else(|| image.user().clone())
            .unwrap_or_default(),
        env,
        cmd,
        entrypoint,
        image: req.image.clone(),
        working_dir: req
            .workdir
            .clone()
            .or_else(|| image.working_dir().clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into()),
        labels,
        tty: req.tty,
        open_stdin: req.interactive,
        stop_signal: req
            .stop_signal
            .clone()
            .or_else(|| image.stop_signal().clone())
            .unwrap_or_else(|| "SIGTERM".into()),
        stop_timeout: req.stop_timeout,
        volumes,
        exposed_ports,
    }
}

/// Longest hostname sethostname(2) takes (HOST_NAME_MAX).
const HOST_NAME_MAX: usize = 64;

/// The merged config's values the runtime would refuse at start.
fn check_config(config: &Config) -> Result<()> {
    for e in &config.env {
        match e.split_once('=') {
            Some((k, _)) if !k.is_empty() && !e.contains('\0') => {}
            _ => {
                return Err(Error::Usage(format!(
                    "invalid environment variable {e:?}: use KEY=value"
                )));
            }
        }
    }
    if !config.working_dir.is_empty() && !config.working_dir.starts_with('/') {
        return Err(Error::Usage(format!(
            "invalid working directory {:?}: it must be an absolute path",
            config.working_dir
        )));
    }
    if config.hostname.len() > HOST_NAME_MAX || config.hostname.contains(['/', '\0']) {
        return Err(Error::Usage(format!(
            "invalid hostname {:?}: at most {HOST_NAME_MAX} bytes, no '/'",
            config.hostname
        )));
    }
    Ok(())
}

impl Engine {
    /// Makes a container from `image` (which the caller made sure is
    /// present). On failure nothing is left: no directory, name or volume.
    pub fn create(&self, req: &Request) -> Result<Record> {
        let images = self.images()?;
        let image = images.resolve(&req.image)?;
        let id = names::new_id();
        let config = merge(
            req,
            image
                .config
                .config()
                .as_ref()
                .unwrap_or(&Default::default()),
            &id,
        );
        if config.entrypoint.is_empty() && config.cmd.is_empty() {
            return Err(super::spec::Error::NoCommand.into());
        }
        let mut host = req.host.clone();
        // Image volumes nothing else covers become anonymous volumes.
        for dest in config.volumes.keys() {
            if !host.mounts.iter().any(|m| &m.destination == dest) {
                host.mounts.push(MountSpec {
                    kind: "volume".into(),
                    source: String::new(),
                    destination: dest.clone(),
                    rw: true,
                    options: vec![],
                    anonymous: true,
                });
            }
        }
        // Validate what can be checked now, before anything is made: what
        // only the shim would refuse leaves a container that never ran.
        check_config(&config)?;
        super::spec::capabilities(&host)?;
        super::spec::check_ulimits(&host)?;
        self.check_network(&host)?;
        for m in &host.mounts {
            if m.kind == "bind" && !std::path::Path::new(&m.source).exists() {
                return Err(Error::Usage(format!(
                    "invalid mount: bind source path does not exist: {}",
                    m.source
                )));
            }
        }

        // What crashed commands left goes first (a create is where names
        // and space are wanted).
        self.reap();
        // The directory, locked, comes first: while it has no record, its
        // lock tells a name's taker that the name is being claimed, and the
        // reaper that it is being made.
        let lock = self.containers.create_dir(&id)?;
        crate::fault::point("create.dir-made");
        let mut name = None;
        let made = (|| -> Result<Record> {
            let n = match &req.name {
                Some(n) => {
                    self.containers.reserve_name(n, &id)?;
                    n.clone()
                }
                None => self.reserve_random_name(&id)?,
            };
            name = Some(n.clone());
            crate::fault::point("create.name-reserved");
            for m in host.mounts.iter_mut().filter(|m| m.kind == "volume") {
                if m.anonymous {
                    m.source = names::new_id();
                }
            }
            // Marked in use before the record exists: a crash in between
            // leaves a mark the reaper drops, never a container whose image
            // `rmi` may delete.
            images.add_user(&image.id, &id)?;
            let rec = Record {
                id: id.clone(),
                name: n,
                created: crate::runtime::state::now_rfc3339(),
                image: req.image.clone(),
                image_id: image.id.to_string(),
                config,
                host_config: host,
                layers: image.layer_dirs.clone(),
            };
            self.containers.write_state(
                &id,
                &State {
                    status: Status::Created,
                    ..Default::default()
                },
            )?;
            self.containers.write(&rec)?;
            crate::fault::point("create.recorded");
            // After the record: a crash here leaves a container whose
            // volumes `start` makes (it makes any that are missing).
            self.ensure_volumes(&rec)?;
            crate::fault::point("create.volumes-made");
            Ok(rec)
        })();
        match made {
            Ok(rec) => Ok(rec),
            Err(e) => {
                let p = self.containers.paths(&id);
                if let Ok(rec) = super::record::read_json::<Record>(&p.config()) {
                    self.remove_anonymous_volumes(&rec);
                }
                let _ = images.remove_user(&image.id, &id);
                let _ = std::fs::remove_dir_all(&p.dir);
                if let Some(n) = name {
                    self.containers.release_name(&n, &id);
                }
                drop(lock);
                Err(e)
            }
        }
    }

    /// Makes the volumes a container's mounts name (named ones on first
    /// use, anonymous ones at create); those that exist are kept.
    pub(crate) fn ensure_volumes(&self, rec: &Record) -> Result<()> {
        let vols = self.volumes();
        for m in rec.host_config.mounts.iter().filter(|m| m.kind == "volume") {
            vols.create(&m.source, BTreeMap::new(), true)?;
        }
        Ok(())
    }

    /// Finishes what crashed commands left half done: containers whose
    /// create or rm was cut short lose their directory, their image mark
    /// and their names. Failures are logged: this is housekeeping on the
    /// way to something else.
    pub fn reap(&self) {
        match self.containers.reap() {
            Ok(ids) => {
                for id in ids {
                    if let Ok(images) = self.images() {
                        images.forget_user(&id);
                    }
                }
            }
            Err(e) => tracing::warn!("reap leftovers of crashed commands: {e}"),
        }
    }

    /// The network mode names something that exists, and ports are
    /// published only where they can be.
    fn check_network(&self, host: &super::config::HostConfig) -> Result<()> {
        use crate::network::{self, Mode};
        let mode = Mode::parse(&host.network_mode)?;
        match &mode {
            Mode::Bridge(n) => {
                self.networks().get(n)?;
            }
            Mode::Container(c) => {
                self.containers.resolve(c)?;
            }
            Mode::None | Mode::Host => {}
        }
        network::ports::specs(&host.port_bindings, false, []).map_err(network::Error::from)?;
        if (!host.port_bindings.is_empty() || host.publish_all_ports)
            && !matches!(mode, Mode::Bridge(_))
        {
            return Err(Error::Usage(format!(
                "conflicting options: port publishing and network mode {:?} (ports are published from bridge networks only)",
                host.network_mode
            )));
        }
        Ok(())
    }

    fn reserve_random_name(&self, id: &str) -> Result<String> {
        for attempt in 0..16 {
            let n = names::random_name(attempt);
            match self.containers.reserve_name(&n, id) {
                Ok(()) => return Ok(n),
                Err(super::record::Error::NameInUse { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Usage(
            "could not find a free random name; use --name".into(),
        ))
    }

    pub(crate) fn remove_anonymous_volumes(&self, rec: &Record) {
        let vols = self.volumes();
        for m in rec
            .host_config
            .mounts
            .iter()
            .filter(|m| m.kind == "volume" && m.anonymous)
        {
            if let Err(e) = vols.remove(&m.source, &[]) {
                tracing::warn!("remove anonymous volume {}: {e}", m.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(json: &str) -> oci_spec::image::Config {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn merge_like_docker() {
        let img = image(
            r#"{"Entrypoint":["/ep"],"Cmd":["a"],"Env":["A=1"],"WorkingDir":"/w","User":"user","StopSignal":"SIGQUIT"}"#,
        );
        let id = "0123456789abcdef0123";
        let c = merge(
            &Request {
                image: "busybox".into(),
                ..Default::default()
            },
            &img,
            id,
        );
        assert_eq!(
            (c.entrypoint.clone(), c.cmd.clone()),
            (vec!["/ep".to_string()], vec!["a".to_string()])
        );
        assert_eq!(
            (
                c.working_dir.as_str(),
                c.user.as_str(),
                c.stop_signal.as_str()
            ),
            ("/w", "user", "SIGQUIT")
        );
        assert_eq!(c.hostname, "0123456789ab");
        let r = Request {
            command: vec!["b".into()],
            env: vec!["B=2".into()],
            user: Some("0".into()),
            ..Default::default()
        };
        let c = merge(&r, &img, id);
        assert_eq!(
            (c.entrypoint.clone(), c.cmd.clone()),
            (vec!["/ep".to_string()], vec!["b".to_string()])
        );
        assert_eq!(c.env, vec!["A=1", "B=2"]);
        assert_eq!(c.user, "0");
        let r = Request {
            entrypoint: Some("".into()),
            command: vec!["sh".into()],
            ..Default::default()
        };
        let c = merge(&r, &img, id);
        assert_eq!(
            (c.entrypoint.clone(), c.cmd.clone()),
            (vec![], vec!["sh".to_string()])
        );
        let r = Request {
            entrypoint: Some("/other".into()),
            ..Default::default()
        };
        assert_eq!(
            merge(&r, &img, id).cmd,
            Vec::<String>::new(),
            "--entrypoint resets Cmd"
        );
    }
}
