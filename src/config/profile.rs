//! The profile: which promise the allocator keeps.
//!
//! - `glibc` (the default) is glibc 2.36: the same policies, so the same
//!   addresses for the same calls, and the same outcome when a program
//!   corrupts its heap: what glibc catches is caught with glibc's message,
//!   what glibc lets through goes through. The one difference allowed: where
//!   glibc would crash inside the allocator (a link into unmapped memory),
//!   a clean abort with a message instead.
//! - `hardened`: the same layouts, plus every check beyond glibc's: a
//!   freed pointer must lie in memory an arena of ours got from the system,
//!   every bin link must point into the arena's memory before it is
//!   followed, and a chunk freed twice with another free in between (the
//!   fastbin a-b-a) is caught.
//!
//! - `fast`: glibc's checks and structures, with policies of its own where
//!   they measure faster: a larger tcache (`FAST_TCACHE_COUNT` chunks per
//!   bin unless `tcache_count` is set), a per-thread cache of larger chunks
//!   (`arena::largecache`), frees of other arenas' small chunks handed over
//!   in batches (`arena::remote`), the main heap trimmed only once it has
//!   stopped growing (`arena::trim`), room to grow in `realloc`
//!   (`thread::alloc`) and a cache of freed mappings (`arena::mmapped`).
//!   Addresses differ from glibc's; the README says what each costs.
//!
//! Chosen with `PTMALLOC_RS_PROFILE=glibc|hardened|fast` or with the tunable
//! `GLIBC_TUNABLES=ptmalloc_rs.profile=...` (the tunable wins), read with
//! the other settings before the first allocation takes its memory. The
//! individual tunables still apply on top of a profile.

use core::sync::atomic::{AtomicU8, Ordering::Relaxed};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Profile {
    Glibc = 0,
    Hardened = 1,
    Fast = 2,
}

/// The fast profile's tcache_count (glibc's default is 7).
pub const FAST_TCACHE_COUNT: usize = 32;

/// The profile in force (`Profile` as a byte; `report::debuginfo` gives its
/// address to outside tools).
pub(crate) static PROFILE: AtomicU8 = AtomicU8::new(Profile::Glibc as u8);

/// Whether the checks beyond glibc's are on.
#[inline(always)]
pub fn hardened() -> bool {
    PROFILE.load(Relaxed) == Profile::Hardened as u8
}

/// Whether the fast profile's policies are on.
#[inline(always)]
pub fn fast() -> bool {
    PROFILE.load(Relaxed) == Profile::Fast as u8
}

pub fn current() -> Profile {
    match PROFILE.load(Relaxed) {
        1 => Profile::Hardened,
        2 => Profile::Fast,
        _ => Profile::Glibc,
    }
}

pub fn name() -> &'static str {
    match current() {
        Profile::Glibc => "glibc",
        Profile::Hardened => "hardened",
        Profile::Fast => "fast",
    }
}

/// Selects the profile called `name`; false (nothing changed) for a name
/// that is not one.
pub fn select(name: &[u8]) -> bool {
    let Some(p) = parse(name) else {
        return false;
    };
    PROFILE.store(p as u8, Relaxed);
    true
}

/// The profile called `name`, if one is.
pub fn parse(name: &[u8]) -> Option<Profile> {
    match name {
        b"glibc" => Some(Profile::Glibc),
        b"hardened" => Some(Profile::Hardened),
        b"fast" => Some(Profile::Fast),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The other unit tests run at the same time in this process: the
    // profile itself is not switched here.
    #[test]
    fn profiles_are_named_and_glibc_is_the_default() {
        assert_eq!(current(), Profile::Glibc);
        assert_eq!(name(), "glibc");
        assert_eq!(parse(b"glibc"), Some(Profile::Glibc));
        assert_eq!(parse(b"hardened"), Some(Profile::Hardened));
        assert_eq!(parse(b"fast"), Some(Profile::Fast));
        assert_eq!(parse(b"fastest"), None);
        assert_eq!(parse(b""), None);
        assert!(!select(b"fastest"));
        assert_eq!(current(), Profile::Glibc);
    }
}
