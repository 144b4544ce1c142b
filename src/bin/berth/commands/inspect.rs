//! `berth inspect CONTAINER…`: docker's JSON shape, so scripts written for
//! docker keep working.

use anyhow::Result;
use berth::engine::Engine;
use berth::engine::record::Status;
use serde_json::json;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn inspect_json(engine: &Engine, id: &str) -> Result<serde_json::Value> {
    let rec = engine.containers.read(id)?;
    let st = engine.live_state(id);
    let p = engine.containers.paths(id);
    let vols = engine.volumes();
    let mounts: Vec<serde_json::Value> = rec
        .host_config
        .mounts
        .iter()
        .map(|m| {
            let source = match m.kind.as_str() {
                "volume" => vols.data_dir(&m.source).display().to_string(),
                _ => m.source.clone(),
            };
            let mut v = json!({"Type": m.kind, "Source": source, "Destination": m.destination, "RW": m.rw, "Mode": if m.rw { "" } else { "ro" }});
            if m.kind == "volume" {
                v["Name"] = json!(m.source);
                v["Driver"] = json!("local");
            }
            v
        })
        .collect();
    let zero = "0001-01-01T00:00:00Z";
    let mut args: Vec<String> = rec
        .config
        .entrypoint
        .iter()
        .chain(rec.config.cmd.iter())
        .cloned()
        .collect();
    let path = if args.is_empty() {
        String::new()
    } else {
        args.remove(0)
    };
    Ok(json!({
        "Id": rec.id,
        "Created": rec.created,
        "Path": path,
        "Args": args,
        "State": {
            "Status": st.status.to_string(),
            "Running": matches!(st.status, Status::Running | Status::Paused),
            "Paused": st.status == Status::Paused,
            "Restarting": st.status == Status::Restarting,
            "OOMKilled": st.oom_killed,
            "Dead": st.status == Status::Dead,
            "Pid": st.pid,
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": st.started_at.clone().unwrap_or_else(|| zero.into()),
            "FinishedAt": st.finished_at.clone().unwrap_or_else(|| zero.into()),
        },
        "Image": rec.image_id,
        "ResolvConfPath": p.dir.join("resolv.conf"),
        "HostnamePath": p.dir.join("hostname"),
        "HostsPath": p.dir.join("hosts"),
        "LogPath": p.log(),
        "Name": format!("/{}", rec.name),
        "RestartCount": st.restart.count,
        "Driver": "overlay",
        "Platform": "linux",
        "Config": rec.config,
        "HostConfig": rec.host_config,
        "GraphDriver": {"Name": "overlay", "Data": {
            "LowerDir": rec.layers.iter().rev().map(|l| l.display().to_string()).collect::<Vec<_>>().join(":"),
            "UpperDir": p.upper(), "WorkDir": p.work(), "MergedDir": p.rootfs(),
        }},
        "Mounts": mounts,
        "NetworkSettings": network_settings(engine, &rec),
    }))
}

/// docker's `NetworkSettings`, from the container's attachment while it
/// has one.
fn network_settings(engine: &Engine, rec: &berth::engine::record::Record) -> serde_json::Value {
    let att = engine.networks().attachment(&rec.id);
    let mode = &rec.host_config.network_mode;
    let name = if mode.is_empty() || mode == "default" {
        berth::network::DEFAULT_NETWORK
    } else {
        mode.as_str()
    };
    let mut ports = serde_json::Map::new();
    let (mut ip, mut gateway, mut prefix, mut sandbox) =
        (String::new(), String::new(), 0, String::new());
    if let Some(a) = &att {
        for m in &a.ports {
            let key = format!("{}/{}", m.container_port, m.proto);
            let entry = ports.entry(key).or_insert_with(|| json!([]));
            if let Some(list) = entry.as_array_mut() {
                list.push(
                    json!({"HostIp": m.host_ip.to_string(), "HostPort": m.host_port.to_string()}),
                );
            }
        }
        if let (Some(i), Some(s)) = (a.ip, a.subnet) {
            ip = i.to_string();
            gateway = s.gateway().to_string();
            prefix = s.prefix();
        }
        sandbox = a.netns.display().to_string();
    }
    let network_id = engine
        .networks()
        .get(name)
        .map(|n| n.id)
        .unwrap_or_default();
    json!({
        "SandboxKey": sandbox,
        "Ports": ports,
        "IPAddress": ip,
        "IPPrefixLen": prefix,
        "Gateway": gateway,
        "Networks": {name: {
            "NetworkID": network_id,
            "IPAddress": ip,
            "IPPrefixLen": prefix,
            "Gateway": gateway,
        }},
    })
}

pub fn run(cli: &Cli, args: &Args) -> Result<i32> {
    let engine = Engine::new(&cli.root, &cli.state);
    let mut out = Vec::new();
    for c in &args.containers {
        let id = engine.containers.resolve(c)?;
        out.push(inspect_json(&engine, &id)?);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}
