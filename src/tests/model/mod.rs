//! Model-based randomized tests of the whole allocator: random sequences of
//! malloc, calloc, realloc, reallocarray, the memalign family, malloc_trim
//! and free, made through the C API functions (`crate::api`: in the test
//! build their names stay mangled, so the harness itself keeps glibc's
//! malloc), against a shadow model of the live blocks and their contents
//! (checked before every free and realloc and at the end; calloc memory
//! checked zero; alignment, usable size, no overlap, errno). After every
//! call the heap checker (`verify::check_all`) runs over every arena.
//!
//! That goes through everything a program would: a thread arena and the
//! tcache (each sequence runs in a thread of its own, so its cache starts
//! empty and is flushed into the arena when the thread ends; the process's
//! first thread is avoided, as it would use the brk main arena, which
//! glibc's malloc, serving the harness, grows too), mmap'd chunks (sizes up
//! to 6 MiB), chained heaps, the C conventions (errno, NULL, `realloc(p,
//! 0)`).
//!
//! Sizes are biased to where off-by-one bugs live: 0, 24, the fastbin limit
//! (128/160), the small/large bin border (1008/1024), the tcache limit
//! (1032/1040), the mmap threshold (128 KiB), multiples of 16 ± 1; each
//! sequence draws a profile (see `Profile`) so that some free more blocks
//! of one size than the tcache holds.
//!
//! Every sequence has a seed derived from the run's seed; a failure prints
//! both and the last operations (an abort inside the allocator prints the
//! sequence's seed and step from a SIGABRT handler). The arena a sequence
//! runs in carries what earlier sequences left, so a failure is repeated by
//! the whole run: `PTMALLOC_RS_MODEL_SEED=N` sets the run's seed,
//! `PTMALLOC_RS_MODEL_SEQUENCES=N` the number of sequences of the regular
//! test (with 1, the seed is that one sequence's). `make fuzz` runs the
//! ignored `fuzz_*` test, with `PTMALLOC_RS_FUZZ_SEQUENCES` sequences
//! (default 200000) and the dynamic mmap threshold at work; the regular
//! tests turn it off, so that what they do does not depend on what ran
//! before (and other tests keep their thresholds).

use std::collections::{BTreeMap, VecDeque};
use std::format;
use std::string::String;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::api;
use crate::chunk::MINSIZE;
use crate::config::tunables::MP;
use crate::report::verify;
use core::ffi::c_void;

/// splitmix64: small, fast, and every seed (0 included) is fine.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Request sizes biased to the bin boundaries.
pub fn random_size(rng: &mut Rng) -> usize {
    const EDGES: [usize; 22] = [
        0,
        8,
        24,
        40,
        104,
        120,
        128,
        136,
        152,
        160,
        168,
        1000,
        1008,
        1016,
        1024,
        1032,
        1040,
        4096,
        65536,
        128 * 1024 - 24,
        128 * 1024,
        256 * 1024,
    ];
    match rng.below(100) {
        0..=29 => rng.below(1100) as usize,
        30..=54 => {
            let e = rng.pick(&EDGES);
            let d = rng.pick(&[-17isize, -16, -9, -8, -1, 0, 1, 8, 9, 16, 17]);
            e.saturating_add_signed(d)
        }
        55..=74 => (rng.below(1024) as usize * 16).saturating_add_signed(rng.below(3) as isize - 1),
        75..=94 => rng.below(256 * 1024) as usize,
        95..=98 => rng.below(1024 * 1024) as usize,
        // Several MiB: mmap'd, or from a heap once the threshold rose.
        _ => rng.below(6 * 1024 * 1024) as usize,
    }
}

/// What a sequence asks for: the size mix, and how long it runs. Most
/// frees land in the thread's tcache (16 chunks of each size); the narrower
/// profiles free more of one size than it holds, so the arena's fastbins,
/// bins and consolidation get their share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Profile {
    /// `random_size`.
    General,
    /// Two to four sizes only.
    FewSizes([usize; 4]),
    /// Up to 200 bytes (the fastbin sizes and their neighbours).
    Small,
    /// 1000 bytes to 128 KiB, now and then several MiB.
    Big,
    /// Blocks just under the mmap threshold, allocated until the live
    /// bytes pass the 64 MiB of a heap: a thread arena chains a second heap,
    /// and gives it back once it empties.
    FillHeap,
}

