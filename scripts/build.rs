//! Cargo's build script (`build = "scripts/build.rs"` in Cargo.toml).
//!
//! Gives the library the DWARF debuggers read glibc's heap through: glibc
//! 2.36's malloc types and its objects' names (`src/report/glibc_types.c`
//! says why and how). The C file is compiled with `-g` to assembly; the
//! storage the compiler emits for each named object is deleted, so that the
//! DWARF's location of the name becomes a reference to the symbol of that
//! name defined elsewhere in the library; the result is assembled and linked
//! into the cdylib. It adds no code and no data, only debugging sections.
//! The C compiler is the one that links Rust's output (`$CC`, else `cc`).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, exit};

const SOURCE: &str = "src/report/glibc_types.c";

/// The objects the C file declares: each must lose its storage.
const NAMES: [&str; 6] = [
    "main_arena",
    "mp_",
    "global_max_fast",
    "__malloc_initialized",
    "tcache",
    "thread_arena",
];

fn fail(what: &str) -> ! {
    eprintln!("scripts/build.rs: {what}");
    exit(1);
}

fn run(cc: &str, args: &[&str], input: &str, output: &Path) {
    match Command::new(cc)
        .args(args)
        .arg(input)
        .arg("-o")
        .arg(output)
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!("{cc} failed on {input} ({s})")),
        Err(e) => fail(&format!("cannot run the C compiler {cc}: {e}")),
    }
}

/// Drops the storage of every name in NAMES from GNU assembly: `.local` and
/// `.comm` (a zeroed static), or `.type`, `.size`, its label and the
/// `.zero` after it (a thread-local). Fails unless each name lost one.
fn without_storage(asm: &str) -> String {
    let mut out = String::with_capacity(asm.len());
    let mut removed = [false; NAMES.len()];
    let mut after_label = false;
    for line in asm.lines() {
        let t = line.trim();
        if after_label && t.starts_with(".zero") {
            after_label = false;
            continue;
        }
        after_label = false;
        let mut drop = false;
        for (i, name) in NAMES.iter().enumerate() {
            let defines = t == format!(".local\t{name}")
                || t.starts_with(&format!(".comm\t{name},"))
                || t == format!(".type\t{name}, @object")
                || t.starts_with(&format!(".size\t{name},"));
            if t == format!("{name}:") {
                after_label = true;
                removed[i] = true;
                drop = true;
            } else if defines {
                if t.starts_with(".comm") {
                    removed[i] = true;
                }
                drop = true;
            }
        }
        if !drop {
            out.push_str(line);
            out.push('\n');
        }
    }
    for (i, name) in NAMES.iter().enumerate() {
        if !removed[i] {
            fail(&format!(
                "no storage for `{name}` found in the compiler's assembly"
            ));
        }
    }
    out
}

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=src/report/glibc_types.h");
    println!("cargo:rerun-if-changed=scripts/build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    commit_for_recordings();
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_else(|| fail("OUT_DIR is not set")));
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let compiled = out.join("glibc_types.s");
    // Keep the types nothing uses, and the statics (marked `used`).
    run(
        &cc,
        &["-g", "-O0", "-fno-eliminate-unused-debug-types", "-S"],
        SOURCE,
        &compiled,
    );
    let asm = fs::read_to_string(&compiled).unwrap_or_else(|e| fail(&format!("{e}")));
    let edited = out.join("glibc_types_refs.s");
    fs::write(&edited, without_storage(&asm)).unwrap_or_else(|e| fail(&format!("{e}")));
    let object = out.join("glibc_types.o");
    run(
        &cc,
        &["-c"],
        edited
            .to_str()
            .unwrap_or_else(|| fail("OUT_DIR is not UTF-8")),
        &object,
    );
    println!("cargo:rustc-link-arg-cdylib={}", object.display());
}

/// The commit the library is built from (`git rev-parse --short HEAD`), for
/// the header of a recording; empty outside a git checkout.
fn commit_for_recordings() {
    for watched in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if Path::new(watched).exists() {
            println!("cargo:rerun-if-changed={watched}");
        }
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=PTMALLOC_RS_COMMIT={commit}");
}
