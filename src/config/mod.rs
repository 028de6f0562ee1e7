//! Layer 3, `config`: glibc's `mp_` parameters, their defaults and limits,
//! and the three ways a program sets them: `mallopt`, the `MALLOC_*`
//! environment variables and `GLIBC_TUNABLES`; and the profile, which says
//! whether the allocator is glibc 2.36 exactly or adds the checks beyond it
//! (`profile`).
//!
//! Uses `os` and `chunk` (the size arithmetic behind the tcache limits).

pub mod profile;
pub mod tunables;
