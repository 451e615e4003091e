//! Where a video's files live, and how they are written.
//!
//! Paths are deterministic (`videos/{id}/captions/{lang}.vtt`, ...), so every stage
//! knows where its inputs are without a lookup, and they are built only from typed
//! parts ([`VideoId`], [`Lang`]) that cannot hold `/` or `..`: no user-supplied name
//! ever becomes a path. Outputs are written to a temporary name and renamed into
//! place ([`write_atomic`]), so a crash never leaves half a file a later stage trusts.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use babelcast_core::{Lang, VideoId};

pub mod remote;

/// The layout of a data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

/// A subtitle file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptionFormat {
    /// WebVTT (`.vtt`).
    WebVtt,
    /// SubRip (`.srt`).
    Srt,
}

impl CaptionFormat {
    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            CaptionFormat::WebVtt => "vtt",
            CaptionFormat::Srt => "srt",
        }
    }
}

impl Layout {
    /// The layout of the data directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `videos/{id}/`: everything babelcast holds for one video.
    pub fn video_dir(&self, id: &VideoId) -> PathBuf {
        self.root.join("videos").join(id.as_str())
    }

    /// `videos/{id}/source.{ext}`: the upload, untouched. The extension is kept only
    /// if it is short and alphanumeric; otherwise `bin`.
    pub fn source(&self, id: &VideoId, extension: &str) -> PathBuf {
        let ext =
            if (1..=5).contains(&extension.len()) && extension.bytes().all(|b| b.is_ascii_alphanumeric()) {
                extension.to_ascii_lowercase()
            } else {
                "bin".to_owned()
            };
        self.video_dir(id).join(format!("source.{ext}"))
    }

    /// `videos/{id}/captions/{lang}.{vtt|srt}`.
    pub fn captions(&self, id: &VideoId, lang: Lang, format: CaptionFormat) -> PathBuf {
        self.video_dir(id).join("captions").join(format!("{lang}.{}", format.extension()))
    }

    /// `videos/{id}/transcript.json`.
    pub fn transcript(&self, id: &VideoId) -> PathBuf {
        self.video_dir(id).join("transcript.json")
    }

    /// `videos/{id}/translations/{lang}.json`: one language's cues as translated
    /// (or as a reviewer edited them), with the words the engine left untranslated.
    pub fn translation(&self, id: &VideoId, lang: Lang) -> PathBuf {
        self.video_dir(id).join("translations").join(format!("{lang}.json"))
    }

    /// `videos/{id}/dub/{lang}.m4a`.
    pub fn dub(&self, id: &VideoId, lang: Lang) -> PathBuf {
        self.video_dir(id).join("dub").join(format!("{lang}.m4a"))
    }

    /// `videos/{id}/hls/`: the streaming package.
    pub fn hls_dir(&self, id: &VideoId) -> PathBuf {
        self.video_dir(id).join("hls")
    }

    /// `videos/{id}/hls/master.m3u8`.
    pub fn master_playlist(&self, id: &VideoId) -> PathBuf {
        self.hls_dir(id).join("master.m3u8")
    }

    /// `videos/{id}/mp4/{lang}.mp4`.
    pub fn mp4(&self, id: &VideoId, lang: Lang) -> PathBuf {
        self.video_dir(id).join("mp4").join(format!("{lang}.mp4"))
    }
}

/// Writes `bytes` to `path` all or nothing: into a temporary file in the same
/// folder, flushed to disk, then renamed over `path`. Creates the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_mode(path, bytes, 0o644)
}

/// [`write_atomic`] with the file's permission bits, e.g. `0o600` for a secret,
/// which then is never readable by others, not even for a moment.
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut staged = StagedFile::new(path, "")?;
    staged.file.write_all(bytes)?;
    staged.publish_mode(mode)
}

/// The staging name prefix for `target`: `.partial-{name}-`, so the leftovers of
/// an interrupted write of the same target can be told from other writes.
fn partial_prefix(target: &Path) -> String {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!(".partial-{name}-")
}

/// Removes what an earlier, interrupted write of the same target left in `dir`.
/// Safe because one target has one writer at a time (the stage's lease, or the
/// package lock); it is what cleans up after a worker killed mid-write, on any
/// machine sharing the folder, without touching other writers' staging.
fn remove_leftovers(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(prefix) {
            continue;
        }
        let path = entry.path();
        let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if removed.is_ok() {
            tracing::info!(path = %path.display(), "removed a staging leftover of an interrupted write");
        }
    }
}

/// A file that appears at `target` only once complete: written (by us or by a
/// program given [`StagedFile::path`]) as a hidden `.partial-*` file beside the
/// target, then flushed and renamed over it by [`StagedFile::publish`]. Dropped
/// unpublished, it is removed.
#[derive(Debug)]
pub struct StagedFile {
    file: tempfile::NamedTempFile,
    target: PathBuf,
}

