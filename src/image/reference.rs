//! Image references with Docker Hub's naming rules:
//! `busybox` = `docker.io/library/busybox:latest`,
//! `registry:5000/team/app@sha256:…`. Pure parsing, no I/O.

use std::fmt;
use std::str::FromStr;

use super::digest::Digest;

pub const DEFAULT_REGISTRY: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";
/// Where `docker.io` is actually served.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("invalid reference {0:?}: {1}")]
    Invalid(String, &'static str),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A parsed, normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `localhost:5000`, `quay.io`…
    pub registry: String,
    /// `library/busybox`, `team/app`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// The name the store records: `registry/repository:tag`, or
    /// `registry/repository@digest` for a digest-only reference.
    pub fn full_name(&self) -> String {
        self.to_string()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The repository as people write it: `busybox` for
    /// `docker.io/library/busybox`, `user/app` for `docker.io/user/app`.
    /// Only as short as still parses back to the same repository (found by
    /// fuzzing: `docker.io/a.b/c` showed as `a.b/c`, a registry `a.b`).
    pub fn familiar_name(&self) -> String {
        if self.registry != DEFAULT_REGISTRY {
            return self.name();
        }
        // Docker's rule: `library/` hides only where nothing is nested under it.
        let short = match self.repository.strip_prefix("library/") {
            Some(rest) if !rest.contains('/') => rest,
            _ => &self.repository,
        };
        match short.split_once('/') {
            Some((first, _)) if looks_like_registry(first) => self.name(),
            _ => short.to_string(),
        }
    }

    /// The host (and port) the registry API answers on.
    pub fn api_host(&self) -> &str {
        registry_api_host(&self.registry)
    }

    /// What to ask the registry for: the digest when pinned, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }
}

/// The API host for a registry name (`docker.io` is served elsewhere).
pub fn registry_api_host(registry: &str) -> &str {
    if registry == DEFAULT_REGISTRY {
        DOCKER_HUB_API
    } else {
        registry
    }
}

/// Normalises a registry name as `berth login` and the credential file use it.
pub fn normalize_registry(registry: &str) -> String {
    let r = registry
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let r = r
        .strip_suffix("/v1")
        .or_else(|| r.strip_suffix("/v2"))
        .unwrap_or(r);
    match r {
        "index.docker.io" | "registry-1.docker.io" | "" => DEFAULT_REGISTRY.to_string(),
        other => other.to_string(),
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Reference> {
        let bad = |why| Error::Invalid(s.to_string(), why);
        if s.is_empty() || s.len() > 4096 {
            return Err(bad("empty or too long"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (
                rest,
                Some(
                    d.parse::<Digest>()
                        .map_err(|_| bad("bad digest after '@'"))?,
                ),
            ),
            None => (s, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].find(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(bad(
                "a tag is 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'",
            ));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if looks_like_registry(first) => (normalize_registry(first), path),
            _ => (DEFAULT_REGISTRY.to_string(), name),
        };
        if !valid_registry(&registry) {
            return Err(bad("bad registry host"));
        }
        if path.is_empty() || !path.split('/').all(valid_path_component) {
            return Err(bad(
                "repository components are lowercase [a-z0-9] joined by '.', '_', '__' or '-'",
            ));
        }
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        if repository.len() > 255 {
            return Err(bad("repository name longer than 255 characters"));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

/// Whether a reference's first component names a registry host rather
/// than a Docker Hub namespace.
fn looks_like_registry(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.chars().any(|c| c.is_ascii_uppercase())
}

fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_registry(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'[' | b']'))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, the distribution spec's path component.
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn docker_hub_defaults() {
        assert_eq!(r("busybox").to_string(), "docker.io/library/busybox:latest");
        assert_eq!(
            r("library/busybox:1.36").to_string(),
            "docker.io/library/busybox:1.36"
        );
        assert_eq!(r("user/app").to_string(), "docker.io/user/app:latest");
        assert_eq!(
            r("index.docker.io/busybox").to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(r("busybox").api_host(), "registry-1.docker.io");
        assert_eq!(r("busybox").familiar_name(), "busybox");
        assert_eq!(r("user/app").familiar_name(), "user/app");
    }

    #[test]
    fn familiar_names_parse_back_to_the_same_repository() {
        for (full, familiar) in [
            ("docker.io/a.b/c", "docker.io/a.b/c"),
            ("docker.io/localhost/c", "docker.io/localhost/c"),
            ("docker.io/library/a/b", "library/a/b"),
            ("docker.io/library/busybox", "busybox"),
            ("docker.io/user/app", "user/app"),
        ] {
            assert_eq!(r(full).familiar_name(), familiar, "{full}");
            assert_eq!(r(familiar).name(), r(full).name(), "{full}");
        }
    }

    #[test]
    fn registries_ports_and_digests() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let x = r(&format!("registry:5000/team/app@{d}"));
        assert_eq!(x.registry, "registry:5000");
        assert_eq!(x.repository, "team/app");
        assert_eq!(x.tag, None);
        assert_eq!(x.manifest_ref(), d);
        assert_eq!(x.to_string(), format!("registry:5000/team/app@{d}"));
        let y = r("localhost/busybox");
        assert_eq!(
            (y.registry.as_str(), y.repository.as_str()),
            ("localhost", "busybox")
        );
        let z = r("127.0.0.1:5000/a/b/c:v1.2-rc_3");
        assert_eq!(
            (z.registry.as_str(), z.repository.as_str(), z.tag.as_deref()),
            ("127.0.0.1:5000", "a/b/c", Some("v1.2-rc_3"))
        );
        assert_eq!(r(&format!("busybox:1@{d}")).manifest_ref(), d);
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "a//b",
            "/busybox",
            "busybox@sha256:12",
            "a/../b",
            "a/-b",
            "busybox:a b",
            "reg:5000/",
        ] {
            assert!(
                bad.parse::<Reference>().is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn normalises_registries() {
        assert_eq!(
            normalize_registry("https://index.docker.io/v1/"),
            "docker.io"
        );
        assert_eq!(normalize_registry("localhost:5000"), "localhost:5000");
    }
}
