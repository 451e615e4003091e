//! An S3-compatible object store as the shared home of media, for nodes that share
//! no folder (API nodes and workers on different machines).
//!
//! Every stage still reads and writes plain files, because ffmpeg, Whisper and the
//! packager want paths: the local data folder becomes each node's working copy,
//! and a video's folder (`videos/{id}/`) or a cache entry (`cache/encode/{key}/`) is
//! mirrored to the bucket under the same keys, so the bucket has exactly the local
//! store's deterministic layout. A worker [`Remote::pull`]s a folder before a stage
//! and [`Remote::push`]es what the stage wrote after it.
//!
//! Deciding what changed is the one thing written here rather than taken from a
//! library (the `object_store` crate does the S3 protocol, signing, multipart and
//! presigned URLs): each mirrored folder keeps a manifest, `.remote-manifest.json`,
//! of every file's ETag in the bucket and size and mtime here when the two last
//! matched. A pull takes what changed in the bucket since (a stage elsewhere wrote
//! it) and keeps local edits of files the bucket still has unchanged; a push sends
//! what changed here and deletes from the bucket what this node deleted. Hidden
//! names (`.partial-*` staging, locks, the manifest) are never mirrored.
//! Operations on one folder are serialised, in this process by a mutex and among
//! processes sharing the working copy by a `flock` of `.remote.lock`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::signer::Signer;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};

use crate::StagedFile;

/// Files larger than this are uploaded in parts (S3's parts are at least 5 MiB).
pub const MULTIPART_ABOVE: u64 = 16 << 20;
/// The size of one part of a multipart upload.
const PART: usize = 8 << 20;
/// Parts in flight at once per upload.
const PARTS_IN_FLIGHT: usize = 4;
/// Files moved at once by a pull or push (a package is hundreds of small segments;
/// one at a time, each pays a round trip).
const FILES_IN_FLIGHT: usize = 8;
const MANIFEST: &str = ".remote-manifest.json";
const LOCK: &str = ".remote.lock";

/// Where the bucket is and how to sign in; the `[s3]` table of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The S3 API's base URL, e.g. `http://127.0.0.1:3900` (Garage) or
    /// `https://s3.eu-west-1.amazonaws.com`.
    pub endpoint: String,
    /// The bucket; it must exist.
    pub bucket: String,
    /// The region the store expects in signatures (`garage` for Garage).
    #[serde(default = "default_region")]
    pub region: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key (never printed: `[redacted]`).
    pub secret_access_key: babelcast_core::Secret,
    /// Address the bucket in the path (`endpoint/bucket/key`) rather than as a host
    /// name (`bucket.endpoint/key`); most self-hosted stores want this.
    #[serde(default = "yes")]
    pub path_style: bool,
    /// Playback: redirect media segments to presigned URLs of the store, so the
    /// bytes do not pass through babelcast (playlists are always served by
    /// babelcast). Off: babelcast streams everything from the store.
    #[serde(default)]
    pub presigned_playback: bool,
}

fn default_region() -> String {
    "us-east-1".into()
}

fn yes() -> bool {
    true
}

/// What went wrong talking to the store or mirroring a folder.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The store refused or failed a request.
    #[error("object store ({store}): {source}")]
    Store {
        /// Which store.
        store: String,
        /// Why.
        #[source]
        source: object_store::Error,
    },
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What a pull or push moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// Files copied.
    pub files: usize,
    /// Bytes copied.
    pub bytes: u64,
    /// Files deleted (here by a pull, in the bucket by a push).
    pub deleted: usize,
}

/// Which part of a folder a pull or push covers, by the first name inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Everything.
    All,
    /// Only this sub-folder or file (e.g. `hls`).
    Only(&'a str),
    /// Everything but this sub-folder or file.
    Except(&'a str),
}

impl Scope<'_> {
    fn covers(self, rel: &str) -> bool {
        let first = rel.split('/').next().unwrap_or(rel);
        match self {
            Scope::All => true,
            Scope::Only(name) => first == name,
            Scope::Except(name) => first != name,
        }
    }
}

/// One file as last seen matching in the bucket and here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    etag: String,
    size: u64,
    mtime_ns: u128,
}

