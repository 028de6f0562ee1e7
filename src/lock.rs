//! The arena mutex: a futex lock, 4 bytes, so it fills the `int mutex` slot of
//! glibc's `struct malloc_state`.
//!
//! States: 0 unlocked, 1 locked with no waiter, 2 locked with (possible)
//! waiters. Uncontended lock and unlock are one atomic each; a contended
//! thread spins briefly, then sleeps in the kernel, so a lock holder that
//! is descheduled (threads outnumber cores here) does not make others burn
//! their time slices. The lock never allocates.

use core::sync::atomic::{AtomicU32, Ordering};

use crate::sys;

#[repr(transparent)]
pub struct Lock(AtomicU32);

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
const CONTENDED: u32 = 2;

impl Lock {
    pub const fn new() -> Self {
        Lock(AtomicU32::new(UNLOCKED))
    }

    #[inline]
    pub fn lock(&self) {
        if self
            .0
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
    }

    #[cold]
    fn lock_contended(&self) {
        for _ in 0..100 {
            core::hint::spin_loop();
            if self.0.load(Ordering::Relaxed) == UNLOCKED
                && self
                    .0
                    .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        // Announce a waiter; whoever unlocks will wake one of us.
        while self.0.swap(CONTENDED, Ordering::Acquire) != UNLOCKED {
            sys::futex_wait(&self.0, CONTENDED);
        }
    }

    /// Takes the lock only if it is free.
    #[inline]
    pub fn try_lock(&self) -> bool {
        self.0
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[inline]
    pub fn unlock(&self) {
        if self.0.swap(UNLOCKED, Ordering::Release) == CONTENDED {
            sys::futex_wake_one(&self.0);
        }
    }

    /// Forgets any holder: for the child of `fork`, where the threads that
    /// held or waited for the lock do not exist.
    pub fn reset(&self) {
        self.0.store(UNLOCKED, Ordering::Relaxed);
    }
}
