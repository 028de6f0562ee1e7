//! The allocator's parameters: glibc's `struct malloc_par` (`mp_`), with the
//! same fields in the same order so debuggers that know glibc can read it,
//! plus the two globals glibc keeps beside it (`global_max_fast`, the
//! perturb byte).
//!
//! Every field is an atomic: they are read on the allocation path without a
//! lock, and the statistics (`n_mmaps`, `mmapped_mem`) change outside arena
//! locks because mmap'd chunks belong to no arena.
//!
//! | field            | default  | meaning                                        |
//! |------------------|----------|------------------------------------------------|
//! | trim_threshold   | 128 KiB  | shrink the heap when top exceeds this          |
//! | top_pad          | 128 KiB  | extra asked of the kernel on each growth      |
//! | mmap_threshold   | 128 KiB  | requests this big get their own mapping        |
//! | arena_test       | 8        | arenas made before the limit is computed       |
//! | arena_max        | 0 (auto) | arena limit; 0 means 8 × cores                 |
//! | n_mmaps_max      | 65536    | most mmap'd chunks at once                     |
//! | no_dyn_threshold | 0        | 1 once the user fixed a threshold              |
//! | global_max_fast  | 128      | largest chunk size kept in fastbins           |
//! | tcache_bins      | 64       | tcache bins in use (chunk sizes 32..=1040)     |
//! | tcache_count     | 7        | chunks cached per tcache bin                   |

use crate::os::record;
use core::sync::atomic::{AtomicI32, AtomicU8, AtomicUsize, Ordering::Relaxed};

pub const DEFAULT_TRIM_THRESHOLD: usize = 128 * 1024;
pub const DEFAULT_TOP_PAD: usize = 128 * 1024;
pub const DEFAULT_MMAP_THRESHOLD: usize = 128 * 1024;
/// The dynamic mmap threshold never rises above this (64-bit).
pub const DEFAULT_MMAP_THRESHOLD_MAX: usize = 4 * 1024 * 1024 * core::mem::size_of::<usize>();
pub const DEFAULT_MMAP_MAX: i32 = 65536;
pub const ARENA_TEST: usize = 8;

#[repr(C)]
pub struct Params {
    pub trim_threshold: AtomicUsize,
    pub top_pad: AtomicUsize,
    pub mmap_threshold: AtomicUsize,
    pub arena_test: AtomicUsize,
    pub arena_max: AtomicUsize,
    pub thp_pagesize: AtomicUsize,
    pub hp_pagesize: AtomicUsize,
    pub hp_flags: AtomicI32,
    pub n_mmaps: AtomicI32,
    pub n_mmaps_max: AtomicI32,
    pub max_n_mmaps: AtomicI32,
    pub no_dyn_threshold: AtomicI32,
    pub mmapped_mem: AtomicUsize,
    pub max_mmapped_mem: AtomicUsize,
    /// The first address the main arena got from sbrk.
    pub sbrk_base: AtomicUsize,
    pub tcache_bins: AtomicUsize,
    pub tcache_max_bytes: AtomicUsize,
    pub tcache_count: AtomicUsize,
    pub tcache_unsorted_limit: AtomicUsize,
}

/// Exported as `mp_`, glibc's name for it, for debuggers' heap tools.
#[cfg_attr(not(test), unsafe(export_name = "mp_"))]
pub static MP: Params = Params {
    trim_threshold: AtomicUsize::new(DEFAULT_TRIM_THRESHOLD),
    top_pad: AtomicUsize::new(DEFAULT_TOP_PAD),
    mmap_threshold: AtomicUsize::new(DEFAULT_MMAP_THRESHOLD),
    arena_test: AtomicUsize::new(ARENA_TEST),
    arena_max: AtomicUsize::new(0),
    thp_pagesize: AtomicUsize::new(0),
    hp_pagesize: AtomicUsize::new(0),
    hp_flags: AtomicI32::new(0),
    n_mmaps: AtomicI32::new(0),
    n_mmaps_max: AtomicI32::new(DEFAULT_MMAP_MAX),
    max_n_mmaps: AtomicI32::new(0),
    no_dyn_threshold: AtomicI32::new(0),
    mmapped_mem: AtomicUsize::new(0),
    max_mmapped_mem: AtomicUsize::new(0),
    sbrk_base: AtomicUsize::new(0),
    tcache_bins: AtomicUsize::new(crate::chunk::bins::TCACHE_MAX_BINS),
    tcache_max_bytes: AtomicUsize::new(crate::chunk::bins::TCACHE_MAX_BYTES),
    tcache_count: AtomicUsize::new(crate::chunk::bins::TCACHE_FILL_COUNT),
    tcache_unsorted_limit: AtomicUsize::new(0),
};

