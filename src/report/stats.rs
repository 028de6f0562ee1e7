//! glibc's reports: `mallinfo`, `mallinfo2`, `malloc_stats`, `malloc_info`,
//! and `malloc_trim`, which walks the arenas the same way.
//!
//! Each arena is counted under its lock (`Locked::census`); the text is
//! formatted afterwards into stack buffers and written with no lock held,
//! because writing to a `FILE` may call malloc.

use core::fmt::Write;
use core::sync::atomic::Ordering::Relaxed;

use crate::arena::{self, walk::Census};
use crate::chunk::bins::NFASTBINS;
use crate::config::tunables::MP;
use crate::os::text::{Out, Sink};
use crate::thread::arenas;

/// glibc's `struct mallinfo2`.
#[repr(C)]
#[derive(Default)]
pub struct Mallinfo2 {
    pub arena: usize,
    pub ordblks: usize,
    pub smblks: usize,
    pub hblks: usize,
    pub hblkhd: usize,
    pub usmblks: usize,
    pub fsmblks: usize,
    pub uordblks: usize,
    pub fordblks: usize,
    pub keepcost: usize,
}

/// glibc's `struct mallinfo`: the same fields as `int`.
#[repr(C)]
pub struct Mallinfo {
    pub arena: i32,
    pub ordblks: i32,
    pub smblks: i32,
    pub hblks: i32,
    pub hblkhd: i32,
    pub usmblks: i32,
    pub fsmblks: i32,
    pub uordblks: i32,
    pub fordblks: i32,
    pub keepcost: i32,
}

/// Takes each arena's census in ring order (main first), one lock at a time.
fn each_census(mut f: impl FnMut(usize, &Census)) {
    let mut n = 0;
    arenas::for_each_arena(|a| {
        // SAFETY: arenas live for the whole process.
        let c = unsafe { arena::locked::lock(a) }.census();
        f(n, &c);
        n += 1;
    });
}

/// Adds one arena to mallinfo figures.
pub fn add_arena(m: &mut Mallinfo2, c: &Census) {
    let (nfast, fast) = c.fast();
    let (nrest, rest) = c.rest(false);
    let avail = fast + rest;
    m.smblks += nfast;
    m.ordblks += nrest;
    m.fordblks += avail;
    m.uordblks += c.system_mem - avail;
    m.arena += c.system_mem;
    m.fsmblks += fast;
    if c.is_main {
        m.hblks = MP.n_mmaps.load(Relaxed) as usize;
        m.hblkhd = MP.mmapped_mem.load(Relaxed);
        m.usmblks = 0;
        m.keepcost = c.top_size;
    }
}

pub fn mallinfo2() -> Mallinfo2 {
    let mut m = Mallinfo2::default();
    each_census(|_, c| add_arena(&mut m, c));
    m
}

pub fn mallinfo() -> Mallinfo {
    let m = mallinfo2();
    Mallinfo {
        arena: m.arena as i32,
        ordblks: m.ordblks as i32,
        smblks: m.smblks as i32,
        hblks: m.hblks as i32,
        hblkhd: m.hblkhd as i32,
        usmblks: m.usmblks as i32,
        fsmblks: m.fsmblks as i32,
        uordblks: m.uordblks as i32,
        fordblks: m.fordblks as i32,
        keepcost: m.keepcost as i32,
    }
}

unsafe extern "C" {
    static stderr: *mut libc::FILE;
}

/// `malloc_stats()`: per arena and in total, on stderr, in glibc's format.
pub fn malloc_stats() {
    let _no_cancel = crate::os::sys::NoCancel::new();
    let mapped = MP.mmapped_mem.load(Relaxed) as u32;
    let (mut system_total, mut in_use_total) = (mapped, mapped);
    // SAFETY: libc's stderr stream.
    let err = unsafe { stderr };
    let mut out = Out::<512>::new(Sink::File(err));
    each_census(|n, c| {
        let mut m = Mallinfo2::default();
        add_arena(&mut m, c);
        let _ = write!(
            out,
            "Arena {n}:\nsystem bytes     = {:>10}\nin use bytes     = {:>10}\n",
            m.arena as u32, m.uordblks as u32
        );
        system_total = system_total.wrapping_add(m.arena as u32);
        in_use_total = in_use_total.wrapping_add(m.uordblks as u32);
        out.flush();
    });
    let _ = write!(
        out,
        "Total (incl. mmap):\nsystem bytes     = {:>10}\nin use bytes     = {:>10}\n\
         max mmap regions = {:>10}\nmax mmap bytes   = {:>10}\n",
        system_total,
        in_use_total,
        MP.max_n_mmaps.load(Relaxed) as u32,
        MP.max_mmapped_mem.load(Relaxed)
    );
    // glibc's report, byte for byte, in the default profile; another
    // profile says so at the end.
    if crate::config::profile::current() != crate::config::profile::Profile::Glibc {
        let _ = writeln!(out, "profile: {}", crate::config::profile::name());
    }
    out.flush();
}

