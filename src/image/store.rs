//! The content-addressed image store under the engine root.
//!
//! ```text
//! ROOT/blobs/sha256/HEX          verified blobs: manifests, configs, layer blobs
//! ROOT/layers/HEX/root/          a layer unpacked once, keyed by its diffID;
//!                                an overlayfs lowerdir
//! ROOT/layers/HEX/size           its uncompressed size in bytes
//! ROOT/images/HEX.json           an image record, keyed by its ID (config digest)
//! ROOT/repositories.json         names (registry/repo:tag) -> image ID
//! ROOT/image-users/HEX/CONTAINER written by the engine: HEX is in use
//! ROOT/locks/, ROOT/tmp/         flock files; partial downloads
//! ```
//!
//! Everything appears by rename once complete: a blob after its digest and
//! size are verified, a layer directory after its diffID is verified and the
//! filesystem synced. A `.tmp-*` left by a killed process is never mistaken
//! for a layer and is removed by the next one to take that layer's lock.
//! Layers are locked per diffID, so concurrent pulls of one image unpack each
//! layer once; pulls hold the store's gc lock shared and removals hold it
//! exclusive, so a removal never deletes a layer a pull is about to use.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use super::digest::{Digest, HashingReader};
use super::manifest::{self, Compression, ConfigSummary, Descriptor, Manifest};
use super::progress::Progress;
use super::reference::{self, Reference};
use super::unpack::{self, DEFAULT_MAX_LAYER_SIZE};

/// Manifests and configs are small; a bigger one is hostile.
const MAX_METADATA_SIZE: u64 = 16 << 20;
/// Layers fetched at once.
const PARALLEL_LAYERS: usize = 3;
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{what}: {source}")]
    Fetch { what: String, source: io::Error },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("layer {blob}: diffID mismatch: the config says {expected}, the content is {actual}")]
    DiffIdMismatch {
        blob: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("layer {blob}: {source}")]
    Unpack { blob: String, source: unpack::Error },
    #[error("{0}")]
    Manifest(#[from] manifest::Error),
    #[error("{0}")]
    Reference(#[from] reference::Error),
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("image reference {0:?} matches several images")]
    Ambiguous(String),
    #[error("image {image} is in use by container(s) {containers} (-f removes the tag only)")]
    InUse { image: String, containers: String },
    #[error("image {image} has several names ({names}); remove them by name, or use -f")]
    ManyNames { image: String, names: String },
    #[error("image record {path}: {source}")]
    Record {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("image config {id}: {message}")]
    Config { id: Digest, message: String },
}

pub type Result<T> = std::result::Result<T, Error>;

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One layer of an image record: its blob and its unpacked content.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerRecord {
    pub blob: Descriptor,
    pub diff_id: Digest,
}

/// What the store knows about one image.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image ID: the digest of its config.
    pub id: Digest,
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub layers: Vec<LayerRecord>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
    /// `registry/repo@sha256:…` for images pulled from a registry.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// Sum of the layers' uncompressed sizes.
    pub size: u64,
}

/// An image resolved for the engine.
#[derive(Debug)]
pub struct Image {
    pub id: Digest,
    /// Every name that points at it.
    pub names: Vec<String>,
    pub config: oci_spec::image::ImageConfiguration,
    /// The unpacked layers, lowest first. Overlayfs lists lowerdirs
    /// highest first, so the engine reverses this for `lowerdir=`.
    pub layer_dirs: Vec<PathBuf>,
    pub record: ImageRecord,
}

/// One row of `berth images`.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub id: Digest,
    /// `None` for an image without a name.
    pub name: Option<Reference>,
    pub created: Option<String>,
    pub size: u64,
}

/// What `remove` did, in docker's words.
#[derive(Debug, PartialEq, Eq)]
pub enum Removed {
    Untagged(String),
    Deleted(Digest),
}

/// A layer the caller wants imported.
#[derive(Clone, Debug)]
pub struct LayerInput {
    /// How the source finds it (a digest for registries and layouts, a
    /// member path for docker archives).
    pub key: String,
    pub media_type: String,
    /// Digest and size the blob must have; `None` when the source does not
    /// say (docker archives), so the diffID check is the only one.
    pub expected: Option<(Digest, u64)>,
}