const _: () = assert!(core::mem::size_of::<Params>() == 0x88);

/// Largest chunk size that goes to a fastbin (M_MXFAST rounded as glibc does).
pub static GLOBAL_MAX_FAST: AtomicUsize = AtomicUsize::new(crate::chunk::bins::DEFAULT_MXFAST);
/// M_PERTURB: when non-zero, new memory is filled with `!byte` and freed
/// memory with `byte`.
pub static PERTURB_BYTE: AtomicU8 = AtomicU8::new(0);
/// Set from PTMALLOC_RS_CHECK_HEAP: every call of the malloc family ends
/// with a check of every arena (`verify::check_all`), aborting on a fault.
pub static CHECK_HEAP: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

#[inline]
pub fn max_fast() -> usize {
    GLOBAL_MAX_FAST.load(Relaxed)
}

#[inline]
pub fn mmap_threshold() -> usize {
    MP.mmap_threshold.load(Relaxed)
}

/// Adds `size` to the mmap'd-memory statistics.
pub fn note_mmap(size: usize) {
    let n = MP.n_mmaps.fetch_add(1, Relaxed) + 1;
    MP.max_n_mmaps.fetch_max(n, Relaxed);
    let total = MP.mmapped_mem.fetch_add(size, Relaxed) + size;
    MP.max_mmapped_mem.fetch_max(total, Relaxed);
}

/// Removes `size` from the mmap'd-memory statistics.
pub fn note_munmap(size: usize) {
    MP.n_mmaps.fetch_sub(1, Relaxed);
    MP.mmapped_mem.fetch_sub(size, Relaxed);
}

/// Resizes an mmap'd chunk in the statistics.
pub fn note_mremap(old: usize, new: usize) {
    let total = MP.mmapped_mem.fetch_add(new.wrapping_sub(old), Relaxed);
    MP.max_mmapped_mem
        .fetch_max(total.wrapping_add(new.wrapping_sub(old)), Relaxed);
}

// ---------------------------------------------------------------------------
// Setting parameters: mallopt and the environment share these setters, which
// apply glibc 2.36's range checks. Each returns whether the value was taken.
// ---------------------------------------------------------------------------

/// Largest tcache_count accepted.
const MAX_TCACHE_COUNT: usize = u16::MAX as usize;

pub fn set_mxfast(value: usize) -> bool {
    if value > crate::chunk::bins::MAX_FAST_SIZE {
        return false;
    }
    let chunk = if value == 0 {
        crate::chunk::MINSIZE / 2
    } else {
        (value + crate::chunk::SIZE_SZ) & !crate::chunk::ALIGN_MASK
    };
    GLOBAL_MAX_FAST.store(chunk, Relaxed);
    true
}

pub fn set_trim_threshold(value: usize) -> bool {
    MP.trim_threshold.store(value, Relaxed);
    MP.no_dyn_threshold.store(1, Relaxed);
    true
}

pub fn set_top_pad(value: usize) -> bool {
    MP.top_pad.store(value, Relaxed);
    MP.no_dyn_threshold.store(1, Relaxed);
    true
}

/// Any value is taken (glibc 2.36 checks no upper bound here).
pub fn set_mmap_threshold(value: usize) -> bool {
    MP.mmap_threshold.store(value, Relaxed);
    MP.no_dyn_threshold.store(1, Relaxed);
    true
}

pub fn set_mmap_max(value: i32) -> bool {
    MP.n_mmaps_max.store(value, Relaxed);
    MP.no_dyn_threshold.store(1, Relaxed);
    true
}

pub fn set_perturb(value: i32) -> bool {
    PERTURB_BYTE.store(value as u8, Relaxed);
    true
}

pub fn set_arena_test(value: usize) -> bool {
    MP.arena_test.store(value, Relaxed);
    true
}

pub fn set_arena_max(value: usize) -> bool {
    MP.arena_max.store(value, Relaxed);
    true
}

pub fn set_tcache_max(value: usize) -> bool {
    if value > crate::chunk::bins::TCACHE_MAX_BYTES {
        return false;
    }
    MP.tcache_max_bytes.store(value, Relaxed);
    let bins = crate::chunk::bins::csize2tidx(crate::chunk::request2size(value)) + 1;
    MP.tcache_bins.store(bins, Relaxed);
    true
}

pub fn set_tcache_count(value: usize) -> bool {
    if value > MAX_TCACHE_COUNT {
        return false;
    }
    MP.tcache_count.store(value, Relaxed);
    true
}

