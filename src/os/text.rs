//! Text output without allocating: formatted into a stack buffer and
//! written out whenever it fills up, either to a file descriptor with
//! `write(2)` or to a C `FILE` with `fputs` (only with no arena lock held:
//! a `FILE` may allocate its buffer on first use).

use core::fmt::{self, Write};

use crate::os::sys;

#[derive(Clone, Copy)]
pub enum Sink {
    Fd(i32),
    File(*mut libc::FILE),
}

pub struct Out<const N: usize> {
    sink: Sink,
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Out<N> {
    pub fn new(sink: Sink) -> Self {
        Out {
            sink,
            buf: [0; N],
            len: 0,
        }
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) {
        if self.len == 0 {
            return;
        }
        match self.sink {
            Sink::Fd(fd) => sys::write_all(fd, &self.buf[..self.len]),
            Sink::File(fp) => {
                self.buf[self.len] = 0;
                // SAFETY: a NUL-terminated buffer and a FILE the caller
                // vouches for; no arena lock is held (module contract).
                unsafe { libc::fputs(self.buf.as_ptr().cast(), fp) };
            }
        }
        self.len = 0;
    }
}

impl<const N: usize> Write for Out<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for chunk in s.as_bytes().chunks(N - 1) {
            if self.len + chunk.len() > N - 1 {
                self.flush();
            }
            self.buf[self.len..self.len + chunk.len()].copy_from_slice(chunk);
            self.len += chunk.len();
        }
        Ok(())
    }
}

impl<const N: usize> Drop for Out<N> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Set from PTMALLOC_RS_TRACE: every system call the allocator makes is
/// announced on stderr with its reason.
pub static TRACE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Writes one trace line (`ptmalloc-rs: …`) when tracing is on.
#[inline]
pub fn trace(args: fmt::Arguments) {
    if TRACE.load(core::sync::atomic::Ordering::Relaxed) {
        trace_line(args);
    }
}

#[cold]
fn trace_line(args: fmt::Arguments) {
    let mut out = Out::<256>::new(Sink::Fd(2));
    let _ = out.write_str("ptmalloc-rs: ");
    let _ = out.write_fmt(args);
    let _ = out.write_str("\n");
}