type Manifest = BTreeMap<String, Entry>;

/// The origin of `endpoint` (with the bucket as a subdomain when virtual-hosted).
fn origin_of(endpoint: &str, bucket_host: Option<&str>) -> String {
    let (scheme, rest) = endpoint.split_once("://").unwrap_or(("https", endpoint));
    let host = rest.split('/').next().unwrap_or(rest);
    match bucket_host {
        Some(bucket) => format!("{scheme}://{bucket}.{host}"),
        None => format!("{scheme}://{host}"),
    }
}

/// A bucket mirrored into a local working folder.
#[derive(Debug, Clone)]
pub struct Remote {
    store: Arc<AmazonS3>,
    local: PathBuf,
    name: String,
    presigned_playback: bool,
    origin: String,
    folders: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Remote {
    /// The bucket of `config`, mirrored into `local` (the data folder).
    pub fn s3(config: &S3Config, local: &Path) -> Result<Remote, RemoteError> {
        let name = format!("s3 bucket {} at {}", config.bucket, config.endpoint);
        let store = AmazonS3Builder::new()
            .with_endpoint(&config.endpoint)
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(config.secret_access_key.expose())
            .with_virtual_hosted_style_request(!config.path_style)
            .with_allow_http(config.endpoint.starts_with("http://"))
            .build()
            .map_err(|source| RemoteError::Store { store: name.clone(), source })?;
        Ok(Remote {
            store: Arc::new(store),
            local: local.to_owned(),
            name,
            presigned_playback: config.presigned_playback,
            origin: origin_of(&config.endpoint, (!config.path_style).then_some(config.bucket.as_str())),
            folders: Arc::default(),
        })
    }

    /// The store, for messages: `s3 bucket B at URL`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where browsers fetch presigned URLs from (`scheme://host[:port]`), for the
    /// pages' content security policy.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether playback redirects segments to presigned URLs.
    pub fn presigned_playback(&self) -> bool {
        self.presigned_playback
    }

    fn err(&self, source: object_store::Error) -> RemoteError {
        RemoteError::Store { store: self.name.clone(), source }
    }

    /// Checks that the bucket answers with these credentials (one listing), so a
    /// wrong endpoint, bucket or key is reported at start, not mid-job.
    pub async fn check(&self) -> Result<(), RemoteError> {
        let probe = Key::from("videos");
        let mut listing = self.store.list(Some(&probe));
        if let Some(Err(e)) = listing.next().await {
            return Err(self.err(e));
        }
        Ok(())
    }

    /// The key of a local path inside the data folder (`videos/{id}/hls/master.m3u8`).
    pub fn key_of(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.local).ok()?;
        let parts: Vec<&str> = rel.iter().map(|p| p.to_str()).collect::<Option<_>>()?;
        (!parts.is_empty() && parts.iter().all(|p| !p.is_empty() && *p != ".." && *p != "."))
            .then(|| parts.join("/"))
    }

