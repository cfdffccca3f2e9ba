//! Rebuilds the crate when the console's build output changes. `rust-embed` embeds
//! `web-admin/dist` in release builds; a folder that appears after a first build without it
//! (the console was built later) must trigger a rebuild too, so until it exists its parent is
//! watched instead.

fn main() {
    let dist = std::path::Path::new("../../web-admin/dist");
    if dist.is_dir() {
        println!("cargo:rerun-if-changed=../../web-admin/dist");
    } else {
        println!("cargo:rerun-if-changed=../../web-admin");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
