//! What happens when the heap is found corrupt or misused: one line on
//! stderr, glibc's exact wording, then SIGABRT. Programs and people grep for
//! these strings.
//!
//! The check action (`MALLOC_CHECK_`, `GLIBC_TUNABLES=glibc.malloc.check`,
//! `mallopt(M_CHECK_ACTION)`; glibc's bits) chooses what a *misuse* does:
//! bit 0 prints the message, bit 1 aborts; the default, 3, does both. A
//! misuse is a bad call caught before the allocator changed anything — a
//! double free, a pointer or size that is not a chunk of ours given to
//! `free` or `realloc` — and with abort off that call is ignored (`free`
//! does nothing, `realloc` returns NULL). Corruption found inside the heap's
//! own lists, where there is no safe way on, always prints and aborts.

use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

use crate::os::sys;

const PRINT: u32 = 1;
const ABORT: u32 = 2;

static CHECK_ACTION: AtomicU32 = AtomicU32::new(PRINT | ABORT);

/// Sets the check action (the low two bits of `v` count).
pub fn set_check_action(v: u32) {
    CHECK_ACTION.store(v & (PRINT | ABORT), Relaxed);
}

pub fn check_action() -> u32 {
    CHECK_ACTION.load(Relaxed)
}

/// Writes `msg` and a newline (at most 255 bytes of it) with one write.
fn print(msg: &str) {
    let mut buf = [0u8; 256];
    let mut n = 0;
    for (dst, &src) in buf.iter_mut().zip(msg.as_bytes().iter().take(255)) {
        *dst = src;
        n += 1;
    }
    if let Some(end) = buf.get_mut(n) {
        *end = b'\n';
    }
    sys::write_all(2, buf.get(..=n).unwrap_or_default());
}

/// Reports heap corruption and aborts. Never allocates: the message is
/// copied into a stack buffer and written with one `write(2)` (unless the
/// check action asks for a silent abort).
#[cold]
#[inline(never)]
pub fn malloc_printerr(msg: &str) -> ! {
    if check_action() != ABORT {
        print(msg);
    }
    super::record::flush_self();
    sys::abort()
}

/// Reports a misuse as the check action says. Returns only when the action
/// does not abort; the caller then ignores the call.
#[cold]
#[inline(never)]
pub fn misuse(msg: &str) {
    let action = check_action();
    if action & PRINT != 0 {
        print(msg);
    }
    if action & ABORT != 0 {
        super::record::flush_self();
        sys::abort();
    }
}

/// A failed assertion of glibc 2.36's malloc.c (which keeps its asserts on):
/// `Fatal glibc error: malloc assertion failure in FUNCTION: EXPRESSION`,
/// then SIGABRT, whatever the check action. The expression is glibc's
/// text, so that the line is the one glibc prints.
#[cold]
#[inline(never)]
pub fn assertion_failed(function: &str, expression: &str) -> ! {
    let mut out = crate::os::text::Out::<512>::new(crate::os::text::Sink::Fd(2));
    let _ = core::fmt::Write::write_fmt(
        &mut out,
        format_args!("Fatal glibc error: malloc assertion failure in {function}: {expression}\n"),
    );
    out.flush();
    super::record::flush_self();
    sys::abort()
}