/// Where blobs come from: a registry, an archive, a layout directory.
pub trait BlobSource: Sync {
    fn open(&self, key: &str) -> io::Result<Box<dyn Read + Send + '_>>;
}

/// What to import: the caller fetched the manifest (when there is one) and
/// knows the config.
pub struct ImportPlan {
    /// The manifest bytes and their verified digest, or `None` to write a
    /// Docker schema2 manifest for the layers (docker archives have none).
    pub manifest: Option<(Vec<u8>, Descriptor)>,
    pub config: LayerInput,
    pub layers: Vec<LayerInput>,
    pub names: Vec<Reference>,
    /// `registry/repo@digest` to record.
    pub repo_digest: Option<String>,
}

#[derive(Default, Serialize, Deserialize)]
struct Repositories {
    names: BTreeMap<String, Digest>,
}

/// Where a layer thread leaves its result: the blob and the layer size.
type LayerSlot = Mutex<Option<Result<(Descriptor, u64)>>>;

/// The image store rooted at an engine root.
pub struct Store {
    root: PathBuf,
    max_layer_size: u64,
}

impl Store {
    /// Opens (creating as needed) the store under `root`.
    pub fn open(root: &Path) -> Result<Store> {
        for sub in [
            "",
            "blobs/sha256",
            "layers",
            "images",
            "locks",
            "tmp",
            "image-users",
        ] {
            let dir = root.join(sub);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(io_at(&dir))?;
        }
        Ok(Store {
            root: root.to_path_buf(),
            max_layer_size: DEFAULT_MAX_LAYER_SIZE,
        })
    }

