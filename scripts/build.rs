//! Cargo's build script (`build = "scripts/build.rs"` in Cargo.toml).
//!
//! Compiles `src/report/glibc_types.c` with `-g` and links the object into
//! the cdylib: it carries only debugging information (glibc 2.36's malloc
//! types and the names debuggers look for; see that file), no code and no
//! data. The C compiler is the one that links Rust's output (`$CC`, else
//! `cc`).

use std::env;
use std::path::PathBuf;
use std::process::{Command, exit};

fn main() {
    let source = "src/report/glibc_types.c";
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-changed=src/report/glibc_types.h");
    println!("cargo:rerun-if-changed=scripts/build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out.join("glibc_types.o");
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args([
            "-g",
            "-O0",
            // Keep the extern declarations and types nothing uses.
            "-fno-eliminate-unused-debug-symbols",
            "-fno-eliminate-unused-debug-types",
            "-c",
            source,
            "-o",
        ])
        .arg(&object)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            eprintln!("{cc} failed on {source} ({s})");
            exit(1);
        }
        Err(e) => {
            eprintln!("cannot run the C compiler {cc}: {e}");
            exit(1);
        }
    }
    println!("cargo:rustc-link-arg-cdylib={}", object.display());
}
