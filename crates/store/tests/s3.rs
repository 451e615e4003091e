//! The object-store mirror against a real S3 server: s3s-fs
//! (`tools/s3-test-server`), which `scripts/test-services.sh` builds and starts on 127.0.0.1:39000
//! with the bucket `babelcast-test`. Two data folders stand for two machines that
//! share only the bucket. Each test works under its own random folder.

use std::path::Path;
use std::time::Duration;

mod common;

use babelcast_store::remote::{MULTIPART_ABOVE, Remote, Scope};
use common::s3_server;

fn folder() -> String {
    format!("videos/{}", babelcast_core::secret::random_hex(16).expect("os random"))
}

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

#[tokio::test]
async fn a_folder_pushed_on_one_machine_is_pulled_whole_on_another_large_files_in_parts() {
    let (a, b) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    let (on_a, on_b) =
        (Remote::s3(&s3_server(), a.path()).expect("a"), Remote::s3(&s3_server(), b.path()).expect("b"));
    on_a.check().await.expect("the bucket answers");
    let video = folder();
    // Above the multipart threshold, and not a multiple of the part size.
    let large: Vec<u8> = (0..MULTIPART_ABOVE + 3_000_001).map(|i| (i * 7 % 251) as u8).collect();
    write(a.path(), &format!("{video}/source.mp4"), &large);
    write(a.path(), &format!("{video}/captions/en.vtt"), b"WEBVTT\n");
    write(a.path(), &format!("{video}/hls/master.m3u8"), b"#EXTM3U\n");
    write(a.path(), &format!("{video}/.partial-x-123"), b"staging is never mirrored");

    let pushed = on_a.push(&video, Scope::All).await.expect("push");
    assert_eq!(pushed.files, 3);
    assert_eq!(on_a.push(&video, Scope::All).await.expect("again").files, 0, "nothing changed");
    assert_eq!(
        on_a.list(&video).await.expect("list"),
        ["captions/en.vtt", "hls/master.m3u8", "source.mp4"],
        "the same layout as the local store"
    );

    let pulled = on_b.pull(&video, Scope::Except("hls")).await.expect("pull");
    assert_eq!(pulled.files, 2);
    assert_eq!(std::fs::read(b.path().join(&video).join("source.mp4")).expect("read"), large);
    assert!(!b.path().join(&video).join("hls").exists(), "out of scope");
    assert!(!b.path().join(&video).join(".partial-x-123").exists());
    assert_eq!(on_b.pull(&video, Scope::All).await.expect("pull").files, 1, "only hls was missing");
    assert_eq!(on_b.pull(&video, Scope::All).await.expect("pull").files, 0);
}

#[tokio::test]
async fn changes_and_deletions_travel_both_ways_and_unpushed_local_edits_are_kept() {
    let (a, b) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    let (on_a, on_b) =
        (Remote::s3(&s3_server(), a.path()).expect("a"), Remote::s3(&s3_server(), b.path()).expect("b"));
    let video = folder();
    write(a.path(), &format!("{video}/captions/en.vtt"), b"WEBVTT\n\nfirst");
    write(a.path(), &format!("{video}/hls/subs-en/0.vtt"), b"WEBVTT\n");
    write(a.path(), &format!("{video}/transcript.json"), b"{}");
    on_a.push(&video, Scope::All).await.expect("push");
    on_b.pull(&video, Scope::All).await.expect("pull");

    // B edits the captions and replaces a track; A pulls both changes.
    write(b.path(), &format!("{video}/captions/en.vtt"), b"WEBVTT\n\nedited on b");
    std::fs::remove_dir_all(b.path().join(&video).join("hls/subs-en")).expect("rm");
    write(b.path(), &format!("{video}/hls/subs-es/0.vtt"), b"WEBVTT\n");
    let pushed = on_b.push(&video, Scope::All).await.expect("push");
    assert_eq!((pushed.files, pushed.deleted), (2, 1));
    // Meanwhile A changed its transcript without pushing yet: the pull keeps it.
    write(a.path(), &format!("{video}/transcript.json"), b"{\"edited\":true}");
    let pulled = on_a.pull(&video, Scope::All).await.expect("pull");
    assert_eq!((pulled.files, pulled.deleted), (2, 1));
    let read = |rel: &str| std::fs::read_to_string(a.path().join(&video).join(rel)).ok();
    assert_eq!(read("captions/en.vtt").as_deref(), Some("WEBVTT\n\nedited on b"));
    assert_eq!(read("hls/subs-en/0.vtt"), None, "deleted on b");
    assert_eq!(read("hls/subs-es/0.vtt").as_deref(), Some("WEBVTT\n"));
    assert_eq!(read("transcript.json").as_deref(), Some("{\"edited\":true}"), "the local edit stays");
    on_a.push(&video, Scope::All).await.expect("push");
    assert!(on_b.pull_file(&video, "transcript.json").await.expect("pull one"));
    assert_eq!(
        std::fs::read_to_string(b.path().join(&video).join("transcript.json")).expect("read"),
        "{\"edited\":true}"
    );
    assert!(!on_b.pull_file(&video, "mp4/xx.mp4").await.expect("absent"));
}

#[tokio::test]
async fn presigned_urls_read_for_their_time_and_nothing_else() {
    let a = tempfile::tempdir().expect("tmp");
    let remote = Remote::s3(&s3_server(), a.path()).expect("remote");
    let video = folder();
    write(a.path(), &format!("{video}/hls/v360/seg-0.m4s"), b"segment bytes");
    remote.push(&video, Scope::All).await.expect("push");
    let url = remote
        .presigned_get(&format!("{video}/hls/v360/seg-0.m4s"), Duration::from_secs(60))
        .await
        .expect("sign");
    let got = reqwest::get(&url).await.expect("get");
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.expect("body").as_ref(), b"segment bytes");
    // The signature covers the key: another object with the same query is refused.
    let other = url.replace("seg-0.m4s", "seg-1.m4s");
    assert_eq!(reqwest::get(&other).await.expect("get").status(), 403);
    let unsigned = url.split('?').next().expect("path").to_owned();
    assert_eq!(reqwest::get(&unsigned).await.expect("get").status(), 403);
}

#[tokio::test]
async fn a_wrong_secret_or_bucket_is_reported_at_the_check_naming_the_store() {
    let a = tempfile::tempdir().expect("tmp");
    let mut config = s3_server();
    config.secret_access_key = babelcast_core::Secret::new("f".repeat(64));
    let err = Remote::s3(&config, a.path()).expect("remote").check().await.expect_err("wrong secret");
    assert!(err.to_string().contains("s3 bucket babelcast-test at http://127.0.0.1:39000"), "{err}");
    let mut config = s3_server();
    config.bucket = "no-such-bucket".into();
    let err = Remote::s3(&config, a.path()).expect("remote").check().await.expect_err("no bucket");
    assert!(err.to_string().contains("no-such-bucket"), "{err}");
}
