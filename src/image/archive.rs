//! Image archives: `docker save` tarballs (docker-archive), OCI image
//! layouts as a directory or a tarball (oci-archive), and writing an
//! oci-archive back out.
//!
//! An archive is never extracted: its members are indexed once and each
//! blob is streamed from its offset into the store, which verifies it.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::digest::Digest;
use super::manifest::{self, Descriptor, Fetched, Index, Platform};
use super::progress::Progress;
use super::reference::Reference;
use super::store::{self, BlobSource, Image, ImportPlan, LayerInput, Store};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// Symlinks between archive members followed before giving up.
const MAX_LINKS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not an image archive (no manifest.json, or index.json and oci-layout)")]
    UnknownFormat { path: PathBuf },
    #[error("{path}: compressed archives are not supported; decompress it first")]
    Compressed { path: PathBuf },
    #[error("{path}: missing member {member:?}")]
    Missing { path: PathBuf, member: String },
    #[error("{path}: {what}: {source}")]
    Json {
        path: PathBuf,
        what: String,
        source: serde_json::Error,
    },
    #[error("{path}: no images in the archive")]
    Empty { path: PathBuf },
    #[error("{0}")]
    Manifest(#[from] manifest::Error),
    #[error("{0}")]
    Store(#[from] store::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A tarball's members by normalised name: data offset and size.
struct Members {
    path: PathBuf,
    entries: HashMap<String, (u64, u64)>,
    links: HashMap<String, String>,
}

impl Members {
    fn index(path: &Path) -> Result<Members> {
        let io_err = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io_err)?;
        let mut magic = [0u8; 4];
        let n = file.read(&mut magic).map_err(io_err)?;
        if magic[..n].starts_with(&[0x1f, 0x8b])
            || magic[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        {
            return Err(Error::Compressed {
                path: path.to_path_buf(),
            });
        }
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let mut archive = tar::Archive::new(io::BufReader::new(file));
        let mut entries = HashMap::new();
        let mut links = HashMap::new();
        for entry in archive.entries().map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    entries.insert(name, (entry.raw_file_position(), entry.size()));
                }
                // docker save links identical layers to one copy.
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    if let Some(target) = entry.link_name_bytes() {
                        let target = String::from_utf8_lossy(&target).into_owned();
                        let resolved = if entry.header().entry_type() == tar::EntryType::Symlink {
                            let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                            normalize(&format!("{dir}/{target}"))
                        } else {
                            normalize(&target)
                        };
                        links.insert(name, resolved);
                    }
                }
                _ => {}
            }
        }
        Ok(Members {
            path: path.to_path_buf(),
            entries,
            links,
        })
    }

    fn find(&self, name: &str) -> Option<(u64, u64)> {
        let mut name = normalize(name);
        for _ in 0..MAX_LINKS {
            if let Some(found) = self.entries.get(&name) {
                return Some(*found);
            }
            name = self.links.get(&name)?.clone();
        }
        None
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open(name)
            .and_then(|mut r| r.read_to_end(&mut bytes))
            .map_err(|_| Error::Missing {
                path: self.path.clone(),
                member: name.to_string(),
            })?;
        Ok(bytes)
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send + '_>> {
        let (offset, size) = self.find(name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no member {name:?}", self.path.display()),
            )
        })?;
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(io::BufReader::with_capacity(
            1 << 20,
            file.take(size),
        )))
    }
}

/// Collapses `.`, `..` and repeated slashes in a member name.
fn normalize(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in name.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Blobs of an OCI layout, in a tarball or a directory, by digest.
enum Layout {
    Archive(Members),
    Dir(PathBuf),
}

impl Layout {
    fn read(&self, name: &str) -> Result<Vec<u8>> {
        match self {
            Layout::Archive(m) => m.read(name),
            Layout::Dir(d) => fs::read(d.join(name)).map_err(|source| Error::Io {
                path: d.join(name),
                source,
            }),
        }
    }
    fn path(&self) -> &Path {
        match self {
            Layout::Archive(m) => &m.path,
            Layout::Dir(d) => d,
        }
    }
}

impl BlobSource for Layout {
    fn open(&self, key: &str) -> io::Result<Box<dyn Read + Send + '_>> {
        let digest: Digest = key.parse().map_err(io::Error::other)?;
        let name = format!("blobs/sha256/{}", digest.hex());
        match self {
            Layout::Archive(m) => m.open(&name),
            Layout::Dir(d) => Ok(Box::new(io::BufReader::with_capacity(
                1 << 20,
                File::open(d.join(name))?,
            ))),
        }
    }
}