/// `malloc_info(0, fp)`: glibc's XML. Other options are EINVAL.
pub fn malloc_info(options: i32, fp: *mut libc::FILE) -> i32 {
    if options != 0 {
        return libc::EINVAL;
    }
    let _no_cancel = crate::os::sys::NoCancel::new();
    let mut out = Out::<1024>::new(Sink::File(fp));
    let _ = writeln!(out, "<malloc version=\"1\">");
    out.flush();
    #[derive(Default)]
    struct Totals {
        nfast: usize,
        fast: usize,
        nrest: usize,
        rest: usize,
        system: usize,
        max_system: usize,
        aspace: usize,
        aspace_mprotect: usize,
    }
    let mut t = Totals::default();
    each_census(|n, c| {
        let _ = write!(out, "<heap nr=\"{n}\">\n<sizes>\n");
        out.flush();
        for (i, s) in c.sizes.iter().enumerate() {
            if s.count != 0 && i != NFASTBINS {
                let _ = writeln!(
                    out,
                    "  <size from=\"{}\" to=\"{}\" total=\"{}\" count=\"{}\"/>",
                    s.from, s.to, s.total, s.count
                );
                out.flush();
            }
        }
        let unsorted = &c.sizes[NFASTBINS];
        if unsorted.count != 0 {
            let _ = writeln!(
                out,
                "  <unsorted from=\"{}\" to=\"{}\" total=\"{}\" count=\"{}\"/>",
                unsorted.from, unsorted.to, unsorted.total, unsorted.count
            );
            out.flush();
        }
        let (nfast, fast) = c.fast();
        let (nrest, rest) = c.rest(true);
        let (aspace, mprotect) = if c.is_main {
            (c.system_mem, c.system_mem)
        } else {
            (c.heap_size, c.heap_mprotect_size)
        };
        let _ = write!(
            out,
            "</sizes>\n<total type=\"fast\" count=\"{nfast}\" size=\"{fast}\"/>\n\
             <total type=\"rest\" count=\"{nrest}\" size=\"{rest}\"/>\n\
             <system type=\"current\" size=\"{}\"/>\n<system type=\"max\" size=\"{}\"/>\n\
             <aspace type=\"total\" size=\"{aspace}\"/>\n<aspace type=\"mprotect\" size=\"{mprotect}\"/>\n",
            c.system_mem, c.max_system_mem
        );
        if !c.is_main {
            let _ = writeln!(out, "<aspace type=\"subheaps\" size=\"{}\"/>", c.heap_count);
        }
        let _ = writeln!(out, "</heap>");
        out.flush();
        t.nfast += nfast;
        t.fast += fast;
        t.nrest += nrest;
        t.rest += rest;
        t.system += c.system_mem;
        t.max_system += c.max_system_mem;
        t.aspace += aspace;
        t.aspace_mprotect += mprotect;
    });
    let _ = write!(
        out,
        "<total type=\"fast\" count=\"{}\" size=\"{}\"/>\n<total type=\"rest\" count=\"{}\" size=\"{}\"/>\n\
         <total type=\"mmap\" count=\"{}\" size=\"{}\"/>\n<system type=\"current\" size=\"{}\"/>\n\
         <system type=\"max\" size=\"{}\"/>\n<aspace type=\"total\" size=\"{}\"/>\n\
         <aspace type=\"mprotect\" size=\"{}\"/>\n</malloc>\n",
        t.nfast,
        t.fast,
        t.nrest,
        t.rest,
        MP.n_mmaps.load(Relaxed),
        MP.mmapped_mem.load(Relaxed),
        t.system,
        t.max_system,
        t.aspace,
        t.aspace_mprotect
    );
    out.flush();
    0
}

/// `malloc_trim(pad)`: every arena gives back the whole pages inside its
/// free chunks, and the main arena its top beyond `pad`. 1 if anything was
/// released.
pub fn malloc_trim(pad: usize) -> i32 {
    // The fast profile's large cache and batch hold the caller's free
    // chunks as in use: give them back first, so that they can be trimmed.
    arenas::flush_fast_caches();
    let mut released = false;
    arenas::for_each_arena(|a| {
        // SAFETY: arenas live for the whole process.
        released |= unsafe { arena::locked::lock(a) }.trim(pad);
    });
    released as i32
}

/// `mallopt(param, value)`: 1 if the value was taken, else 0.
pub fn mallopt(param: i32, value: i32) -> i32 {
    // A smaller max_fast must not strand chunks in the main arena's fastbins.
    // SAFETY: the main arena is a static.
    unsafe { arena::locked::lock(arena::state::main_arena()) }.consolidate();
    crate::config::tunables::mallopt(param, value) as i32
}
