//! The entry point of the cargo-fuzz target (`fuzz/`, feature `fuzzing`):
//! fuzzer bytes become malloc-family calls on up to 64 live blocks, each
//! filled with a byte that is checked before the block is freed or
//! resized, with the heap checker (`verify::check_all`) after every call.
//! A fault panics, and the fuzzer keeps the input that caused it.
//!
//! Each operation takes 4 bytes: what (malloc, calloc, free, realloc,
//! memalign, malloc_trim), which slot, a size class (bin borders, the tcache
//! limit, the mmap threshold) and an offset from it.

use crate::{api, report::verify};

const SIZES: [usize; 16] = [
    0,
    24,
    40,
    120,
    128,
    152,
    160,
    1000,
    1008,
    1024,
    1032,
    1040,
    4096,
    65536,
    131072,
    1 << 20,
];

fn size_of_op(b: u8, c: u8) -> usize {
    let base = SIZES[usize::from(b & 15)];
    let delta = usize::from(c) % 33;
    if b & 16 != 0 {
        base.saturating_sub(delta)
    } else {
        base + delta
    }
}

fn fill(p: *mut u8, n: usize, tag: u8) {
    // SAFETY: `p` is a live block with at least `n` usable bytes.
    unsafe { core::ptr::write_bytes(p, tag, n) }
}

fn intact(p: *mut u8, n: usize, tag: u8) -> bool {
    // SAFETY: as above.
    unsafe { core::slice::from_raw_parts(p, n) }
        .iter()
        .all(|&x| x == tag)
}

fn check(op: &str) {
    if let Err(f) = verify::check_all() {
        panic!("heap check failed after {op}: {} at {:#x}", f.what, f.addr);
    }
}

/// Runs the operations `data` encodes, then frees every block.
pub fn run(data: &[u8]) {
    let mut live: [(*mut u8, usize, u8); 64] = [(core::ptr::null_mut(), 0, 0); 64];
    for (k, w) in data.chunks_exact(4).enumerate() {
        let (op, slot, b, c) = (w[0] % 6, usize::from(w[1]) % 64, w[2], w[3]);
        let tag = k as u8 | 1;
        let n = size_of_op(b, c);
        let (p, len, t) = live[slot];
        if !p.is_null() && !intact(p, len, t) {
            panic!("block {p:p} ({len} bytes) lost its contents");
        }
        // SAFETY: every pointer passed is null or a live block of `live`,
        // given up (and forgotten) when freed.
        unsafe {
            match op {
                0 | 1 => {
                    api::free(p.cast());
                    let q = if op == 0 {
                        api::malloc(n)
                    } else {
                        api::calloc(1, n)
                    }
                    .cast::<u8>();
                    assert!(!q.is_null(), "malloc({n}) failed");
                    assert!(op == 0 || intact(q, n, 0), "calloc memory not zeroed");
                    fill(q, n, tag);
                    live[slot] = (q, n, tag);
                    check(if op == 0 { "malloc" } else { "calloc" });
                }
                2 => {
                    api::free(p.cast());
                    live[slot] = (core::ptr::null_mut(), 0, 0);
                    check("free");
                }
                3 => {
                    // realloc(NULL, n) is malloc, realloc(p, 0) is free.
                    let q = api::realloc(p.cast(), n).cast::<u8>();
                    if n == 0 && !p.is_null() {
                        assert!(q.is_null(), "realloc(p, 0) did not free");
                        live[slot] = (core::ptr::null_mut(), 0, 0);
                    } else {
                        assert!(!q.is_null(), "realloc({n}) failed");
                        assert!(intact(q, len.min(n), t), "realloc lost the contents");
                        fill(q, n, tag);
                        live[slot] = (q, n, tag);
                    }
                    check("realloc");
                }
                4 => {
                    api::free(p.cast());
                    let align = 16usize << (c % 12);
                    let q = api::memalign(align, n).cast::<u8>();
                    assert!(!q.is_null(), "memalign({align}, {n}) failed");
                    assert!((q as usize).is_multiple_of(align), "misaligned memalign");
                    fill(q, n, tag);
                    live[slot] = (q, n, tag);
                    check("memalign");
                }
                _ => {
                    api::malloc_trim(usize::from(c) * 1024);
                    check("malloc_trim");
                }
            }
        }
    }
    for &(p, len, t) in &live {
        if !p.is_null() {
            assert!(intact(p, len, t), "block {p:p} lost its contents");
            // SAFETY: a live block, given up.
            unsafe { api::free(p.cast()) };
        }
    }
    check("freeing every block");
}