impl Profile {
    fn pick(rng: &mut Rng) -> Profile {
        match rng.below(200) {
            0..=79 => Profile::General,
            80..=119 => {
                let mut sizes = [0; 4];
                let k = 2 + rng.below(3) as usize;
                for i in 0..4 {
                    sizes[i] = if i < k {
                        random_size(rng)
                    } else {
                        sizes[i % k]
                    };
                }
                Profile::FewSizes(sizes)
            }
            120..=159 => Profile::Small,
            160..=198 => Profile::Big,
            _ => Profile::FillHeap,
        }
    }

    fn size(self, rng: &mut Rng) -> usize {
        match self {
            Profile::General => random_size(rng),
            Profile::FewSizes(sizes) => rng.pick(&sizes),
            Profile::Small => {
                if rng.chance(30) {
                    rng.pick(&[0usize, 24, 40, 104, 120, 128, 136, 152, 160, 168])
                } else {
                    rng.below(201) as usize
                }
            }
            Profile::Big => {
                if rng.chance(3) {
                    rng.below(6 * 1024 * 1024) as usize
                } else {
                    1000 + rng.below(127 * 1024) as usize
                }
            }
            Profile::FillHeap => 100 * 1024 + rng.below(27 * 1024) as usize,
        }
    }

    /// Operations in a sequence of this profile (FillHeap first allocates
    /// until its heap is full).
    fn length(self, rng: &mut Rng, max_len: u64) -> u64 {
        match self {
            Profile::General | Profile::Big => 1 + rng.below(max_len),
            _ => 1 + rng.below(2 * max_len),
        }
    }
}

/// A live block of the model: its requested length and content seed. The
/// content is the seed's low byte throughout, except for the first and
/// last 8 bytes of blocks of 16 bytes or more, which hold the seed itself.
#[derive(Clone, Copy, Debug)]
struct Block {
    len: usize,
    seed: u64,
}

const PAGE_BYTES: usize = 4096;

fn fill(p: *mut u8, b: Block) {
    // SAFETY: `p` is a live block with at least `b.len` usable bytes.
    unsafe {
        core::ptr::write_bytes(p, b.seed as u8, b.len);
        if b.len >= 16 {
            p.cast::<u64>().write_unaligned(b.seed);
            p.add(b.len - 8).cast::<u64>().write_unaligned(b.seed);
        }
    }
}

/// Whether the first `n` bytes of the block at `p` are as `fill` left them
/// (`n` may be less than the block's length after a shrinking realloc).
fn intact(p: *const u8, b: Block, n: usize) -> bool {
    // SAFETY: `p` is live with at least `n` readable bytes.
    let s = unsafe { core::slice::from_raw_parts(p, n) };
    let tag = b.seed.to_ne_bytes();
    let (head, tail) = if b.len >= 16 {
        (8, b.len - 8)
    } else {
        (0, b.len)
    };
    if (0..head.min(n)).any(|k| s[k] != tag[k]) || (tail..n).any(|k| s[k] != tag[k - tail]) {
        return false;
    }
    let fill = [b.seed as u8; PAGE_BYTES];
    s[head.min(n)..tail.min(n)]
        .chunks(PAGE_BYTES)
        .all(|c| c == &fill[..c.len()])
}

fn zeroed(p: *const u8, n: usize) -> bool {
    let zeros = [0u8; PAGE_BYTES];
    // SAFETY: `p` is live with at least `n` readable bytes.
    let s = unsafe { core::slice::from_raw_parts(p, n) };
    s.chunks(PAGE_BYTES).all(|c| c == &zeros[..c.len()])
}

fn errno() -> i32 {
    crate::os::sys::errno()
}

fn usable(p: *mut u8) -> usize {
    // SAFETY: a live block of ours.
    unsafe { api::malloc_usable_size(p.cast()) }
}

/// The sequence being run, for the SIGABRT handler (the allocator aborts
/// on corruption it detects itself).
static CURRENT_SEED: AtomicU64 = AtomicU64::new(0);
static CURRENT_STEP: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_abort(_: i32) {
    use core::fmt::Write;
    let mut out = crate::os::text::Out::<256>::new(crate::os::text::Sink::Fd(2));
    let _ = writeln!(
        out,
        "model test: aborted in sequence seed {:#x} at step {}",
        CURRENT_SEED.load(Relaxed),
        CURRENT_STEP.load(Relaxed)
    );
    out.flush();
}