pub fn set_tcache_unsorted_limit(value: usize) -> bool {
    MP.tcache_unsorted_limit.store(value, Relaxed);
    true
}

pub const M_MXFAST: i32 = 1;
pub const M_TRIM_THRESHOLD: i32 = -1;
pub const M_TOP_PAD: i32 = -2;
pub const M_MMAP_THRESHOLD: i32 = -3;
pub const M_MMAP_MAX: i32 = -4;
pub const M_CHECK_ACTION: i32 = -5;
pub const M_PERTURB: i32 = -6;
pub const M_ARENA_TEST: i32 = -7;
pub const M_ARENA_MAX: i32 = -8;

/// mallopt's parameter switch (the caller has consolidated the main arena,
/// as a smaller max_fast must not strand chunks in fastbins). Negative
/// values reach the size setters as huge sizes, which their range checks
/// refuse, as in glibc; unknown parameters are accepted and ignored.
pub fn mallopt(param: i32, value: i32) -> bool {
    let size = value as isize as usize;
    match param {
        M_MXFAST => set_mxfast(size),
        M_TRIM_THRESHOLD => set_trim_threshold(size),
        M_TOP_PAD => set_top_pad(size),
        M_MMAP_THRESHOLD => set_mmap_threshold(size),
        M_MMAP_MAX => set_mmap_max(value),
        M_PERTURB => set_perturb(value),
        M_ARENA_TEST if value > 0 => set_arena_test(size),
        M_ARENA_MAX if value > 0 => set_arena_max(size),
        M_CHECK_ACTION => {
            crate::os::printerr::set_check_action(value as u32);
            true
        }
        _ => true, // unknown parameters are ignored
    }
}

// ---------------------------------------------------------------------------
// The environment
// ---------------------------------------------------------------------------

/// How a tunable's value is range-checked before its setter sees it.
#[derive(Clone, Copy)]
enum Range {
    /// size_t from `min` up.
    Size(usize),
    /// int32 within `min..=max`.
    Int(i64, i64),
}

/// One tunable: its GLIBC_TUNABLES name, its MALLOC_* alias, its range and
/// its setter.
struct Tunable {
    name: &'static [u8],
    alias: &'static [u8],
    range: Range,
    set: fn(u64),
}

fn as_size(v: u64) -> usize {
    v as usize
}

/// glibc 2.36's malloc tunables (hugetlb is accepted and ignored; check sets
/// the check action, see `check`).
static TUNABLES: [Tunable; 13] = [
    Tunable {
        name: b"arena_max",
        alias: b"MALLOC_ARENA_MAX",
        range: Range::Size(1),
        set: |v| {
            set_arena_max(as_size(v));
        },
    },
    Tunable {
        name: b"arena_test",
        alias: b"MALLOC_ARENA_TEST",
        range: Range::Size(1),
        set: |v| {
            set_arena_test(as_size(v));
        },
    },
    Tunable {
        name: b"mmap_max",
        alias: b"MALLOC_MMAP_MAX_",
        range: Range::Int(i32::MIN as i64, i32::MAX as i64),
        set: |v| {
            set_mmap_max(v as i32);
        },
    },
    Tunable {
        name: b"mmap_threshold",
        alias: b"MALLOC_MMAP_THRESHOLD_",
        range: Range::Size(0),
        set: |v| {
            set_mmap_threshold(as_size(v));
        },
    },
    Tunable {
        name: b"mxfast",
        alias: b"",
        range: Range::Size(0),
        set: |v| {
            set_mxfast(as_size(v));
        },
    },
    Tunable {
        name: b"perturb",
        alias: b"MALLOC_PERTURB_",
        range: Range::Int(0, 0xff),
        set: |v| {
            set_perturb(v as i32);
        },
    },
    Tunable {
        name: b"tcache_count",
        alias: b"",
        range: Range::Size(0),
        set: |v| {
            set_tcache_count(as_size(v));
        },
    },
    Tunable {
        name: b"tcache_max",
        alias: b"",
        range: Range::Size(0),
        set: |v| {
            set_tcache_max(as_size(v));
        },
    },
    Tunable {
        name: b"tcache_unsorted_limit",
        alias: b"",
        range: Range::Size(0),
        set: |v| {
            set_tcache_unsorted_limit(as_size(v));
        },
    },
    Tunable {
        name: b"top_pad",
        alias: b"MALLOC_TOP_PAD_",
        range: Range::Size(0),
        set: |v| {
            set_top_pad(as_size(v));
        },
    },
    Tunable {
        name: b"trim_threshold",
        alias: b"MALLOC_TRIM_THRESHOLD_",
        range: Range::Size(0),
        set: |v| {
            set_trim_threshold(as_size(v));
        },
    },
    Tunable {
        name: b"hugetlb",
        alias: b"",
        range: Range::Int(0, 2),
        set: |_| {},
    },
    Tunable {
        name: b"check",
        alias: b"MALLOC_CHECK_",
        range: Range::Int(0, 3),
        set: |v| crate::os::printerr::set_check_action(v as u32),
    },
];

