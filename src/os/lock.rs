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
//!
//! Around `fork` the forking thread holds every arena lock (see
//! `thread::fork`) and sets `FORKING` in each word. A thread that
//! allocates or frees must not wait for such a lock: it may hold a lock that
//! fork takes after the atfork handlers (glibc's NSS lock, a mutex an
//! earlier-registered prepare handler takes), and then neither would go on.
//! `lock_unless_forking` tells it so instead (`Got::Forking`), after a
//! grace of 2 ms in which most forks are over, and it goes around the arena; the forking thread itself borrows the locks it holds
//! (`Got::Borrowed`), for atfork handlers that allocate.

use core::sync::atomic::{AtomicU32, Ordering};

use super::{sys, thread};

#[repr(transparent)]
pub struct Lock(AtomicU32);

/// The thread id of a thread that holds every arena lock (and the other
/// locks `fork` needs quiet) between the atfork prepare handler and the
/// parent or child handler; 0 otherwise. See `lock_unless_forking`.
pub static FORK_HOLDER: AtomicU32 = AtomicU32::new(0);

const UNLOCKED: u32 = 0;
/// Set in the word while a thread may be sleeping on it.
const WAITERS: u32 = 1 << 31;
/// Set in the word of a lock the fork handlers hold (see the module doc).
const FORKING: u32 = 1 << 30;
/// How long a thread waits for a fork's locks before it goes around them
/// (once per fork: after that, at once).
const FORK_GRACE_NS: u64 = 2_000_000;
/// Counts forks that took the locks (`mark_forking` of the first lock
/// bumps it); 0 is no fork.
pub static FORK_GEN: AtomicU32 = AtomicU32::new(0);
/// The word of an arena the only thread is using (see `mark`): above every
/// thread id (the kernel's limit is 2^22).
pub const MARKED: u32 = WAITERS - 1;

/// What `lock_unless_forking` did.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Got {
    /// Took the lock: the caller unlocks it.
    Taken,
    /// The calling thread is forking and holds it already: not to unlock.
    Borrowed,
    /// Another thread's fork holds it: nothing taken, go around.
    Forking,
}

impl Lock {
    pub const fn new() -> Self {
        Lock(AtomicU32::new(UNLOCKED))
    }

    #[inline]
    pub fn lock(&self) {
        let me = thread::tid();
        if self
            .0
            .compare_exchange(UNLOCKED, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended(me, false);
        }
    }

    /// Waits for the lock and takes it (`Got::Taken`). With
    /// `unless_forking`, a lock a fork holds is borrowed by the forking
    /// thread and given up on by any other (see `lock_unless_forking`).
    #[cold]
    fn lock_contended(&self, me: u32, unless_forking: bool) -> Got {
        let v = self.0.load(Ordering::Relaxed);
        if unless_forking && v & FORKING != 0 && v & !(WAITERS | FORKING) == me {
            return Got::Borrowed;
        }
        // FUTEX_WAIT fails with EAGAIN when the word changed before the
        // thread could sleep (the holder unlocked meanwhile): that must not
        // reach the caller's errno (free keeps errno).
        let _errno = sys::KeepErrno::new();
        let mut waited_for_fork = false;
        for _ in 0..100 {
            core::hint::spin_loop();
            if self.0.load(Ordering::Relaxed) == UNLOCKED
                && self
                    .0
                    .compare_exchange(UNLOCKED, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return Got::Taken;
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
                    return Got::Taken;
                }
                continue;
            }
            // `mark_forking` changes the word before it wakes the sleepers,
            // so a thread cannot sleep through it here. A fork usually
            // lets go within a millisecond or two: wait that long once per
            // fork (woken when it does), and only then give up.
            let forking = unless_forking && v & FORKING != 0;
            if forking {
                let fork = FORK_GEN.load(Ordering::Relaxed);
                let kt = thread::kernel_thread();
                // SAFETY: the thread's own state.
                unsafe {
                    if waited_for_fork || (*kt).fork_given_up == fork {
                        (*kt).fork_given_up = fork;
                        return Got::Forking;
                    }
                }
            }
            if v & WAITERS == 0
                && self
                    .0
                    .compare_exchange(v, v | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            waited_for_fork |= forking;
            sys::futex_wait(&self.0, v | WAITERS, forking.then_some(FORK_GRACE_NS));
        }
    }

    /// Takes the lock, unless a fork holds it (see the module doc): the
    /// forking thread itself borrows it, any other gets `Got::Forking`
    /// rather than wait.
    #[inline]
    pub fn lock_unless_forking(&self) -> Got {
        let me = thread::tid();
        if self
            .0
            .compare_exchange(UNLOCKED, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Got::Taken;
        }
        self.lock_contended(me, true)
    }

    /// Called by the forking thread on each lock it holds, once it holds
    /// them all: marks the word and wakes every waiter, so that those that
    /// may go around the lock do (the others sleep on).
    pub fn mark_forking(&self) {
        self.0.fetch_or(FORKING, Ordering::Relaxed);
        sys::futex_wake_all(&self.0);
    }

    /// Takes the lock only if it is free.
    #[inline]
    pub fn try_lock(&self) -> bool {
        self.0
            .compare_exchange(
                UNLOCKED,
                thread::tid(),
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
        match self.0.load(Ordering::Relaxed) {
            MARKED => Some(MARKED),
            v => match v & !(WAITERS | FORKING) {
                0 => None,
                tid => Some(tid),
            },
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
