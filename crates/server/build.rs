//! Embeds hls.js, which `scripts/setup.sh` installs from npm into `web/`, so the
//! binary serves its player page with nothing else on disk.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let hls = manifest.join("../../web/node_modules/hls.js/dist/hls.min.js");
    println!("cargo::rerun-if-changed={}", hls.display());
    if !hls.is_file() {
        panic!(
            "{} is missing: run scripts/setup.sh (it runs `npm ci` in web/ to install the pinned hls.js)",
            hls.display()
        );
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("hls.min.js");
    std::fs::copy(&hls, &out).expect("copy hls.min.js into OUT_DIR");
}