/// Parses a number as the dynamic loader does for tunables: optional
/// blanks and sign, then decimal, 0x hex or 0 octal digits, stopping at the
/// first other character; an overflow gives u64::MAX.
fn parse_number(s: &[u8]) -> u64 {
    let mut i = 0;
    while i < s.len() && (s[i] == b' ' || s[i] == b'\t') {
        i += 1;
    }
    let mut negative = false;
    if i < s.len() && (s[i] == b'-' || s[i] == b'+') {
        negative = s[i] == b'-';
        i += 1;
    }
    if i >= s.len() || !s[i].is_ascii_digit() {
        return 0;
    }
    let mut base = 10u64;
    if s[i] == b'0' {
        if i + 1 < s.len() && (s[i + 1] == b'x' || s[i + 1] == b'X') {
            base = 16;
            i += 2;
        } else {
            base = 8;
        }
    }
    let mut n: u64 = 0;
    while i < s.len() {
        let d = match (s[i] as char).to_digit(base as u32) {
            Some(d) => d as u64,
            None => break,
        };
        if n >= (u64::MAX - d) / base {
            return u64::MAX;
        }
        n = n * base + d;
        i += 1;
    }
    if negative { n.wrapping_neg() } else { n }
}

/// Applies `value` to a tunable if it is within the tunable's range.
fn apply(t: &Tunable, value: &[u8]) {
    let v = parse_number(value);
    let ok = match t.range {
        Range::Size(min) => v >= min as u64,
        Range::Int(min, max) => (min..=max).contains(&(v as i64)),
    };
    if ok {
        (t.set)(v);
    }
}

/// The bit of `apply_glibc_tunables`'s result for `ptmalloc_rs.profile`.
const PROFILE_NAMED: u32 = 1 << 31;

/// Applies `glibc.malloc.NAME=VALUE:...` entries and our
/// `ptmalloc_rs.profile`; other names are ignored. Returns a bit per
/// TUNABLES entry that was named (and `PROFILE_NAMED`).
fn apply_glibc_tunables(list: &[u8]) -> u32 {
    let mut named = 0u32;
    for entry in list.split(|&c| c == b':') {
        let Some(eq) = entry.iter().position(|&c| c == b'=') else {
            continue;
        };
        let (name, value) = (&entry[..eq], &entry[eq + 1..]);
        if name == b"ptmalloc_rs.profile" {
            select_profile("GLIBC_TUNABLES=ptmalloc_rs.profile", value);
            named |= PROFILE_NAMED;
            continue;
        }
        let Some(short) = name.strip_prefix(b"glibc.malloc.") else {
            continue;
        };
        for (i, t) in TUNABLES.iter().enumerate() {
            if t.name == short {
                apply(t, value);
                named |= 1 << i;
            }
        }
    }
    named
}

unsafe extern "C" {
    static environ: *const *const core::ffi::c_char;
}

/// The value of environment variable `name`, read without allocating
/// (None before libc has set the environment up, or when unset).
pub fn env_value(name: &[u8]) -> Option<&'static [u8]> {
    // SAFETY: as in `read_environment_now`.
    let env = unsafe { core::ptr::read_volatile(&raw const environ) };
    if env.is_null() {
        return None;
    }
    let mut i = 0;
    loop {
        // SAFETY: a null-terminated array of NUL-terminated strings.
        let entry = unsafe { *env.add(i) };
        if entry.is_null() {
            return None;
        }
        i += 1;
        // SAFETY: as above.
        let entry = unsafe { core::ffi::CStr::from_ptr(entry) }.to_bytes();
        if entry.len() > name.len() && entry.starts_with(name) && entry[name.len()] == b'=' {
            return Some(&entry[name.len() + 1..]);
        }
    }
}

/// Selects the profile `value` names (empty: the default, as if unset); a
/// name that is none is said once on stderr (`setting` says where it came
/// from), and the default stays.
fn select_profile(setting: &str, value: &[u8]) {
    if !value.is_empty() && !super::profile::select(value) {
        crate::os::text::warn(format_args!(
            "{setting}={}: not a profile (glibc, hardened or fast); the glibc profile is used",
            Shown(value)
        ));
    }
}

