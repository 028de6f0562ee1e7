//! Layer 6, `report`: what the allocator tells about itself.
//!
//! glibc's `mallinfo`/`mallinfo2`, `malloc_stats`, `malloc_info` and
//! `malloc_trim` (`stats`); the heap dump (`inspect`), its closing "where is
//! my memory" figures (`explain`) and the lists both read (`lists`); the
//! descriptor outside tools read the state through (`debuginfo`); and the
//! heap-consistency checker (`verify`). None of them changes a heap's
//! layout, except `malloc_trim`, which trims as glibc's does.
//!
//! Uses every layer below it; nothing below uses it.

pub mod debuginfo;
pub mod explain;
pub mod inspect;
pub mod lists;
pub mod observe;
pub mod sort;
pub mod stats;
pub mod verify;
