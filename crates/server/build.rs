//! Embeds hls.js and dash.js (its media player build), which `scripts/setup.sh`
//! installs from npm into `web/`, so the binary serves its player page with nothing
//! else on disk.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    for (library, name) in [
        ("hls.js/dist/hls.min.js", "hls.min.js"),
        ("dashjs/dist/modern/umd/dash.mediaplayer.min.js", "dash.mediaplayer.min.js"),
    ] {
        let file = manifest.join("../../web/node_modules").join(library);
        println!("cargo::rerun-if-changed={}", file.display());
        if !file.is_file() {
            panic!(
                "{} is missing: run scripts/setup.sh (it runs `npm ci` in web/ to install the pinned player libraries)",
                file.display()
            );
        }
        std::fs::copy(&file, out.join(name)).unwrap_or_else(|e| panic!("copy {name} into OUT_DIR: {e}"));
    }
}
