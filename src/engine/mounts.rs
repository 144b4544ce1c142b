//! docker's mount flags: `-v`, `--mount` and `--tmpfs`, parsed into
//! [`MountSpec`]s (pure).

use super::config::MountSpec;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("invalid volume specification {0:?}: use /host:/ctr[:ro], name:/ctr[:ro] or /ctr")]
    Volume(String),
    #[error("invalid --mount {spec:?}: {why}")]
    Mount { spec: String, why: String },
    #[error("invalid --tmpfs {0:?}: use /path[:options]")]
    Tmpfs(String),
    #[error("invalid mount destination {0:?}: it must be an absolute path, not /")]
    Destination(String),
}

fn check_dest(d: &str) -> Result<(), Error> {
    if !d.starts_with('/') || d == "/" {
        return Err(Error::Destination(d.to_string()));
    }
    Ok(())
}

/// `-v SRC:DST[:MODE]`, `-v DST`.
pub fn parse_volume(spec: &str) -> Result<MountSpec, Error> {
    let parts: Vec<&str> = spec.split(':').collect();
    let bad = || Error::Volume(spec.to_string());
    let (src, dst, mode) = match parts.as_slice() {
        [dst] => ("", *dst, ""),
        [src, dst] => (*src, *dst, ""),
        [src, dst, mode] => (*src, *dst, *mode),
        _ => return Err(bad()),
    };
    check_dest(dst)?;
    let mut rw = true;
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => rw = false,
            "rw" => rw = true,
            "z" | "Z" | "rprivate" | "private" | "rslave" | "slave" | "rshared" | "shared"
            | "nocopy" => {}
            _ => return Err(bad()),
        }
    }
    let (kind, anonymous) = if src.is_empty() {
        ("volume", true)
    } else if src.starts_with('/') {
        ("bind", false)
    } else if super::names::valid_name(src) {
        ("volume", false)
    } else {
        return Err(bad());
    };
    Ok(MountSpec {
        kind: kind.into(),
        source: src.into(),
        destination: dst.into(),
        rw,
        options: vec![],
        anonymous,
    })
}

/// `--mount type=…,source=…,target=…[,readonly][,tmpfs-size=…][,tmpfs-mode=…]`.
pub fn parse_mount(spec: &str) -> Result<MountSpec, Error> {
    let bad = |why: &str| Error::Mount {
        spec: spec.to_string(),
        why: why.to_string(),
    };
    let (mut kind, mut src, mut dst, mut rw) =
        ("volume".to_string(), String::new(), String::new(), true);
    let mut options = Vec::new();
    for kv in spec.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "type" => kind = v.to_string(),
            "source" | "src" => src = v.to_string(),
            "target" | "destination" | "dst" => dst = v.to_string(),
            "readonly" | "ro" => rw = !(v.is_empty() || v == "true" || v == "1"),
            "tmpfs-size" => options.push(format!("size={v}")),
            "tmpfs-mode" => options.push(format!("mode={v}")),
            "bind-propagation" | "volume-nocopy" | "consistency" => {}
            _ => return Err(bad(&format!("unknown key {k:?}"))),
        }
    }
    if dst.is_empty() {
        return Err(bad("target is required"));
    }
    check_dest(&dst).map_err(|_| bad("target must be an absolute path"))?;
    let anonymous = match kind.as_str() {
        "bind" if !src.starts_with('/') => {
            return Err(bad("a bind mount needs an absolute source"));
        }
        "bind" => false,
        "volume" if src.is_empty() => true,
        "volume" if !super::names::valid_name(&src) => return Err(bad("invalid volume name")),
        "volume" => false,
        "tmpfs" if !src.is_empty() => return Err(bad("tmpfs takes no source")),
        "tmpfs" => false,
        other => {
            return Err(bad(&format!(
                "unknown type {other:?}: use bind, volume or tmpfs"
            )));
        }
    };
    if kind != "tmpfs" && !options.is_empty() {
        return Err(bad("tmpfs-* options are for type=tmpfs"));
    }
    Ok(MountSpec {
        kind,
        source: src,
        destination: dst,
        rw,
        options,
        anonymous,
    })
}

/// `--tmpfs /path[:opt,opt]`.
pub fn parse_tmpfs(spec: &str) -> Result<MountSpec, Error> {
    let (dst, opts) = spec.split_once(':').unwrap_or((spec, ""));
    check_dest(dst).map_err(|_| Error::Tmpfs(spec.to_string()))?;
    let options: Vec<String> = opts
        .split(',')
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect();
    let rw = !options.iter().any(|o| o == "ro");
    Ok(MountSpec {
        kind: "tmpfs".into(),
        source: String::new(),
        destination: dst.into(),
        rw,
        options,
        anonymous: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes() {
        let b = parse_volume("/h:/c:ro").unwrap();
        assert_eq!(
            (
                b.kind.as_str(),
                b.source.as_str(),
                b.destination.as_str(),
                b.rw
            ),
            ("bind", "/h", "/c", false)
        );
        let v = parse_volume("data:/var/lib/x").unwrap();
        assert_eq!((v.kind.as_str(), v.anonymous), ("volume", false));
        let a = parse_volume("/scratch").unwrap();
        assert!(a.anonymous);
        for bad in ["/h:relative", "a:b:c:d", "/h:/c:xx", "bad name:/c", "/h:/"] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mounts() {
        let m = parse_mount("type=bind,source=/h,target=/c,readonly").unwrap();
        assert_eq!((m.kind.as_str(), m.rw), ("bind", false));
        let t = parse_mount("type=tmpfs,target=/t,tmpfs-size=1m").unwrap();
        assert_eq!(t.options, vec!["size=1m"]);
        assert!(parse_mount("type=bind,source=rel,target=/c").is_err());
        assert!(parse_mount("type=nfs,target=/c").is_err());
        assert!(parse_mount("source=/h").is_err());
    }

    #[test]
    fn tmpfs() {
        let t = parse_tmpfs("/run:size=1m,mode=1777").unwrap();
        assert_eq!(t.options, vec!["size=1m", "mode=1777"]);
        assert!(parse_tmpfs("run").is_err());
    }
}
