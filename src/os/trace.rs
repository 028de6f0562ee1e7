//! The allocator's account of its own system calls: with
//! `PTMALLOC_RS_TRACE=1` a line on stderr for each (`ptmalloc-rs: brk
//! +0x21000  main arena: …`), and with a recording on, the same words as
//! system-call records.

use super::record;
use super::sys;
use super::text::Line;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Set from PTMALLOC_RS_TRACE: every system call the allocator makes is
/// announced on stderr with its reason.
pub static TRACE: AtomicBool = AtomicBool::new(false);

/// Reports one system call (or a change of threshold) with its reason,
/// when tracing or recording.
#[inline]
pub fn trace(args: fmt::Arguments) {
    if TRACE.load(Relaxed) || record::on() {
        trace_line(args);
    }
}

/// What starts a trace line on stderr (the recording keeps the rest).
const PREFIX: &str = "ptmalloc-rs: ";

#[cold]
fn trace_line(args: fmt::Arguments) {
    let mut line = Line::<512>::new();
    let _ = line.write_str(PREFIX);
    let _ = line.write_fmt(args);
    if record::on() {
        record::text(line.bytes().get(PREFIX.len()..).unwrap_or_default());
    }
    if TRACE.load(Relaxed) {
        let _ = line.write_str("\n");
        sys::write_all(2, line.bytes());
    }
}
