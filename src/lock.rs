//! The arena mutex: a futex lock, 4 bytes, so it fills the `int mutex` slot of
//! glibc's `struct malloc_state`.
//!
//! The word holds the kernel thread id of its holder (0 when free), with the
//! top bit set once another thread may be waiting, as the kernel's
//! priority-inheritance futexes do. A heap dump can so name the thread that
//! holds an arena. Uncontended lock and unlock are one atomic each; a
//! contended thread spins briefly, then sleeps in the kernel, so a lock
//! holder that is descheduled (threads outnumber cores here) does not make
//! others burn their time slices. The lock never allocates.

use core::sync::atomic::{AtomicU32, Ordering};

use crate::{sys, tls};

#[repr(transparent)]
pub struct Lock(AtomicU32);

/// The thread id of a thread that holds every arena lock (and the other
/// locks `fork` needs quiet) between the atfork prepare handler and the
/// parent or child handler; 0 otherwise. See `lock_or_borrow`.
pub static FORK_HOLDER: AtomicU32 = AtomicU32::new(0);

const UNLOCKED: u32 = 0;
/// Set in the word while a thread may be sleeping on it.
const WAITERS: u32 = 1 << 31;
/// The word of an arena the only thread is using (see `mark`): above every
/// thread id (the kernel's limit is 2^22).
pub const MARKED: u32 = WAITERS - 1;

impl Lock {
    pub const fn new() -> Self {
        Lock(AtomicU32::new(UNLOCKED))
    }

    #[inline]
    pub fn lock(&self) {
        let me = tls::current_tid();
        if self
            .0
            .compare_exchange(UNLOCKED, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended(me);
        }
    }

    #[cold]
    fn lock_contended(&self, me: u32) {
        // FUTEX_WAIT fails with EAGAIN when the word changed before the
        // thread could sleep (the holder unlocked meanwhile): that must not
        // reach the caller's errno (free keeps errno).
        let _errno = sys::KeepErrno::new();
        for _ in 0..100 {
            core::hint::spin_loop();
            if self.0.load(Ordering::Relaxed) == UNLOCKED
                && self
                    .0
                    .compare_exchange(UNLOCKED, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        loop {
            let v = self.0.load(Ordering::Relaxed);
            if v == UNLOCKED {
                // Taken with the waiter bit kept: others may still sleep.
                if self
                    .0
                    .compare_exchange(UNLOCKED, me | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
                continue;
            }
            if v & WAITERS == 0
                && self
                    .0
                    .compare_exchange(v, v | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            sys::futex_wait(&self.0, v | WAITERS);
        }
    }

    /// Takes the lock, or borrows it: false (and nothing taken, so the
    /// caller must not unlock) when the calling thread is `FORK_HOLDER` and
    /// already holds it. Another library's atfork prepare handler runs after
    /// ours when it was registered first (by a constructor that ran before
    /// ours), with every allocator lock held by this very thread; glibc's
    /// malloc lets such a handler allocate, and so must we.
    #[inline]
    pub fn lock_or_borrow(&self) -> bool {
        let me = tls::current_tid();
        if self
            .0
            .compare_exchange(UNLOCKED, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return true;
        }
        if FORK_HOLDER.load(Ordering::Relaxed) == me && self.holder() == Some(me) {
            return false;
        }
        self.lock_contended(me);
        true
    }

    /// Takes the lock only if it is free.
    #[inline]
    pub fn try_lock(&self) -> bool {
        self.0
            .compare_exchange(
                UNLOCKED,
                tls::current_tid(),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Tries for a while (about `spins` attempts) to take the lock.
    pub fn try_lock_for(&self, spins: u32) -> bool {
        for _ in 0..spins {
            if self.try_lock() {
                return true;
            }
            core::hint::spin_loop();
        }
        false
    }

    #[inline]
    pub fn unlock(&self) {
        if self.0.swap(UNLOCKED, Ordering::Release) & WAITERS != 0 {
            sys::futex_wake_one(&self.0);
        }
    }

    /// The id of the thread holding the lock, if any.
    pub fn holder(&self) -> Option<u32> {
        match self.0.load(Ordering::Relaxed) & !WAITERS {
            0 => None,
            tid => Some(tid),
        }
    }

    /// While the process has one thread the arenas go unlocked, but the
    /// word still records that the thread is inside the allocator (a plain
    /// store of `MARKED`, no atomic read-modify-write), so a dump from a
    /// signal handler that interrupted it can tell. `mark` and `unmark`
    /// pair up.
    #[inline]
    pub fn mark(&self) {
        self.0.store(MARKED, Ordering::Relaxed);
    }

    #[inline]
    pub fn unmark(&self) {
        self.0.store(UNLOCKED, Ordering::Relaxed);
    }

    /// Forgets any holder: for the child of `fork`, where the threads that
    /// held or waited for the lock do not exist.
    pub fn reset(&self) {
        self.0.store(UNLOCKED, Ordering::Relaxed);
    }
}
