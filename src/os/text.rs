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
            Sink::Fd(fd) => sys::write_all(fd, self.buf.get(..self.len).unwrap_or_default()),
            Sink::File(fp) => {
                // `write_str` leaves room for the NUL.
                if let Some(end) = self.buf.get_mut(self.len) {
                    *end = 0;
                    // SAFETY: a NUL-terminated buffer and a FILE the caller
                    // vouches for; no arena lock is held (module contract).
                    unsafe { libc::fputs(self.buf.as_ptr().cast(), fp) };
                }
            }
        }
        self.len = 0;
    }
}

impl<const N: usize> Write for Out<N> {
    /// Copies `s` in, flushing whenever the buffer (less one byte, for
    /// `flush`'s NUL) is full.
    fn write_str(&mut self, s: &str) -> fmt::Result {
        const { assert!(N >= 2) };
        let mut bytes = s.as_bytes();
        while !bytes.is_empty() {
            if self.len >= N - 1 {
                self.flush();
            }
            let room = self.buf.get_mut(self.len..N - 1).unwrap_or_default();
            let n = room.len().min(bytes.len());
            for (dst, &src) in room.iter_mut().zip(bytes.iter()) {
                *dst = src;
            }
            self.len += n;
            bytes = bytes.get(n..).unwrap_or_default();
        }
        Ok(())
    }
}

impl<const N: usize> Drop for Out<N> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// One line of text kept in a stack buffer (cut at `N` bytes), to be sent
/// to more than one place.
pub struct Line<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Line<N> {
    pub fn new() -> Self {
        Line {
            buf: [0; N],
            len: 0,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl<const N: usize> Write for Line<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.get_mut(self.len..).unwrap_or_default();
        let n = room.len().min(s.len());
        for (dst, &src) in room.iter_mut().zip(s.as_bytes()) {
            *dst = src;
        }
        self.len += n;
        Ok(())
    }
}

/// Says something about the library's own settings on stderr, as
/// `ptmalloc-rs: …` (a malformed PTMALLOC_RS_* value, a recording that
/// cannot start).
#[cold]
pub fn warn(args: fmt::Arguments) {
    let mut out = Out::<256>::new(Sink::Fd(2));
    let _ = out.write_str("ptmalloc-rs: ");
    let _ = out.write_fmt(args);
    let _ = out.write_str("\n");
}
