//! Embeds the library path of the project-local libtorch into every binary, so that
//! `target/release/hssl` runs without the user setting `LD_LIBRARY_PATH`.

fn main() {
    println!("cargo:rerun-if-env-changed=HSSL_DEPS_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    let Ok(deps) = std::env::var("HSSL_DEPS_DIR") else {
        return;
    };
    let deps = std::path::Path::new(&deps);
    let deps = deps.canonicalize().unwrap_or_else(|_| deps.to_path_buf());
    for sub in ["torch/lib", "nvidia/cu13/lib"] {
        let dir = deps.join(sub);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
    // Relative entries keep a moved checkout working: the binary sits in target/<profile>/
    // and test binaries one level deeper in target/<profile>/deps/.
    for up in ["../..", "../../.."] {
        for sub in ["torch/lib", "nvidia/cu13/lib"] {
            println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/{up}/.deps/python/{sub}");
        }
    }
}