    /// Caps a layer's uncompressed size (decompression bombs).
    pub fn with_max_layer_size(mut self, bytes: u64) -> Store {
        self.max_layer_size = bytes;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// The unpacked layer for a diffID (an overlayfs lowerdir).
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex()).join("root")
    }

    fn record_path(&self, id: &Digest) -> PathBuf {
        self.root.join("images").join(format!("{}.json", id.hex()))
    }

    /// Reads a verified blob (small ones: manifests, configs).
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        fs::read(&path).map_err(io_at(&path))
    }

    /// Whether a layer is complete in the store.
    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.root
            .join("layers")
            .join(diff_id.hex())
            .join("size")
            .exists()
    }

    fn lock_file(&self, name: &str) -> Result<File> {
        let path = self.root.join("locks").join(format!("{name}.lock"));
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_at(&path))
    }

    fn lock(&self, name: &str, exclusive: bool) -> Result<File> {
        let path = self.root.join("locks").join(format!("{name}.lock"));
        let file = self.lock_file(name)?;
        let op = if exclusive {
            rustix::fs::FlockOperation::LockExclusive
        } else {
            rustix::fs::FlockOperation::LockShared
        };
        rustix::fs::flock(&file, op).map_err(|e| Error::Io {
            path: path.clone(),
            source: e.into(),
        })?;
        Ok(file)
    }

    /// Writes `bytes` to `path` by temp file and rename.
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = self.tmp_path("write");
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_at(&tmp))?;
        let done = f
            .write_all(bytes)
            .and_then(|()| f.sync_all())
            .and_then(|()| fs::rename(&tmp, path));
        if done.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        done.map_err(io_at(path))
    }

    /// Deletes what killed imports left: temp files of dead processes,
    /// half-unpacked layers whose lock no one holds, and layers a killed
    /// garbage collection was deleting. Called with the gc lock held
    /// shared (so no collection runs now); failures are harmless here.
    fn sweep(&self) {
        for e in fs::read_dir(self.root.join("tmp"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            // write-PID-N: ours by pid; layer-HEX: under that layer's lock.
            match name.split('-').collect::<Vec<_>>()[..] {
                ["write", pid, _]
                    if pid
                        .parse::<i32>()
                        .is_ok_and(|p| !Path::new(&format!("/proc/{p}")).exists()) =>
                {
                    let _ = fs::remove_file(e.path());
                }
                ["layer", hex] => {
                    if let Some(_lock) = self.idle_layer_lock(hex) {
                        let _ = fs::remove_file(e.path());
                    }
                }
                _ => {}
            }
        }
        for e in fs::read_dir(self.root.join("layers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-gc-") {
                let _ = fs::remove_dir_all(e.path());
            } else if let Some(hex) = name.strip_prefix(".tmp-")
                && let Some(_lock) = self.idle_layer_lock(hex)
            {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }

    /// The lock of the layer with this diffID hex, if no process holds it
    /// (its temp files are then stale). Held until dropped.
    fn idle_layer_lock(&self, hex: &str) -> Option<File> {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let file = self.lock_file(&format!("layer-{hex}")).ok()?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .ok()
            .map(|()| file)
    }

    fn tmp_path(&self, what: &str) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{what}-{}-{n}", std::process::id()))
    }

    /// Stores a small blob after checking it against `expected`.
    fn put_small_blob(&self, bytes: &[u8], expected: &Descriptor, what: &str) -> Result<()> {
        verify_bytes(bytes, expected, what)?;
        let path = self.blob_path(&expected.digest);
        if !path.exists() {
            self.write_atomic(&path, bytes)?;
        }
        Ok(())
    }

    /// Reads a small blob from a source, verifying it when `expected` says how.
    pub fn fetch_small(
        &self,
        source: &dyn BlobSource,
        input: &LayerInput,
        what: &str,
    ) -> Result<(Vec<u8>, Descriptor)> {
        let fetch = |source: io::Error| Error::Fetch {
            what: what.to_string(),
            source,
        };
        let reader = source.open(&input.key).map_err(fetch)?;
        let mut bytes = Vec::new();
        reader
            .take(MAX_METADATA_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(fetch)?;
        if bytes.len() as u64 > MAX_METADATA_SIZE {
            return Err(Error::SizeMismatch {
                what: what.to_string(),
                expected: MAX_METADATA_SIZE,
                actual: bytes.len() as u64,
            });
        }
        let desc = match &input.expected {
            Some((digest, size)) => Descriptor {
                media_type: input.media_type.clone(),
                digest: digest.clone(),
                size: *size,
                platform: None,
                annotations: None,
                urls: None,
            },
            None => Descriptor {
                media_type: input.media_type.clone(),
                digest: Digest::of(&bytes),
                size: bytes.len() as u64,
                platform: None,
                annotations: None,
                urls: None,
            },
        };
        verify_bytes(&bytes, &desc, what)?;
        Ok((bytes, desc))
    }

    /// Imports an image: config, layers (in parallel, each unpacked once),
    /// manifest, record and names.
    pub fn import(
        &self,
        source: &dyn BlobSource,
        plan: ImportPlan,
        progress: &dyn Progress,
    ) -> Result<Image> {
        let _gc = self.lock("gc", false)?;
        self.sweep();
        let (config_bytes, config_desc) = self.fetch_small(source, &plan.config, "image config")?;
        crate::fault::point("image.config-fetched");
        let config: ConfigSummary = manifest::parse_config(
            &config_bytes,
            plan.layers.len(),
            &config_desc.digest.to_string(),
        )?;

        let results: Vec<LayerSlot> = plan.layers.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let failed = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..PARALLEL_LAYERS.min(plan.layers.len()) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= plan.layers.len() || failed.load(Ordering::SeqCst) {
                            break;
                        }
                        let r = self.ingest_layer(
                            source,
                            &plan.layers[i],
                            &config.rootfs.diff_ids[i],
                            progress,
                        );
                        if r.is_err() {
                            failed.store(true, Ordering::SeqCst);
                        }
                        if let Ok(mut slot) = results[i].lock() {
                            *slot = Some(r);
                        }
                    }
                });
            }
        });
        let mut layers = Vec::new();
        let mut size = 0;
        for (i, slot) in results.into_iter().enumerate() {
            match slot.into_inner().ok().flatten() {
                Some(Ok((blob, layer_size))) => {
                    size += layer_size;
                    layers.push(LayerRecord {
                        blob,
                        diff_id: config.rootfs.diff_ids[i].clone(),
                    });
                }
                Some(Err(e)) => return Err(e),
                // Not attempted because another layer failed first.
                None => continue,
            }
        }

        self.put_small_blob(&config_bytes, &config_desc, "image config")?;
        let (manifest_bytes, manifest_desc) = match plan.manifest {
            Some(m) => m,
            None => synthesize_manifest(&config_desc, &layers),
        };
        self.put_small_blob(&manifest_bytes, &manifest_desc, "manifest")?;
        crate::fault::point("image.blobs-stored");

        let id = config_desc.digest.clone();
        let mut record = ImageRecord {
            id: id.clone(),
            manifest: manifest_desc,
            config: config_desc,
            layers,
            created: config.created.clone(),
            architecture: config.architecture.clone(),
            os: config.os.clone(),
            repo_digests: Vec::new(),
            size,
        };
        if let Ok(old) = self.read_record(&id) {
            record.repo_digests = old.repo_digests;
        }
        if let Some(rd) = plan.repo_digest
            && !record.repo_digests.contains(&rd)
        {
            record.repo_digests.push(rd);
        }
        let json = serde_json::to_vec_pretty(&record).map_err(|source| Error::Record {
            path: self.record_path(&id),
            source,
        })?;
        self.write_atomic(&self.record_path(&id), &json)?;
        crate::fault::point("image.recorded");
        self.update_names(|names| {
            for name in &plan.names {
                names.insert(name.full_name(), id.clone());
            }
        })?;
        crate::fault::point("image.named");
        self.image(&id)
    }

    /// Fetches one layer blob into the store and unpacks it, unless both are
    /// there already. Returns the blob's descriptor and the layer's size.
    fn ingest_layer(
        &self,
        source: &dyn BlobSource,
        input: &LayerInput,
        diff_id: &Digest,
        progress: &dyn Progress,
    ) -> Result<(Descriptor, u64)> {
        let label = input
            .expected
            .as_ref()
            .map_or_else(|| input.key.clone(), |(d, _)| d.to_string());
        let _lock = self.lock(&format!("layer-{}", diff_id.hex()), true)?;
        let layer_home = self.root.join("layers").join(diff_id.hex());
        // A docker archive's uncompressed layer blob is named by its diffID.
        let blob_digest = input.expected.as_ref().map_or(diff_id, |(d, _)| d);
        let have_layer = self.has_layer(diff_id);
        if have_layer && self.blob_path(blob_digest).exists() {
            let size = fs::read_to_string(layer_home.join("size"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            let blob_size = fs::metadata(self.blob_path(blob_digest))
                .map(|m| m.len())
                .unwrap_or(0);
            progress.layer_skipped(&label);
            return Ok((
                layer_descriptor(input, blob_digest.clone(), blob_size),
                size,
            ));
        }

        // Whatever a killed process left under this lock is stale.
        let tmp_home = self
            .root
            .join("layers")
            .join(format!(".tmp-{}", diff_id.hex()));
        let tmp_blob = self
            .root
            .join("tmp")
            .join(format!("layer-{}", diff_id.hex()));
        let _ = fs::remove_dir_all(&tmp_home);
        let _ = fs::remove_file(&tmp_blob);
        let cleanup = Cleanup(vec![tmp_home.clone(), tmp_blob.clone()]);
        let tmp_root = tmp_home.join("root");
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&tmp_home)
            .map_err(io_at(&tmp_home))?;
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&tmp_root)
            .map_err(io_at(&tmp_root))?;

        let fetch = |source: io::Error| Error::Fetch {
            what: format!("layer {label}"),
            source,
        };
        let reader = source.open(&input.key).map_err(fetch)?;
        let blob_file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp_blob)
            .map_err(io_at(&tmp_blob))?;
        progress.layer_started(&label, input.expected.as_ref().map(|(_, s)| *s));
        let counted = Counted {
            inner: reader,
            progress,
            label: &label,
        };
        let limit = input.expected.as_ref().map_or(u64::MAX, |(_, s)| *s);
        let mut hashing = HashingReader::with_limit(
            Tee {
                inner: counted,
                file: blob_file,
            },
            limit,
        );

        let mut magic = Vec::with_capacity(512);
        (&mut hashing)
            .take(512)
            .read_to_end(&mut magic)
            .map_err(|e| self.blob_read_error(e, input, &label))?;
        let compression = Compression::detect(&magic, &input.media_type);
        crate::fault::point("image.layer-unpacking");
        let (size, actual_diff) = if have_layer {
            (0, None)
        } else {
            let stream = io::Cursor::new(magic).chain(&mut hashing);
            match unpack::unpack(stream, compression, &tmp_root, self.max_layer_size) {
                Ok(unpacked) => (unpacked.size, Some(unpacked.diff_id)),
                Err(source) => {
                    // A corrupt download usually breaks decompression first;
                    // the digest is the clearer report, so check it when the
                    // rest of the blob can still be read.
                    if let Some((expected, _)) = &input.expected
                        && !matches!(source, unpack::Error::Read(ref e) if hashing_limit(e))
                        && let Ok((actual, _)) = hashing.finish()
                        && &actual != expected
                    {
                        return Err(Error::DigestMismatch {
                            what: format!("layer {label}"),
                            expected: expected.clone(),
                            actual,
                        });
                    }
                    return Err(match source {
                        unpack::Error::Read(e) if hashing_limit(&e) => {
                            self.blob_read_error(e, input, &label)
                        }
                        source => Error::Unpack {
                            blob: label.clone(),
                            source,
                        },
                    });
                }
            }
        };
        let (digest, blob_size) = hashing
            .finish()
            .map_err(|e| self.blob_read_error(e, input, &label))?;
        if let Some((expected, expected_size)) = &input.expected {
            if blob_size != *expected_size {
                return Err(Error::SizeMismatch {
                    what: format!("layer {label}"),
                    expected: *expected_size,
                    actual: blob_size,
                });
            }
            if &digest != expected {
                return Err(Error::DigestMismatch {
                    what: format!("layer {label}"),
                    expected: expected.clone(),
                    actual: digest,
                });
            }
        }
        if let Some(actual) = actual_diff
            && &actual != diff_id
        {
            return Err(Error::DiffIdMismatch {
                blob: label,
                expected: diff_id.clone(),
                actual,
            });
        }

        crate::fault::point("image.layer-verified");
        // One syncfs makes the whole layer durable before it becomes
        // visible by rename (no fsync per file).
        let dirfd = File::open(&tmp_home).map_err(io_at(&tmp_home))?;
        rustix::fs::syncfs(&dirfd).map_err(|e| Error::Io {
            path: tmp_home.clone(),
            source: e.into(),
        })?;
        let blob_path = self.blob_path(&digest);
        fs::rename(&tmp_blob, &blob_path).map_err(io_at(&blob_path))?;
        if !have_layer {
            let size_path = tmp_home.join("size");
            fs::write(&size_path, size.to_string()).map_err(io_at(&size_path))?;
            fs::rename(&tmp_home, &layer_home).map_err(io_at(&layer_home))?;
        }
        drop(cleanup);
        crate::fault::point("image.layer-stored");
        progress.layer_done(&label);
        let size = if have_layer {
            fs::read_to_string(layer_home.join("size"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0)
        } else {
            size
        };
        Ok((layer_descriptor(input, digest, blob_size), size))
    }

    fn blob_read_error(&self, e: io::Error, input: &LayerInput, label: &str) -> Error {
        match &input.expected {
            Some((_, size)) if hashing_limit(&e) => Error::SizeMismatch {
                what: format!("layer {label}"),
                expected: *size,
                actual: size + 1,
            },
            _ => Error::Fetch {
                what: format!("layer {label}"),
                source: e,
            },
        }
    }

    fn read_names(&self) -> Result<Repositories> {
        let path = self.root.join("repositories.json");
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| Error::Record { path, source })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Repositories::default()),
            Err(e) => Err(Error::Io { path, source: e }),
        }
    }

    fn update_names(&self, f: impl FnOnce(&mut BTreeMap<String, Digest>)) -> Result<()> {
        let _lock = self.lock("repositories", true)?;
        let mut repos = self.read_names()?;
        f(&mut repos.names);
        let path = self.root.join("repositories.json");
        let json = serde_json::to_vec_pretty(&repos).map_err(|source| Error::Record {
            path: path.clone(),
            source,
        })?;
        self.write_atomic(&path, &json)
    }

    pub fn read_record(&self, id: &Digest) -> Result<ImageRecord> {
        let path = self.record_path(id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()));
            }
            Err(e) => return Err(Error::Io { path, source: e }),
        };
        serde_json::from_slice(&bytes).map_err(|source| Error::Record { path, source })
    }

    fn record_ids(&self) -> Result<Vec<Digest>> {
        let dir = self.root.join("images");
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_at(&dir))? {
            let entry = entry.map_err(io_at(&dir))?;
            let name = entry.file_name();
            if let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".json"))
                && let Ok(d) = Digest::from_hex(hex)
            {
                ids.push(d);
            }
        }
        Ok(ids)
    }

    /// Finds the image a user's reference means: a name (`busybox`,
    /// `reg/app:1`, `app@sha256:…`), a full ID (`sha256:…`) or a unique ID
    /// prefix. Returns the ID and the name it matched, if any.
    pub fn lookup(&self, reference: &str) -> Result<(Digest, Option<Reference>)> {
        let names = self.read_names()?.names;
        if let Ok(r) = reference.parse::<Reference>() {
            if let Some(id) = names.get(&r.full_name()) {
                return Ok((id.clone(), Some(r)));
            }
            // `name@digest` matches an image pulled by that manifest digest.
            if let Some(d) = &r.digest {
                for id in self.record_ids()? {
                    let rec = self.read_record(&id)?;
                    if &rec.manifest.digest == d
                        && rec
                            .repo_digests
                            .iter()
                            .any(|rd| rd.starts_with(&format!("{}@", r.name())))
                    {
                        return Ok((id, None));
                    }
                }
            }
        }
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        if hex.len() >= 4 && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let matches: Vec<Digest> = self
                .record_ids()?
                .into_iter()
                .filter(|id| id.hex().starts_with(&hex.to_ascii_lowercase()))
                .collect();
            match matches.len() {
                1 => return Ok((matches[0].clone(), None)),
                0 => {}
                _ => return Err(Error::Ambiguous(reference.to_string())),
            }
        }
        // Validate the reference for a clear message when it is malformed.
        reference.parse::<Reference>()?;
        Err(Error::NotFound(reference.to_string()))
    }

    /// Resolves a reference to an image the engine can run.
    pub fn resolve(&self, reference: &str) -> Result<Image> {
        let (id, _) = self.lookup(reference)?;
        self.image(&id)
    }

    /// The image with this ID.
    pub fn image(&self, id: &Digest) -> Result<Image> {
        let record = self.read_record(id)?;
        let bytes = self.read_blob(&record.config.digest)?;
        let config: oci_spec::image::ImageConfiguration =
            serde_json::from_slice(&bytes).map_err(|e| Error::Config {
                id: id.clone(),
                message: e.to_string(),
            })?;
        let layer_dirs = record
            .layers
            .iter()
            .map(|l| self.layer_dir(&l.diff_id))
            .collect();
        let names = self
            .read_names()?
            .names
            .into_iter()
            .filter(|(_, v)| v == id)
            .map(|(k, _)| k)
            .collect();
        Ok(Image {
            id: id.clone(),
            names,
            config,
            layer_dirs,
            record,
        })
    }

    /// Every image, one row per name (and one for an image without names).
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let names = self.read_names()?.names;
        let mut rows = Vec::new();
        let mut named = HashSet::new();
        for (name, id) in &names {
            let Ok(rec) = self.read_record(id) else {
                continue;
            };
            named.insert(id.clone());
            rows.push(ImageSummary {
                id: id.clone(),
                name: name.parse().ok(),
                created: rec.created,
                size: rec.size,
            });
        }
        for id in self.record_ids()? {
            if !named.contains(&id) {
                let rec = self.read_record(&id)?;
                rows.push(ImageSummary {
                    id,
                    name: None,
                    created: rec.created,
                    size: rec.size,
                });
            }
        }
        Ok(rows)
    }

    /// Gives the image `src` the name `dst`.
    pub fn tag(&self, src: &str, dst: &str) -> Result<()> {
        let (id, _) = self.lookup(src)?;
        let dst: Reference = dst.parse()?;
        if dst.digest.is_some() {
            return Err(Error::Reference(reference::Error::Invalid(
                dst.to_string(),
                "a tag target cannot carry a digest",
            )));
        }
        self.update_names(|names| {
            names.insert(dst.full_name(), id.clone());
        })
    }

    /// Marks an image as used by a container (the engine calls this when it
    /// creates one); `rmi` refuses such an image.
    pub fn add_user(&self, id: &Digest, container: &str) -> Result<()> {
        let dir = self.root.join("image-users").join(id.hex());
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io_at(&dir))?;
        let path = dir.join(container_file_name(container));
        // The last user's removal may take the directory away between our
        // mkdir and create: make it again.
        for _ in 0..8 {
            match File::create(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let _ = fs::DirBuilder::new().mode(0o700).create(&dir);
                }
                r => return r.map(drop).map_err(io_at(&path)),
            }
        }
        File::create(&path).map(drop).map_err(io_at(&path))
    }

    /// Drops every mark of `container`, whatever the image (the engine's
    /// reaper: a container whose create or rm was cut short).
    pub fn forget_user(&self, container: &str) {
        let users = self.root.join("image-users");
        for e in fs::read_dir(&users).into_iter().flatten().flatten() {
            if fs::remove_file(e.path().join(container_file_name(container))).is_ok() {
                let _ = fs::remove_dir(e.path());
            }
        }
    }

    /// Undoes [`Store::add_user`] (the engine calls this when it removes the
    /// container).
    pub fn remove_user(&self, id: &Digest, container: &str) -> Result<()> {
        let dir = self.root.join("image-users").join(id.hex());
        let path = dir.join(container_file_name(container));
        match fs::remove_file(&path) {
            Ok(()) => {
                let _ = fs::remove_dir(&dir);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io { path, source: e }),
        }
    }

    /// Whether any container uses the image (see [`Store::add_user`]).
    pub fn image_in_use(&self, id: &Digest) -> Result<bool> {
        Ok(!self.image_users(id)?.is_empty())
    }

    /// The containers using an image, as the engine recorded them.
    pub fn image_users(&self, id: &Digest) -> Result<Vec<String>> {
        let dir = self.root.join("image-users").join(id.hex());
        let entries = crate::dirs::entries(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        let mut users: Vec<String> = entries
            .into_iter()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        users.sort();
        Ok(users)
    }

    /// `rmi`: removes a name, and the image once no name and no container
    /// refers to it; then deletes blobs and layers nothing refers to.
    pub fn remove(&self, reference: &str, force: bool) -> Result<Vec<Removed>> {
        let _gc = self.lock("gc", true)?;
        let (id, by_name) = self.lookup(reference)?;
        let names: Vec<String> = self
            .read_names()?
            .names
            .into_iter()
            .filter(|(_, v)| *v == id)
            .map(|(k, _)| k)
            .collect();
        let users = self.image_users(&id)?;
        let to_untag: Vec<String> = match &by_name {
            Some(r) => vec![r.full_name()],
            None => {
                if names.len() > 1 && !force {
                    return Err(Error::ManyNames {
                        image: id.short().to_string(),
                        names: names.join(", "),
                    });
                }
                names.clone()
            }
        };
        let last_name = to_untag.len() == names.len();
        if last_name && !users.is_empty() && !force {
            return Err(Error::InUse {
                image: reference.to_string(),
                containers: users.join(", "),
            });
        }
        let mut removed = Vec::new();
        self.update_names(|map| {
            for n in &to_untag {
                map.remove(n);
            }
        })?;
        for n in to_untag {
            removed.push(Removed::Untagged(n));
        }
        if last_name && users.is_empty() {
            let path = self.record_path(&id);
            fs::remove_file(&path).map_err(io_at(&path))?;
            removed.push(Removed::Deleted(id));
            self.collect_garbage()?;
        }
        Ok(removed)
    }

    /// Deletes blobs and layers no image record refers to, and stale temp
    /// files. Called with the gc lock held exclusively.
    fn collect_garbage(&self) -> Result<()> {
        let mut blobs = BTreeSet::new();
        let mut layers = BTreeSet::new();
        for id in self.record_ids()? {
            let rec = self.read_record(&id)?;
            blobs.insert(rec.manifest.digest.hex().to_string());
            blobs.insert(rec.config.digest.hex().to_string());
            for l in rec.layers {
                blobs.insert(l.blob.digest.hex().to_string());
                layers.insert(l.diff_id.hex().to_string());
            }
        }
        let blob_dir = self.root.join("blobs/sha256");
        for entry in fs::read_dir(&blob_dir).map_err(io_at(&blob_dir))?.flatten() {
            if !blobs.contains(entry.file_name().to_string_lossy().as_ref()) {
                let _ = fs::remove_file(entry.path());
            }
        }
        let layer_dir = self.root.join("layers");
        for entry in fs::read_dir(&layer_dir)
            .map_err(io_at(&layer_dir))?
            .flatten()
        {
            if !layers.contains(entry.file_name().to_string_lossy().as_ref()) {
                // Rename first so a half-deleted layer never looks complete.
                let doomed = self
                    .root
                    .join("layers")
                    .join(format!(".tmp-gc-{}", entry.file_name().to_string_lossy()));
                if fs::rename(entry.path(), &doomed).is_ok() {
                    let _ = fs::remove_dir_all(&doomed);
                }
            }
        }
        let tmp = self.root.join("tmp");
        for entry in fs::read_dir(&tmp).map_err(io_at(&tmp))?.flatten() {
            let _ = fs::remove_file(entry.path());
        }
        Ok(())
    }
}

