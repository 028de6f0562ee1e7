#!/usr/bin/env bash
# A Rust program under glibc and under the preload: the library carries its
# own (hidden) unwinder personality stub, which must not replace the
# program's, so a panic caught with catch_unwind still unwinds; threads,
# collections and string formatting allocate through our malloc.
. "$(dirname "$0")/common.bash"

cat >prog.rs <<'RS'
use std::collections::{BTreeMap, HashMap};
use std::panic;

fn main() {
    // Panic messages name thread ids, which differ between runs.
    panic::set_hook(Box::new(|_| {}));
    let caught = panic::catch_unwind(|| {
        let v: Vec<u64> = (0..1000).collect();
        if v.len() == 1000 {
            panic!("deliberate panic");
        }
    });
    println!("panic caught: {}", caught.is_err());
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut m: HashMap<String, Vec<u64>> = HashMap::new();
                for i in 0..200_000u64 {
                    m.entry(format!("k{}", (i * 7919 + t) % 5000)).or_default().push(i);
                }
                let r = std::panic::catch_unwind(|| panic!("in thread {t}"));
                m.values().map(|v| v.len() as u64).sum::<u64>() + r.is_err() as u64
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let mut b = BTreeMap::new();
    for i in 0..100_000u64 {
        b.insert(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i.to_string());
    }
    println!("total {total}, btree {} {}", b.len(), b.values().map(|s| s.len()).sum::<usize>());
}
RS
rustc -O -o prog prog.rs 2>rustc.log || { cat rustc.log; exit 1; }
run_both --name "rust program: catch_unwind, threads, collections" ./prog
finish