fn install_abort_reporter() {
    // SAFETY: a zeroed sigaction with a plain handler that only writes to
    // stderr; SA_RESETHAND lets the abort go on afterwards.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_abort as *const () as usize;
        sa.sa_flags = libc::SA_RESETHAND;
        libc::sigaction(libc::SIGABRT, &sa, core::ptr::null_mut());
    }
}

/// What a run reached, for its closing line (the figures of `check_all`
/// cover every arena, those of other tests' threads included).
#[derive(Default, Clone, Copy)]
struct Coverage {
    checks: u64,
    /// Most heaps (over all arenas) seen at once.
    max_heaps: usize,
    /// Checks that found chunks in fastbins / in the other bins.
    with_fast: u64,
    with_binned: u64,
    /// Blocks handed out as mmap'd chunks.
    mmapped: u64,
}

impl Coverage {
    fn add(&mut self, o: &Coverage) {
        self.checks += o.checks;
        self.max_heaps = self.max_heaps.max(o.max_heaps);
        self.with_fast += o.with_fast;
        self.with_binned += o.with_binned;
        self.mmapped += o.mmapped;
    }
}

/// One thread's shadow model: the live blocks by address.
struct Model {
    rng: Rng,
    seed: u64,
    profile: Profile,
    live: BTreeMap<usize, Block>,
    live_bytes: usize,
    next_tag: u64,
    log: VecDeque<String>,
    step: u64,
    cov: Coverage,
}

/// Most bytes a sequence keeps live (beyond that it mostly frees).
const LIVE_BUDGET: usize = 48 << 20;
/// What a FillHeap sequence allocates before anything else: more than a
/// heap holds.
const FILL_BYTES: usize = 72 << 20;

impl Model {
    fn new(seed: u64) -> Model {
        let mut rng = Rng(seed);
        let profile = Profile::pick(&mut rng);
        Model {
            rng,
            seed,
            profile,
            live: BTreeMap::new(),
            live_bytes: 0,
            next_tag: seed.rotate_left(17) | 1,
            log: VecDeque::new(),
            step: 0,
            cov: Coverage::default(),
        }
    }

    fn note(&mut self, what: String) {
        if self.log.len() == 24 {
            self.log.pop_front();
        }
        self.log.push_back(what);
    }

    #[track_caller]
    fn fail(&self, why: &str) -> ! {
        let mut msg = format!(
            "model test failed: {why}\n  sequence seed {:#x}, step {}\n  last operations:\n",
            self.seed, self.step
        );
        for l in &self.log {
            msg += &format!("    {l}\n");
        }
        msg += "  (rerun: PTMALLOC_RS_MODEL_SEED=<run seed> as printed by the test, or the sequence seed with PTMALLOC_RS_MODEL_SEQUENCES=1)";
        panic!("{msg}");
    }

    fn check_heap(&mut self, after: &str) {
        match verify::check_all() {
            Ok(t) => {
                self.cov.checks += 1;
                self.cov.max_heaps = self.cov.max_heaps.max(t.heaps);
                self.cov.with_fast += u64::from(t.fast_bytes != 0);
                self.cov.with_binned += u64::from(t.free_bytes != 0);
            }
            Err(f) => self.fail(&format!(
                "heap check failed after {after}: {} at {:#x}",
                f.what, f.addr
            )),
        }
    }

    fn new_block(&mut self, len: usize) -> Block {
        self.next_tag = self
            .next_tag
            .wrapping_mul(0x2545_f491_4f6c_dd1d)
            .wrapping_add(1);
        Block {
            len,
            seed: self.next_tag,
        }
    }

    /// Records a block just handed out: aligned to `align`, usable size at
    /// least `n`, overlapping no live block; fills it.
    fn adopt(&mut self, p: *mut u8, n: usize, align: usize, what: &str) {
        let a = p as usize;
        if !a.is_multiple_of(align) {
            self.fail(&format!("{what}: {p:p} is not {align}-aligned"));
        }
        let u = usable(p);
        if u < n {
            self.fail(&format!("{what}: usable size {u} < {n}"));
        }
        if let Some((&q, _)) = self.live.range(..=a).next_back()
            && q + usable(q as *mut u8) > a
        {
            self.fail(&format!("{what}: {p:p} overlaps the live block {q:#x}"));
        }
        if let Some((&q, _)) = self.live.range(a..).next()
            && a + u > q
        {
            self.fail(&format!(
                "{what}: {p:p} (+{u}) overlaps the live block {q:#x}"
            ));
        }
        // SAFETY: the header of a block just handed out.
        if unsafe { crate::chunk::Chunk::from_mem(p).is_mmapped() } {
            self.cov.mmapped += 1;
        }
        let b = self.new_block(n);
        fill(p, b);
        self.live.insert(a, b);
        self.live_bytes += n;
    }