impl BlobSource for Members {
    fn open(&self, key: &str) -> io::Result<Box<dyn Read + Send + '_>> {
        Members::open(self, key)
    }
}

/// An image an archive held, with the names the archive gave it.
pub struct Loaded {
    pub image: Image,
    pub names: Vec<Reference>,
}

/// Loads every image in an archive file (docker-archive or oci-archive).
pub fn load_archive(
    store: &Store,
    path: &Path,
    platform: &Platform,
    progress: &dyn Progress,
) -> Result<Vec<Loaded>> {
    let members = Members::index(path)?;
    if members.find("manifest.json").is_some() {
        load_docker(store, &members, progress)
    } else if members.find("index.json").is_some() && members.find("oci-layout").is_some() {
        load_layout(store, &Layout::Archive(members), platform, progress)
    } else {
        Err(Error::UnknownFormat {
            path: path.to_path_buf(),
        })
    }
}

/// Loads every image in an OCI image layout directory.
pub fn load_layout_dir(
    store: &Store,
    dir: &Path,
    platform: &Platform,
    progress: &dyn Progress,
) -> Result<Vec<Loaded>> {
    if !dir.join("oci-layout").is_file() || !dir.join("index.json").is_file() {
        return Err(Error::UnknownFormat {
            path: dir.to_path_buf(),
        });
    }
    load_layout(store, &Layout::Dir(dir.to_path_buf()), platform, progress)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn load_docker(store: &Store, members: &Members, progress: &dyn Progress) -> Result<Vec<Loaded>> {
    let bytes = members.read("manifest.json")?;
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            path: members.path.clone(),
            what: "manifest.json".into(),
            source,
        })?;
    if entries.is_empty() {
        return Err(Error::Empty {
            path: members.path.clone(),
        });
    }
    let mut images = Vec::new();
    for entry in entries {
        let names: Vec<Reference> = entry
            .repo_tags
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.parse::<Reference>().ok())
            .collect();
        let config = LayerInput {
            key: entry.config.clone(),
            media_type: "application/vnd.docker.container.image.v1+json".into(),
            expected: blob_name_digest(&entry.config, members),
        };
        let layers = entry
            .layers
            .iter()
            .map(|l| LayerInput {
                key: l.clone(),
                media_type: String::new(),
                expected: blob_name_digest(l, members),
            })
            .collect();
        let plan = ImportPlan {
            manifest: None,
            config,
            layers,
            names: names.clone(),
            repo_digest: None,
        };
        images.push(Loaded {
            image: store.import(members, plan, progress)?,
            names,
        });
    }
    Ok(images)
}

/// Newer `docker save` names members `blobs/sha256/HEX`: that is a digest
/// to check.
fn blob_name_digest(member: &str, members: &Members) -> Option<(Digest, u64)> {
    let name = normalize(member);
    let hex = name.strip_prefix("blobs/sha256/")?;
    let digest = Digest::from_hex(hex).ok()?;
    members.find(&name).map(|(_, size)| (digest, size))
}

fn load_layout(
    store: &Store,
    layout: &Layout,
    platform: &Platform,
    progress: &dyn Progress,
) -> Result<Vec<Loaded>> {
    let path = layout.path().to_path_buf();
    let bytes = layout.read("index.json")?;
    let index: Index = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        path: path.clone(),
        what: "index.json".into(),
        source,
    })?;
    let mut images = Vec::new();
    for desc in &index.manifests {
        let names: Vec<Reference> = desc
            .annotations
            .iter()
            .flat_map(|a| [a.get(CONTAINERD_NAME), a.get(REF_NAME)])
            .flatten()
            // A bare tag ("latest") names no repository.
            .filter(|n| n.contains('/') || n.contains(':'))
            .filter_map(|n| n.parse().ok())
            .take(1)
            .collect();
        let image = load_layout_manifest(store, layout, desc, platform, names.clone(), progress)?;
        images.push(Loaded { image, names });
    }
    if images.is_empty() {
        return Err(Error::Empty { path });
    }
    Ok(images)
}