/// One of our on/off settings (`PTMALLOC_RS_TRACE`, ...): on for 1, off for
/// 0, empty or unset. Anything else is said once on stderr and taken as on
/// (as any value but 0 always was).
pub fn switch(name: &str) -> bool {
    match env_value(name.as_bytes()) {
        None | Some(b"" | b"0") => false,
        Some(b"1") => true,
        Some(other) => {
            crate::os::text::warn(format_args!(
                "{name}={}: expected 0 or 1; taken as 1",
                Shown(other)
            ));
            true
        }
    }
}

/// A setting's value as text for a message (bytes that are not UTF-8 as
/// `?`, at most 40 of them).
pub struct Shown<'a>(pub &'a [u8]);

impl core::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for &c in self.0.iter().take(40) {
            let c = if c.is_ascii_graphic() || c == b' ' {
                c as char
            } else {
                '?'
            };
            core::fmt::Write::write_char(f, c)?;
        }
        if self.0.len() > 40 {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// A plain decimal number (no sign, no other characters).
pub fn parse_decimal(s: &[u8]) -> Option<i32> {
    if s.is_empty() || s.len() > 9 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |n, &d| n * 10 + i32::from(d - b'0')))
}

/// 0: not read yet; 1: read.
static ENV_READ: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

/// Reads the MALLOC_* variables and GLIBC_TUNABLES once, without
/// allocating. Before libc has set `environ` up (the dynamic loader calls
/// malloc that early) nothing is read and the next call tries again.
#[inline]
pub fn read_environment() {
    if ENV_READ.load(Relaxed) == 0 {
        read_environment_now();
    }
}

#[cold]
fn read_environment_now() {
    // SAFETY: `environ` is libc's; it is null or a null-terminated array of
    // NUL-terminated strings, not changed while the process starts up.
    let env = unsafe { core::ptr::read_volatile(&raw const environ) };
    if env.is_null() {
        return;
    }
    if ENV_READ.swap(1, Relaxed) != 0 {
        return;
    }
    if switch("PTMALLOC_RS_TRACE") {
        crate::os::trace::TRACE.store(true, Relaxed);
    }
    if switch("PTMALLOC_RS_CHECK_HEAP") {
        CHECK_HEAP.store(true, Relaxed);
        record::WATCH.fetch_or(record::WATCH_CHECK, Relaxed);
    }
    if let Some(file) = env_value(b"PTMALLOC_RS_RECORD") {
        record::start(file);
    }
    let mut named = 0u32;
    let mut i = 0;
    loop {
        // SAFETY: as above; the array ends with a null entry.
        let entry = unsafe { *env.add(i) };
        if entry.is_null() {
            break;
        }
        i += 1;
        // SAFETY: a NUL-terminated string from the environment.
        let entry = unsafe { core::ffi::CStr::from_ptr(entry) }.to_bytes();
        let Some(eq) = entry.iter().position(|&c| c == b'=') else {
            continue;
        };
        let (name, value) = (&entry[..eq], &entry[eq + 1..]);
        if name == b"GLIBC_TUNABLES" {
            named |= apply_glibc_tunables(value);
            continue;
        }
        if name == b"PTMALLOC_RS_PROFILE" && named & PROFILE_NAMED == 0 {
            select_profile("PTMALLOC_RS_PROFILE", value);
            continue;
        }
        for (k, t) in TUNABLES.iter().enumerate() {
            // An alias counts only if GLIBC_TUNABLES did not set it first.
            if !t.alias.is_empty() && t.alias == name && named & (1 << k) == 0 {
                apply(t, value);
                named |= 1 << k;
            }
        }
    }
    // The fast profile's own tcache_count, unless the program chose one.
    let count_named = TUNABLES
        .iter()
        .position(|t| t.name == b"tcache_count")
        .is_some_and(|k| named & (1 << k) != 0);
    if super::profile::fast() && !count_named {
        set_tcache_count(super::profile::FAST_TCACHE_COUNT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_like_the_dynamic_loaders_strtoul() {
        assert_eq!(parse_number(b"65536"), 65536);
        assert_eq!(parse_number(b"0x10000"), 65536);
        assert_eq!(parse_number(b"010"), 8);
        assert_eq!(parse_number(b"12x"), 12);
        assert_eq!(parse_number(b"abc"), 0);
        assert_eq!(parse_number(b""), 0);
        assert_eq!(parse_number(b"-1"), u64::MAX);
        assert_eq!(parse_number(b"99999999999999999999999"), u64::MAX);
    }
}
