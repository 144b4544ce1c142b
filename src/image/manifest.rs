//! Manifests, indexes and image configs as registries and archives serve
//! them (OCI image spec and Docker schema2), and platform selection from an
//! index. Pure parsing and choice, no I/O.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::digest::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// What `Accept` says when fetching a manifest: every kind we can read.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("manifest {what}: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    #[error(
        "manifest {0}: docker schema1 manifests are not supported (deprecated; re-push the image)"
    )]
    Schema1(String),
    #[error("manifest {what}: unsupported media type {media_type:?}")]
    MediaType { what: String, media_type: String },
    #[error("no manifest for platform {wanted} in index {what} (available: {available})")]
    NoPlatform {
        what: String,
        wanted: Platform,
        available: String,
    },
    #[error("invalid platform {0:?}: expected os/arch[/variant]")]
    BadPlatform(String),
    #[error("image config {what}: {source}")]
    Config {
        what: String,
        source: serde_json::Error,
    },
    #[error("image config {what}: {layers} layers but {diff_ids} diff_ids")]
    LayerCount {
        what: String,
        layers: usize,
        diff_ids: usize,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// A content descriptor (OCI image spec §descriptor).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform berth runs containers for: this host's.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: None,
        }
    }

    /// The variant to assume when an index entry or a request names none.
    fn default_variant(&self) -> Option<&'static str> {
        match self.architecture.as_str() {
            "arm64" => Some("v8"),
            "arm" => Some("v7"),
            _ => None,
        }
    }

    /// Whether an index entry's platform runs here.
    pub fn matches(&self, other: &Platform) -> bool {
        if self.os != other.os || self.architecture != other.architecture {
            return false;
        }
        let mine = self.variant.as_deref().or(self.default_variant());
        let theirs = other.variant.as_deref().or(other.default_variant());
        mine == theirs
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok =
            |p: &str| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(v.to_string()),
            }),
            _ => Err(Error::BadPlatform(s.to_string())),
        }
    }
}

/// An image manifest (OCI or Docker schema2: the same shape).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
}

/// An image index or Docker manifest list.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
}

/// What a manifest fetch returned.
#[derive(Debug)]
pub enum Fetched {
    Manifest(Manifest),
    Index(Index),
}

/// Parses manifest bytes; `content_type` is the HTTP Content-Type or the
/// descriptor's media type when known. `what` names it in errors.
pub fn parse(bytes: &[u8], content_type: Option<&str>, what: &str) -> Result<Fetched> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        schema_version: Option<u32>,
        manifests: Option<serde_json::Value>,
    }
    let json = |source| Error::Json {
        what: what.to_string(),
        source,
    };
    let probe: Probe = serde_json::from_slice(bytes).map_err(json)?;
    let content_type = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim())
        .filter(|c| !c.is_empty());
    let media_type = probe.media_type.as_deref().or(content_type).unwrap_or("");
    if media_type == DOCKER_SCHEMA1
        || media_type == DOCKER_SCHEMA1_SIGNED
        || probe.schema_version == Some(1)
    {
        return Err(Error::Schema1(what.to_string()));
    }
    match media_type {
        OCI_INDEX | DOCKER_LIST => Ok(Fetched::Index(serde_json::from_slice(bytes).map_err(json)?)),
        OCI_MANIFEST | DOCKER_MANIFEST => Ok(Fetched::Manifest(
            serde_json::from_slice(bytes).map_err(json)?,
        )),
        // Some servers say application/json; the shape decides.
        "" | "application/json" | "text/plain" | "application/octet-stream" => {
            if probe.manifests.is_some() {
                Ok(Fetched::Index(serde_json::from_slice(bytes).map_err(json)?))
            } else {
                Ok(Fetched::Manifest(
                    serde_json::from_slice(bytes).map_err(json)?,
                ))
            }
        }
        other => Err(Error::MediaType {
            what: what.to_string(),
            media_type: other.to_string(),
        }),
    }
}

/// Chooses the manifest for `wanted` from an index. Entries without a
/// platform (attestations, unknown/unknown) never match.
pub fn select_platform<'a>(
    index: &'a Index,
    wanted: &Platform,
    what: &str,
) -> Result<&'a Descriptor> {
    index
        .manifests
        .iter()
        .filter(|d| d.media_type != OCI_INDEX && d.media_type != DOCKER_LIST)
        .find(|d| d.platform.as_ref().is_some_and(|p| wanted.matches(p)))
        .ok_or_else(|| Error::NoPlatform {
            what: what.to_string(),
            wanted: wanted.clone(),
            available: {
                let all: Vec<String> = index
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                    .collect();
                if all.is_empty() {
                    "none".to_string()
                } else {
                    all.join(", ")
                }
            },
        })
}