fn load_layout_manifest(
    store: &Store,
    layout: &Layout,
    desc: &Descriptor,
    platform: &Platform,
    names: Vec<Reference>,
    progress: &dyn Progress,
) -> Result<Image> {
    let mut desc = desc.clone();
    // Nested indexes are followed to the manifest for this platform.
    for _ in 0..4 {
        let input = LayerInput {
            key: desc.digest.to_string(),
            media_type: desc.media_type.clone(),
            expected: Some((desc.digest.clone(), desc.size)),
        };
        let (bytes, verified) = store.fetch_small(layout, &input, "manifest")?;
        match manifest::parse(&bytes, Some(&desc.media_type), &desc.digest.to_string())? {
            Fetched::Index(index) => {
                desc =
                    manifest::select_platform(&index, platform, &desc.digest.to_string())?.clone()
            }
            Fetched::Manifest(m) => {
                let plan = plan_for(&m, (bytes, verified), names, None);
                return Ok(store.import(layout, plan, progress)?);
            }
        }
    }
    Err(Error::Manifest(manifest::Error::MediaType {
        what: desc.digest.to_string(),
        media_type: "index nested too deeply".into(),
    }))
}

/// The import plan for a manifest whose blobs a source serves by digest.
pub fn plan_for(
    m: &manifest::Manifest,
    manifest: (Vec<u8>, Descriptor),
    names: Vec<Reference>,
    repo_digest: Option<String>,
) -> ImportPlan {
    let input = |d: &Descriptor| LayerInput {
        key: d.digest.to_string(),
        media_type: d.media_type.clone(),
        expected: Some((d.digest.clone(), d.size)),
    };
    ImportPlan {
        manifest: Some(manifest),
        config: input(&m.config),
        layers: m.layers.iter().map(input).collect(),
        names,
        repo_digest,
    }
}

/// Writes images as an oci-archive (temp file, then rename: a failed save
/// leaves no file).
pub fn save(store: &Store, images: &[(Image, Option<Reference>)], out: &Path) -> Result<()> {
    let tmp = out.with_file_name(format!(
        ".{}.berth-tmp",
        out.file_name()
            .map_or("save".into(), |n| n.to_string_lossy())
    ));
    let io_err = |source| Error::Io {
        path: out.to_path_buf(),
        source,
    };
    let result = (|| -> Result<()> {
        let file = File::create(&tmp).map_err(io_err)?;
        let mut builder = tar::Builder::new(io::BufWriter::new(file));
        let mut manifests = Vec::new();
        let mut written = std::collections::HashSet::new();
        let add = |builder: &mut tar::Builder<io::BufWriter<File>>,
                   name: &str,
                   reader: &mut dyn Read,
                   size: u64|
         -> Result<()> {
            let mut header = tar::Header::new_ustar();
            header.set_size(size);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, name, reader)
                .map_err(io_err)
        };
        add(
            &mut builder,
            "oci-layout",
            &mut &br#"{"imageLayoutVersion":"1.0.0"}"#[..],
            30,
        )?;
        for (image, name) in images {
            let rec = &image.record;
            let mut digests = vec![&rec.manifest.digest, &rec.config.digest];
            digests.extend(rec.layers.iter().map(|l| &l.blob.digest));
            for d in digests {
                if !written.insert(d.clone()) {
                    continue;
                }
                let path = store.blob_path(d);
                let mut f = File::open(&path).map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?;
                let size = f
                    .metadata()
                    .map_err(|source| Error::Io {
                        path: path.clone(),
                        source,
                    })?
                    .len();
                add(
                    &mut builder,
                    &format!("blobs/sha256/{}", d.hex()),
                    &mut f,
                    size,
                )?;
            }
            let mut desc = rec.manifest.clone();
            if let Some(n) = name {
                desc.annotations = Some(
                    [
                        (REF_NAME.to_string(), n.to_string()),
                        (CONTAINERD_NAME.to_string(), n.to_string()),
                    ]
                    .into(),
                );
            }
            manifests.push(desc);
        }
        let index = Index {
            schema_version: 2,
            media_type: Some(manifest::OCI_INDEX.into()),
            manifests,
            annotations: None,
        };
        let json = serde_json::to_vec(&index).map_err(|source| Error::Json {
            path: out.to_path_buf(),
            what: "index.json".into(),
            source,
        })?;
        add(
            &mut builder,
            "index.json",
            &mut &json[..],
            json.len() as u64,
        )?;
        let writer = builder.into_inner().map_err(io_err)?;
        writer
            .into_inner()
            .map_err(|e| io_err(e.into_error()))?
            .sync_all()
            .map_err(io_err)?;
        fs::rename(&tmp, out).map_err(io_err)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalizes_member_names() {
        assert_eq!(normalize("./blobs//sha256/x"), "blobs/sha256/x");
        assert_eq!(normalize("abc/../def/layer.tar"), "def/layer.tar");
    }
}
