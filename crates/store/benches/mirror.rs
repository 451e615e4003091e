//! How fast media move through the bucket, against copying the same file on the
//! same disk in the same run: a 256 MiB source pushed (multipart) and pulled by a
//! second folder, then a package-like folder of 200 files of 256 KiB. Needs the
//! S3 server of `scripts/test-services.sh`. `cargo bench -p babelcast-store --bench mirror`.

use std::path::Path;
use std::time::Instant;

use babelcast_store::remote::{Remote, Scope};
use common::s3_server;

#[path = "../tests/common/mod.rs"]
mod common;

fn mib_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / (1 << 20) as f64 / secs
}

// Reproducible test data from a seed, not a secret: the one place fastrand may run.
#[allow(clippy::disallowed_methods)]
fn write(root: &Path, rel: &str, len: usize, seed: u64) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let mut rng = fastrand::Rng::with_seed(seed);
    let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
    std::fs::write(path, bytes).expect("write");
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (a, b) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    let (on_a, on_b) =
        (Remote::s3(&s3_server(), a.path()).expect("a"), Remote::s3(&s3_server(), b.path()).expect("b"));
    runtime.block_on(on_a.check()).expect("the S3 server answers (scripts/test-services.sh)");
    let folder = format!("videos/bench{}", std::process::id());
    let large = 256usize << 20;
    write(a.path(), &format!("{folder}/source.mp4"), large, 1);
    for i in 0..200 {
        write(a.path(), &format!("{folder}/hls/v720/seg-{i}.m4s"), 256 << 10, i + 2);
    }

    println!("{:<44} {:>9} {:>10}", "operation", "seconds", "MiB/s");
    let started = Instant::now();
    std::fs::copy(a.path().join(&folder).join("source.mp4"), a.path().join("copy.mp4")).expect("copy");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{:<44} {secs:>9.2} {:>10.0}",
        "reference: cp of the 256 MiB source",
        mib_per_s(large as u64, secs)
    );

    for (what, scope) in [
        ("256 MiB source (multipart)", Scope::Except("hls")),
        ("200 segments of 256 KiB", Scope::Only("hls")),
    ] {
        let started = Instant::now();
        let pushed = runtime.block_on(on_a.push(&folder, scope)).expect("push");
        let secs = started.elapsed().as_secs_f64();
        println!("{:<44} {secs:>9.2} {:>10.0}", format!("push {what}"), mib_per_s(pushed.bytes, secs));
        let started = Instant::now();
        let pulled = runtime.block_on(on_b.pull(&folder, scope)).expect("pull");
        let secs = started.elapsed().as_secs_f64();
        println!("{:<44} {secs:>9.2} {:>10.0}", format!("pull {what}"), mib_per_s(pulled.bytes, secs));
    }
    let started = Instant::now();
    let again = runtime.block_on(on_b.pull(&folder, Scope::All)).expect("pull");
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(again.files, 0);
    println!("{:<44} {secs:>9.3}", "pull again, nothing changed (201 files)");
    // Leave the bucket as it was.
    std::fs::remove_dir_all(a.path().join(&folder)).expect("rm");
    runtime.block_on(on_a.push(&folder, Scope::All)).expect("delete");
}