/// The parts of an image config the store needs; the engine gets the full
/// config as an `oci_spec` `ImageConfiguration`.
#[derive(Clone, Debug, Deserialize)]
pub struct ConfigSummary {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
    pub rootfs: RootFs,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

/// Parses an image config and checks that it names one diffID per layer.
pub fn parse_config(bytes: &[u8], layers: usize, what: &str) -> Result<ConfigSummary> {
    let config: ConfigSummary = serde_json::from_slice(bytes).map_err(|source| Error::Config {
        what: what.to_string(),
        source,
    })?;
    if config.rootfs.diff_ids.len() != layers {
        return Err(Error::LayerCount {
            what: what.to_string(),
            layers,
            diff_ids: config.rootfs.diff_ids.len(),
        });
    }
    Ok(config)
}

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Detects compression by the stream's first bytes; the media type is
    /// only a hint, as Docker-archive layers and some registries mislabel it.
    pub fn detect(magic: &[u8], media_type: &str) -> Compression {
        if magic.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if magic.len() >= 262 && &magic[257..262] == b"ustar" {
            Compression::None
        } else if media_type.ends_with("+zstd") || media_type.ends_with(".zstd") {
            Compression::Zstd
        } else if media_type.ends_with("gzip") {
            Compression::Gzip
        } else {
            Compression::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn index_json() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{D}","size":1,"platform":{{"os":"linux","architecture":"arm","variant":"v6"}}}},
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{D}","size":2,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{D}","size":3,"platform":{{"os":"linux","architecture":"amd64"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":4,"platform":{{"os":"unknown","architecture":"unknown"}}}}]}}"#
        )
    }

    #[test]
    fn selects_platforms() {
        let Fetched::Index(index) = parse(index_json().as_bytes(), None, "t").unwrap() else {
            panic!("not an index")
        };
        let pick = |p: &str| select_platform(&index, &p.parse().unwrap(), "t").map(|d| d.size);
        assert_eq!(pick("linux/amd64").unwrap(), 3);
        assert_eq!(pick("linux/arm64").unwrap(), 2);
        assert_eq!(pick("linux/arm64/v8").unwrap(), 2);
        assert_eq!(pick("linux/arm/v6").unwrap(), 1);
        let err = pick("linux/arm").unwrap_err().to_string();
        assert!(
            err.contains("linux/arm") && err.contains("linux/arm/v6"),
            "{err}"
        );
        assert!(pick("windows/amd64").is_err());
    }

    #[test]
    fn parses_manifests_by_type_or_shape() {
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{D}","size":5}},"layers":[]}}"#
        );
        assert!(matches!(
            parse(m.as_bytes(), Some(OCI_MANIFEST), "t").unwrap(),
            Fetched::Manifest(_)
        ));
        assert!(matches!(
            parse(m.as_bytes(), None, "t").unwrap(),
            Fetched::Manifest(_)
        ));
        assert!(matches!(
            parse(br#"{"schemaVersion":1,"name":"x"}"#, None, "t"),
            Err(Error::Schema1(_))
        ));
        assert!(matches!(
            parse(m.as_bytes(), Some("text/html"), "t"),
            Err(Error::MediaType { .. })
        ));
        assert!(parse(b"not json", None, "t").is_err());
    }

    #[test]
    fn platform_strings() {
        assert_eq!(
            "linux/arm64/v8".parse::<Platform>().unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux/amd64/v2/x".parse::<Platform>().is_err());
    }

    #[test]
    fn config_must_match_layers() {
        let c = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{D}"]}}}}"#
        );
        assert_eq!(
            parse_config(c.as_bytes(), 1, "t")
                .unwrap()
                .rootfs
                .diff_ids
                .len(),
            1
        );
        assert!(matches!(
            parse_config(c.as_bytes(), 2, "t"),
            Err(Error::LayerCount { .. })
        ));
    }

    #[test]
    fn detects_compression() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8], ""), Compression::Gzip);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd], ""),
            Compression::Zstd
        );
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(Compression::detect(&tar, OCI_LAYER_GZIP), Compression::None);
        assert_eq!(
            Compression::detect(b"", "application/vnd.oci.image.layer.v1.tar+zstd"),
            Compression::Zstd
        );
    }
}
