//! Layer 3, `config`: glibc's `mp_` parameters, their defaults and limits,
//! and the three ways a program sets them: `mallopt`, the `MALLOC_*`
//! environment variables and `GLIBC_TUNABLES`.
//!
//! Uses `os` and `chunk` (the size arithmetic behind the tcache limits).

pub mod profile;
pub mod tunables;
