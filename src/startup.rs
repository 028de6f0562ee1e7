//! Layer 7, with `api`: what runs once when the library is loaded, before
//! `main` (a constructor). By then libc has set up `environ`, so the
//! `MALLOC_*` and `GLIBC_TUNABLES` settings are read (a malloc that came
//! earlier, from the dynamic linker or another constructor, read them on
//! the spot); the heap dump's signal is installed if the environment asks
//! for it, and a recording's flush at exit; fork's handlers are registered; and the pthread key whose
//! destructor detaches an exiting thread is made, so that no thread has to
//! make it in the middle of its first malloc.
//!
//! Everything here must also work when it never runs at all (a static
//! constructor of another library that allocates runs first): the main
//! arena is a static and every setting has its default until read.

#[ctor::ctor(unsafe)]
fn at_load() {
    crate::config::tunables::read_environment();
    crate::report::inspect::install_from_environment();
    crate::os::record::install_exit_flush();
    crate::thread::fork::register_handlers();
    crate::thread::arenas::exit_key();
}
