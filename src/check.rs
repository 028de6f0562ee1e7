//! What happens when the heap is found corrupt: one line on stderr, glibc's
//! exact wording, then SIGABRT. Programs and people grep for these strings.

use crate::sys;

/// Reports heap corruption and aborts. Never allocates: the message is
/// copied into a stack buffer and written with one `write(2)`.
#[cold]
#[inline(never)]
pub fn malloc_printerr(msg: &str) -> ! {
    let mut buf = [0u8; 256];
    let n = msg.len().min(buf.len() - 1);
    buf[..n].copy_from_slice(&msg.as_bytes()[..n]);
    buf[n] = b'\n';
    sys::write_all(2, &buf[..=n]);
    sys::abort()
}