    /// The whole object at `key`, or `None` if there is none.
    pub async fn get_bytes(&self, key: &str) -> Result<Option<bytes::Bytes>, RemoteError> {
        match self.store.get(&Key::from(key)).await {
            Ok(got) => Ok(Some(got.bytes().await.map_err(|e| self.err(e))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// The object at `key` as a stream of chunks with its size, or `None`.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<
        Option<(u64, futures_util::stream::BoxStream<'static, Result<bytes::Bytes, object_store::Error>>)>,
        RemoteError,
    > {
        match self.store.get(&Key::from(key)).await {
            Ok(got) => Ok(Some((got.meta.size, got.into_stream()))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Whether an object exists at `key`.
    pub async fn exists(&self, key: &str) -> Result<bool, RemoteError> {
        match self.store.head(&Key::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    /// The keys under `prefix/`, relative to it, sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, RemoteError> {
        let listed = self.listing(prefix).await?;
        Ok(listed.into_keys().collect())
    }

    /// Deletes the object at `key` and every object under `key/` (hidden ones,
    /// such as the mirror's manifest, too); returns how many were asked to go.
    pub async fn remove_all(&self, key: &str) -> Result<usize, RemoteError> {
        let mut doomed = Vec::new();
        let mut listing = self.store.list(Some(&Key::from(key)));
        while let Some(meta) = listing.next().await {
            doomed.push(meta.map_err(|e| self.err(e))?.location);
        }
        drop(listing);
        // Nothing under it: a single object (deleting a missing one is no error).
        // Not asked about first: some stores refuse a HEAD of a folder's name.
        if doomed.is_empty() {
            doomed.push(Key::from(key));
        }
        for object in &doomed {
            match self.store.delete(object).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err(e)),
            }
        }
        Ok(doomed.len())
    }

    /// A URL of the store that reads `key` for `ttl`, signed with the store's key.
    pub async fn presigned_get(&self, key: &str, ttl: Duration) -> Result<String, RemoteError> {
        let url = self
            .store
            .signed_url(reqwest::Method::GET, &Key::from(key), ttl)
            .await
            .map_err(|e| self.err(e))?;
        Ok(url.to_string())
    }

    /// Everything under `prefix/`: relative key to (ETag, size).
    async fn listing(&self, prefix: &str) -> Result<BTreeMap<String, (String, u64)>, RemoteError> {
        let mut listing = self.store.list(Some(&Key::from(prefix)));
        let mut found = BTreeMap::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.err(e))?;
            let key = meta.location.as_ref();
            let Some(rel) = key.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) else { continue };
            if rel.split('/').any(|p| p.starts_with('.')) {
                continue;
            }
            found.insert(rel.to_owned(), (meta.e_tag.unwrap_or_default(), meta.size));
        }
        Ok(found)
    }

    /// Takes the mirror lock of `folder` (a key prefix such as `videos/{id}`).
    async fn lock(&self, folder: &str) -> Result<FolderLock, RemoteError> {
        let local = {
            let mut folders = self.folders.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(folders.entry(folder.to_owned()).or_default())
        };
        let local = local.lock_owned().await;
        let dir = self.local.join(folder);
        let path = dir.join(LOCK);
        let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            std::fs::create_dir_all(&dir)?;
            let file = std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(&path)?;
            file.lock()?;
            Ok(file)
        })
        .await
        .map_err(|e| RemoteError::Io { path: self.local.join(folder), source: std::io::Error::other(e) })?
        .map_err(|source| RemoteError::Io { path: self.local.join(folder).join(LOCK), source })?;
        Ok(FolderLock { _file: file, _local: local })
    }

    fn read_manifest(&self, folder: &str) -> Manifest {
        std::fs::read(self.local.join(folder).join(MANIFEST))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn write_manifest(&self, folder: &str, manifest: &Manifest) -> Result<(), RemoteError> {
        let path = self.local.join(folder).join(MANIFEST);
        let json = serde_json::to_vec(manifest).unwrap_or_default();
        crate::write_atomic(&path, &json).map_err(|source| RemoteError::Io { path, source })
    }

    /// Brings `folder` up to date with the bucket within `scope`: files new or
    /// changed in the bucket are downloaded, files deleted from the bucket (and not
    /// changed here) are deleted; local changes to files the bucket still has as
    /// last seen are kept.
    pub async fn pull(&self, folder: &str, scope: Scope<'_>) -> Result<Moved, RemoteError> {
        let _held = self.lock(folder).await?;
        let remote = self.listing(folder).await?;
        let mut manifest = self.read_manifest(folder);
        let mut moved = Moved::default();
        let wanted: Vec<(String, String, u64)> = remote
            .iter()
            .filter(|(rel, (etag, _))| {
                let seen = manifest.get(*rel).is_some_and(|e| &e.etag == etag);
                scope.covers(rel) && !(seen && self.local.join(folder).join(rel).is_file())
            })
            .map(|(rel, (etag, size))| (rel.clone(), etag.clone(), *size))
            .collect();
        // Owned futures: they run concurrently inside a task that must be Send.
        let mut downloads = futures_util::stream::iter(wanted)
            .map(|(rel, etag, size)| {
                let (this, key, path) =
                    (self.clone(), format!("{folder}/{rel}"), self.local.join(folder).join(&rel));
                async move {
                    let stamp = this.download(&key, &path).await?;
                    Ok::<_, RemoteError>((rel, etag, size, stamp))
                }
            })
            .buffer_unordered(FILES_IN_FLIGHT);
        while let Some(done) = downloads.next().await {
            let (rel, etag, size, stamp) = done?;
            moved.files += 1;
            moved.bytes += size;
            manifest.insert(rel, Entry { etag, size: stamp.0, mtime_ns: stamp.1 });
        }
        drop(downloads);
        let gone: Vec<String> =
            manifest.keys().filter(|rel| scope.covers(rel) && !remote.contains_key(*rel)).cloned().collect();
        for rel in gone {
            let path = self.local.join(folder).join(&rel);
            if let Some(entry) = manifest.remove(&rel)
                && stamp(&path).is_some_and(|s| s == (entry.size, entry.mtime_ns))
                && std::fs::remove_file(&path).is_ok()
            {
                moved.deleted += 1;
            }
        }
        self.write_manifest(folder, &manifest)?;
        Ok(moved)
    }

    /// Sends what changed in `folder` within `scope` to the bucket: files new or
    /// changed here are uploaded (in parts when large), files deleted here are
    /// deleted from the bucket.
    pub async fn push(&self, folder: &str, scope: Scope<'_>) -> Result<Moved, RemoteError> {
        let _held = self.lock(folder).await?;
        let mut manifest = self.read_manifest(folder);
        let dir = self.local.join(folder);
        let mut files = Vec::new();
        walk(&dir, "", &mut files).map_err(|source| RemoteError::Io { path: dir.clone(), source })?;
        let mut moved = Moved::default();
        let here: std::collections::BTreeSet<String> =
            files.into_iter().filter(|r| scope.covers(r)).collect();
        let changed: Vec<(String, (u64, u128))> = here
            .iter()
            .filter_map(|rel| Some((rel.clone(), stamp(&dir.join(rel))?)))
            .filter(|(rel, now)| manifest.get(rel).is_none_or(|e| (e.size, e.mtime_ns) != *now))
            .collect();
        let mut uploads = futures_util::stream::iter(changed)
            .map(|(rel, now)| {
                let (this, key, path) = (self.clone(), format!("{folder}/{rel}"), dir.join(&rel));
                async move {
                    let etag = this.upload(&path, &key).await?;
                    Ok::<_, RemoteError>((rel, now, etag))
                }
            })
            .buffer_unordered(FILES_IN_FLIGHT);
        while let Some(done) = uploads.next().await {
            let (rel, now, etag) = done?;
            moved.files += 1;
            moved.bytes += now.0;
            manifest.insert(rel, Entry { etag, size: now.0, mtime_ns: now.1 });
        }
        drop(uploads);
        let gone: Vec<String> =
            manifest.keys().filter(|rel| scope.covers(rel) && !here.contains(*rel)).cloned().collect();
        for rel in gone {
            match self.store.delete(&Key::from(format!("{folder}/{rel}"))).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err(e)),
            }
            manifest.remove(&rel);
            moved.deleted += 1;
        }
        self.write_manifest(folder, &manifest)?;
        Ok(moved)
    }

    /// Downloads one file of `folder` if the bucket has a newer one than this copy
    /// (or this copy is missing); returns whether the bucket has it at all.
    pub async fn pull_file(&self, folder: &str, rel: &str) -> Result<bool, RemoteError> {
        let _held = self.lock(folder).await?;
        let key = format!("{folder}/{rel}");
        let meta = match self.store.head(&Key::from(key.as_str())).await {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(self.err(e)),
        };
        let etag = meta.e_tag.unwrap_or_default();
        let mut manifest = self.read_manifest(folder);
        let path = self.local.join(folder).join(rel);
        if manifest.get(rel).is_some_and(|e| e.etag == etag) && path.is_file() {
            return Ok(true);
        }
        let (size, mtime_ns) = self.download(&key, &path).await?;
        manifest.insert(rel.to_owned(), Entry { etag, size, mtime_ns });
        self.write_manifest(folder, &manifest)?;
        Ok(true)
    }

    /// Uploads one file of `folder` if it changed here since last mirrored.
    pub async fn push_file(&self, folder: &str, rel: &str) -> Result<(), RemoteError> {
        let _held = self.lock(folder).await?;
        let path = self.local.join(folder).join(rel);
        let Some(now) = stamp(&path) else { return Ok(()) };
        let mut manifest = self.read_manifest(folder);
        if manifest.get(rel).is_some_and(|e| (e.size, e.mtime_ns) == now) {
            return Ok(());
        }
        let etag = self.upload(&path, &format!("{folder}/{rel}")).await?;
        manifest.insert(rel.to_owned(), Entry { etag, size: now.0, mtime_ns: now.1 });
        self.write_manifest(folder, &manifest)
    }

    /// Writes the object at `key` to `path` (all or nothing); returns the new
    /// file's size and mtime.
    async fn download(&self, key: &str, path: &Path) -> Result<(u64, u128), RemoteError> {
        let io = |source| RemoteError::Io { path: path.to_owned(), source };
        let got = self.store.get(&Key::from(key)).await.map_err(|e| self.err(e))?;
        // The copy is dated when the bucket got it, not when it arrived here, so
        // "is this newer than that" compares the same instants on every machine.
        let stored = u64::try_from(got.meta.last_modified.timestamp()).ok().map(|secs| {
            UNIX_EPOCH
                + Duration::from_secs(secs)
                + Duration::from_nanos(got.meta.last_modified.timestamp_subsec_nanos().into())
        });
        let mut staged = StagedFile::new(path, "").map_err(io)?;
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.err(e))?;
            staged.file.write_all(&chunk).map_err(io)?;
        }
        if let Some(stored) = stored {
            staged.file.as_file().set_modified(stored).map_err(io)?;
        }
        staged.publish().map_err(io)?;
        stamp(path).ok_or_else(|| io(std::io::Error::other("vanished after download")))
    }

    /// Uploads `path` to `key`, in parts above [`MULTIPART_ABOVE`]; returns the ETag.
    async fn upload(&self, path: &Path, key: &str) -> Result<String, RemoteError> {
        let io = |source| RemoteError::Io { path: path.to_owned(), source };
        let size = std::fs::metadata(path).map_err(io)?.len();
        let key = Key::from(key);
        let put = if size <= MULTIPART_ABOVE {
            let bytes = tokio::fs::read(path).await.map_err(io)?;
            self.store.put(&key, PutPayload::from(bytes)).await.map_err(|e| self.err(e))?
        } else {
            let upload = self.store.put_multipart(&key).await.map_err(|e| self.err(e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
            let mut file = tokio::fs::File::open(path).await.map_err(io)?;
            let mut buf = vec![0; PART];
            loop {
                let n = tokio::io::AsyncReadExt::read(&mut file, &mut buf).await.map_err(io)?;
                if n == 0 {
                    break;
                }
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(|e| self.err(e))?;
                writer.write(&buf[..n]);
            }
            writer.finish().await.map_err(|e| self.err(e))?
        };
        Ok(put.e_tag.unwrap_or_default())
    }
}

/// Held while a folder is mirrored.
#[derive(Debug)]
struct FolderLock {
    _file: std::fs::File,
    _local: tokio::sync::OwnedMutexGuard<()>,
}

/// A file's size and mtime in nanoseconds, or `None` if it is not a file.
fn stamp(path: &Path) -> Option<(u64, u128)> {
    let meta = std::fs::metadata(path).ok().filter(std::fs::Metadata::is_file)?;
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos();
    Some((meta.len(), mtime))
}

/// The files under `dir`, as `/`-joined paths relative to it; hidden names skipped.
fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if name.starts_with('.') {
            continue;
        }
        let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), &rel, out)?;
        } else if kind.is_file() {
            out.push(rel);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_choose_by_the_first_name() {
        assert!(Scope::Only("hls").covers("hls/v720/seg1.m4s"));
        assert!(!Scope::Only("hls").covers("captions/en.vtt"));
        assert!(Scope::Except("hls").covers("captions/en.vtt"));
        assert!(!Scope::Except("hls").covers("hls/master.m3u8"));
        assert!(Scope::All.covers("source.mp4"));
    }
}