fn container_file_name(container: &str) -> String {
    container.replace('/', "_")
}

fn hashing_limit(e: &io::Error) -> bool {
    super::digest::is_limit_error(e) || e.to_string().contains("exceeds the limit")
}

fn verify_bytes(bytes: &[u8], expected: &Descriptor, what: &str) -> Result<()> {
    if bytes.len() as u64 != expected.size {
        return Err(Error::SizeMismatch {
            what: format!("{what} {}", expected.digest),
            expected: expected.size,
            actual: bytes.len() as u64,
        });
    }
    let actual = Digest::of(bytes);
    if actual != expected.digest {
        return Err(Error::DigestMismatch {
            what: what.to_string(),
            expected: expected.digest.clone(),
            actual,
        });
    }
    Ok(())
}

fn layer_descriptor(input: &LayerInput, digest: Digest, size: u64) -> Descriptor {
    let media_type = if input.media_type.is_empty() {
        DOCKER_LAYER_TAR.to_string()
    } else {
        input.media_type.clone()
    };
    Descriptor {
        media_type,
        digest,
        size,
        platform: None,
        annotations: None,
        urls: None,
    }
}

/// A Docker schema2 manifest for layers that came without one.
fn synthesize_manifest(config: &Descriptor, layers: &[LayerRecord]) -> (Vec<u8>, Descriptor) {
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(manifest::DOCKER_MANIFEST.to_string()),
        config: Descriptor {
            media_type: DOCKER_CONFIG.to_string(),
            ..config.clone()
        },
        layers: layers.iter().map(|l| l.blob.clone()).collect(),
        annotations: None,
    };
    // Serialising plain structs of strings and numbers cannot fail.
    let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    let desc = Descriptor {
        media_type: manifest::DOCKER_MANIFEST.to_string(),
        digest: Digest::of(&bytes),
        size: bytes.len() as u64,
        platform: None,
        annotations: None,
        urls: None,
    };
    (bytes, desc)
}

/// Removes paths on drop unless emptied: a failed layer leaves nothing.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            if p.is_dir() {
                let _ = fs::remove_dir_all(p);
            } else {
                let _ = fs::remove_file(p);
            }
        }
    }
}

/// Copies what is read into the temp blob file.
struct Tee<R> {
    inner: R,
    file: File,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.file.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Reports bytes read to the progress display.
struct Counted<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
    label: &'a str,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.layer_bytes(self.label, n as u64);
        Ok(n)
    }
}
