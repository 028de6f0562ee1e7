//! Layer 5, `thread`: which arena and which cache serve the calling thread.
//!
//! The thread's state in initial-exec TLS and the list of threads with a
//! tcache (`tls`); the set of arenas, how a thread gets one, reuses one and
//! gives it back at exit (`arenas`); fork's handlers and the frees deferred
//! around a fork (`fork`); and the route of each request from the thread:
//! tcache, then an arena, then a mapping of its own (`alloc`).
//!
//! Uses `os`, `chunk`, `config` and `arena`.

pub mod alloc;
pub mod arenas;
pub mod fork;
pub mod tls;