    /// Takes a random live block out of the model, its contents checked.
    fn take(&mut self, what: &str) -> Option<(usize, Block)> {
        if self.live.is_empty() {
            return None;
        }
        let k = self.rng.below(self.live.len() as u64) as usize;
        let (&a, &b) = self.live.iter().nth(k)?;
        if !intact(a as *const u8, b, b.len) {
            self.fail(&format!(
                "{what}: block {a:#x} ({} bytes) lost its contents",
                b.len
            ));
        }
        self.live.remove(&a);
        self.live_bytes -= b.len;
        Some((a, b))
    }

    /// One random operation, then a check of every arena.
    fn step(&mut self) {
        self.step += 1;
        CURRENT_STEP.store(self.step, Relaxed);
        let filling = self.profile == Profile::FillHeap && self.live_bytes < FILL_BYTES;
        let full = self.live_bytes > LIVE_BUDGET && !filling;
        let roll = self.rng.below(100);
        let op = if filling {
            roll % 30
        } else if full && roll < 60 {
            60 + roll % 25
        } else {
            roll
        };
        let what: String;
        match op {
            0..=29 => {
                let n = self.profile.size(&mut self.rng);
                // SAFETY: plain malloc.
                let p = unsafe { api::malloc(n) }.cast::<u8>();
                what = format!("malloc({n}) = {p:p}");
                self.note(what.clone());
                if p.is_null() {
                    self.fail(&format!("{what}: out of memory"));
                }
                self.adopt(p, n, 16, &what);
            }
            30..=37 => {
                let n = self.profile.size(&mut self.rng);
                let (nmemb, size) = match self.rng.below(4) {
                    0 => (1, n),
                    1 => (n, 1),
                    _ => {
                        let k = 1 + self.rng.below(16) as usize;
                        (k, n / k)
                    }
                };
                // SAFETY: plain calloc.
                let p = unsafe { api::calloc(nmemb, size) }.cast::<u8>();
                what = format!("calloc({nmemb}, {size}) = {p:p}");
                self.note(what.clone());
                if p.is_null() {
                    self.fail(&format!("{what}: out of memory"));
                }
                if !zeroed(p, nmemb * size) {
                    self.fail(&format!("{what}: memory not zeroed"));
                }
                self.adopt(p, nmemb * size, 16, &what);
            }
            38..=47 => {
                const ALIGNS: [usize; 14] = [
                    1,
                    8,
                    16,
                    24,
                    32,
                    48,
                    64,
                    128,
                    256,
                    1024,
                    4096,
                    8192,
                    65536,
                    1 << 20,
                ];
                let align = self.rng.pick(&ALIGNS);
                let n = self.profile.size(&mut self.rng);
                let page = crate::os::sys::page_size();
                let (p, want_align, len, name) = match self.rng.below(5) {
                    0 => {
                        // SAFETY: plain memalign.
                        let p = unsafe { api::memalign(align, n) };
                        (p, align, n, "memalign")
                    }
                    1 => {
                        // SAFETY: plain aligned_alloc.
                        let p = unsafe { api::aligned_alloc(align, n) };
                        (p, align, n, "aligned_alloc")
                    }
                    2 => {
                        let mut out: *mut c_void = core::ptr::null_mut();
                        // SAFETY: a valid out-pointer.
                        let r = unsafe { api::posix_memalign(&mut out, align, n) };
                        let valid = align.is_multiple_of(8) && (align / 8).is_power_of_two();
                        if valid != (r == 0) || (!valid && r != libc::EINVAL) {
                            self.note(format!("posix_memalign(_, {align}, {n}) = {r}"));
                            self.fail("posix_memalign: wrong result for the alignment");
                        }
                        (out, align, n, "posix_memalign")
                    }
                    3 => {
                        // SAFETY: plain valloc.
                        let p = unsafe { api::valloc(n) };
                        (p, page, n, "valloc")
                    }
                    _ => {
                        let n = n % (64 * 1024);
                        // SAFETY: plain pvalloc.
                        let p = unsafe { api::pvalloc(n) };
                        (p, page, n.div_ceil(page) * page, "pvalloc")
                    }
                };
                let p = p.cast::<u8>();
                what = format!("{name}({align}, {n}) = {p:p}");
                self.note(what.clone());
                let posix_refused = name == "posix_memalign"
                    && !(align.is_multiple_of(8) && (align / 8).is_power_of_two());
                if !posix_refused {
                    if p.is_null() {
                        self.fail(&format!("{what}: out of memory"));
                    }
                    let a = if want_align <= 16 {
                        16
                    } else {
                        want_align.max(MINSIZE).next_power_of_two()
                    };
                    self.adopt(p, len, a, &what);
                }
            }
            48..=59 => {
                if let Some((a, b)) = self.take("realloc") {
                    let m = if self.rng.chance(3) {
                        0
                    } else {
                        self.profile.size(&mut self.rng)
                    };
                    let arrayed = self.rng.chance(10) && m > 0;
                    // SAFETY: a live block given up to realloc.
                    let q = unsafe {
                        if arrayed {
                            api::reallocarray(a as *mut c_void, 1, m)
                        } else {
                            api::realloc(a as *mut c_void, m)
                        }
                    }
                    .cast::<u8>();
                    what = format!("realloc({a:#x} [{}], {m}) = {q:p}", b.len);
                    self.note(what.clone());
                    if m == 0 {
                        if !q.is_null() {
                            self.fail(&format!("{what}: realloc to 0 did not free"));
                        }
                    } else {
                        if q.is_null() {
                            self.fail(&format!("{what}: out of memory"));
                        }
                        if !intact(q, b, b.len.min(m)) {
                            self.fail(&format!("{what}: contents not kept"));
                        }
                        self.adopt(q, m, 16, &what);
                    }
                } else {
                    let n = self.profile.size(&mut self.rng);
                    // SAFETY: realloc(NULL, n) is malloc.
                    let p = unsafe { api::realloc(core::ptr::null_mut(), n) }.cast::<u8>();
                    what = format!("realloc(NULL, {n}) = {p:p}");
                    self.note(what.clone());
                    if p.is_null() {
                        self.fail(&format!("{what}: out of memory"));
                    }
                    self.adopt(p, n, 16, &what);
                }
            }
            60..=94 => {
                if let Some((a, b)) = self.take("free") {
                    what = format!("free({a:#x} [{}])", b.len);
                    self.note(what.clone());
                    crate::os::sys::set_errno(12345);
                    // SAFETY: a live block given up.
                    unsafe { api::free(a as *mut c_void) };
                    let e = errno();
                    if e != 12345 {
                        self.fail(&format!("{what}: free changed errno (to {e})"));
                    }
                } else {
                    what = String::from("free(NULL)");
                    // SAFETY: free(NULL) is a no-op.
                    unsafe { api::free(core::ptr::null_mut()) };
                }
            }
            95..=96 => {
                // Requests that must fail: ENOMEM and NULL, nothing else.
                let (p, w) = match self.rng.below(3) {
                    // SAFETY: plain calls.
                    0 => (
                        unsafe { api::malloc(isize::MAX as usize - 4) },
                        "malloc(huge)",
                    ),
                    // SAFETY: as above.
                    1 => (
                        unsafe { api::calloc(usize::MAX / 3, 5) },
                        "calloc(overflow)",
                    ),
                    // SAFETY: as above.
                    _ => (
                        unsafe { api::memalign(64, usize::MAX - 100) },
                        "memalign(huge)",
                    ),
                };
                what = String::from(w);
                self.note(what.clone());
                if !p.is_null() || errno() != libc::ENOMEM {
                    self.fail(&format!("{what}: did not fail with ENOMEM"));
                }
            }
            _ => {
                let pad = self.rng.pick(&[0usize, 4096, 128 * 1024]);
                // SAFETY: plain call.
                unsafe { api::malloc_trim(pad) };
                what = format!("malloc_trim({pad})");
                self.note(what.clone());
            }
        }
        self.check_heap(&what);
    }

    /// Checks every live block and frees it.
    fn finish(&mut self) {
        while let Some((a, b)) = self.take("final check") {
            self.note(format!("free({a:#x} [{}]) at the end", b.len));
            // SAFETY: a live block given up.
            unsafe { api::free(a as *mut c_void) };
        }
        self.check_heap("freeing every block");
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

mod cross_thread;
mod sequences;