impl StagedFile {
    /// Starts a file that will replace `target`, named with `suffix` (e.g. `.mp4`,
    /// for programs that pick a format by name). Creates `target`'s folder.
    pub fn new(target: &Path, suffix: &str) -> io::Result<StagedFile> {
        let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let prefix = partial_prefix(target);
        remove_leftovers(dir, &prefix);
        let file = tempfile::Builder::new().prefix(&prefix).suffix(suffix).tempfile_in(dir)?;
        Ok(StagedFile { file, target: target.to_owned() })
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Flushes the file to disk and renames it over the target, readable by all
    /// (temporary files are private, 0600; outputs are served and read by others).
    pub fn publish(self) -> io::Result<()> {
        self.publish_mode(0o644)
    }

    fn publish_mode(self, mode: u32) -> io::Result<()> {
        let StagedFile { file, target } = self;
        file.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.as_file().sync_all()?;
        file.persist(&target).map_err(|e| e.error)?;
        Ok(())
    }
}

/// A folder that becomes visible at `target` only once it is complete: files are
/// written into it (a hidden `.partial-*` folder beside `target`), then
/// [`StagedDir::publish`] swaps it into place. Dropped unpublished, it is removed, so
/// a failed or killed run never leaves a half-written folder that looks finished.
#[derive(Debug)]
pub struct StagedDir {
    staging: tempfile::TempDir,
    target: PathBuf,
}

impl StagedDir {
    /// Starts a folder that will replace `target`. Creates `target`'s parent.
    pub fn new(target: &Path) -> io::Result<StagedDir> {
        let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)?;
        let prefix = partial_prefix(target);
        remove_leftovers(parent, &prefix);
        let staging = tempfile::Builder::new().prefix(&prefix).tempdir_in(parent)?;
        // Temporary folders are private (0700); outputs are served and read by others.
        std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o755))?;
        Ok(StagedDir { staging, target: target.to_owned() })
    }

    /// Where to write the files.
    pub fn path(&self) -> &Path {
        self.staging.path()
    }

    /// Puts the folder at its target, replacing what was there. The swap is two
    /// renames (the old folder aside, the new one in), so a reader sees either the
    /// old folder or the new one, never a mix; the old one is then deleted.
    pub fn publish(self) -> io::Result<PathBuf> {
        let StagedDir { staging, target } = self;
        let staged = staging.keep();
        let parent = staged.parent().unwrap_or(Path::new(".")).to_owned();
        let aside = if target.exists() {
            let aside = tempfile::Builder::new().prefix(".replaced-").tempdir_in(&parent)?.keep();
            std::fs::remove_dir(&aside)?;
            std::fs::rename(&target, &aside)?;
            Some(aside)
        } else {
            None
        };
        std::fs::rename(&staged, &target)?;
        if let Some(aside) = aside {
            std::fs::remove_dir_all(aside)?;
        }
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> VideoId {
        "v1".parse().expect("valid id")
    }

    #[test]
    fn paths_follow_the_documented_layout() {
        let l = Layout::new("/data");
        let es: Lang = "es".parse().expect("es");
        assert_eq!(
            l.captions(&id(), es, CaptionFormat::WebVtt),
            Path::new("/data/videos/v1/captions/es.vtt")
        );
        assert_eq!(l.dub(&id(), es), Path::new("/data/videos/v1/dub/es.m4a"));
        assert_eq!(l.master_playlist(&id()), Path::new("/data/videos/v1/hls/master.m3u8"));
        assert_eq!(l.mp4(&id(), es), Path::new("/data/videos/v1/mp4/es.mp4"));
        assert_eq!(l.transcript(&id()), Path::new("/data/videos/v1/transcript.json"));
    }

    #[test]
    fn an_uploaded_extension_cannot_steer_the_path() {
        let l = Layout::new("/data");
        assert_eq!(l.source(&id(), "MP4"), Path::new("/data/videos/v1/source.mp4"));
        for evil in ["../../x", "mp4/../../etc", "", "toolongext", "m p4"] {
            assert_eq!(l.source(&id(), evil), Path::new("/data/videos/v1/source.bin"), "{evil:?}");
        }
    }

    #[test]
    fn atomic_write_replaces_whole_files_and_leaves_no_temporaries() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("a/b/out.txt");
        write_atomic(&path, b"first").expect("write");
        write_atomic(&path, b"second").expect("overwrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"second");
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.txt")]);
    }

    #[test]
    fn a_staged_folder_appears_only_when_published_and_replaces_the_old_one() {
        let root = tempfile::tempdir().expect("tempdir");
        let target = root.path().join("hls");
        let staged = StagedDir::new(&target).expect("stage");
        std::fs::write(staged.path().join("a"), "1").expect("write");
        assert!(!target.exists(), "nothing visible before publishing");
        staged.publish().expect("publish");
        assert_eq!(std::fs::read_to_string(target.join("a")).expect("read"), "1");

        let staged = StagedDir::new(&target).expect("stage");
        std::fs::write(staged.path().join("b"), "2").expect("write");
        staged.publish().expect("publish");
        assert!(!target.join("a").exists(), "the old folder is gone");
        assert!(target.join("b").exists());

        drop(StagedDir::new(&target).expect("stage"));
        let left: Vec<_> = std::fs::read_dir(root.path()).expect("list").collect();
        assert_eq!(left.len(), 1, "an unpublished folder is removed; nothing left aside");
    }

    #[test]
    fn secrets_are_written_private() {
        let root = tempfile::tempdir().expect("tempdir");
        let secret = root.path().join("token");
        write_atomic_mode(&secret, b"s3cret", 0o600).expect("write");
        let mode = std::fs::metadata(&secret).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        write_atomic(&root.path().join("out"), b"x").expect("write");
        let mode = std::fs::metadata(root.path().join("out")).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }
}
