//! The layout description of scripts/heaplib/layout.txt, which heap-inspect
//! and heap-map read processes with, against the real structs: every entry
//! of the file must equal the `offset_of!` / `size_of` (or the constant) it
//! names, and every layout the scripts rely on must have its entry. A change
//! of a struct that forgets the scripts fails here.

use core::mem::{MaybeUninit, offset_of};
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::collections::BTreeMap;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use crate::arena::heap::HeapInfo;
use crate::arena::largecache::LargeCache;
use crate::arena::mmapped::registry::{self, Shared, Table};
use crate::arena::state::Arena;
use crate::arena::tcache::{Entry, Tcache};
use crate::chunk::Chunk;
use crate::config::tunables::Params;
use crate::os::lock::Lock;
use crate::report::debuginfo::{self, DEBUG_INFO, DebugInfo, LAYOUT, layout_hash};
use crate::thread::tls::ThreadState;

/// The file's entries: "struct NAME", "field NAME.FIELD", "const NAME" or
/// "version" -> the numbers that follow.
fn parse(text: &str) -> BTreeMap<String, Vec<u64>> {
    let mut entries = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split('#').next().unwrap().split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        let (key, nums) = match words[0] {
            "version" => ("version".to_string(), &words[1..]),
            "struct" | "field" | "const" if words.len() > 2 => {
                (format!("{} {}", words[0], words[1]), &words[2..])
            }
            _ => panic!("layout.txt line {}: cannot read '{line}'", n + 1),
        };
        let nums = nums
            .iter()
            .map(|w| match w.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => w.parse(),
            })
            .collect::<Result<Vec<u64>, _>>()
            .unwrap_or_else(|_| panic!("layout.txt line {}: a bad number in '{line}'", n + 1));
        assert!(
            entries.insert(key.clone(), nums).is_none(),
            "layout.txt line {}: {key} twice",
            n + 1
        );
    }
    entries
}

fn pointee_size<T>(_: *const T) -> usize {
    size_of::<T>()
}

/// `field` entries: offset_of and the field's size, from an uninitialised
/// value (only field addresses are taken, nothing is read).
macro_rules! fields {
    ($want:ident, $name:literal: $ty:ty { $($f:ident),* $(,)? }) => {
        $want.insert(format!("struct {}", $name), std::vec![size_of::<$ty>() as u64]);
        $({
            let u = MaybeUninit::<$ty>::uninit();
            // SAFETY: a place expression on the uninitialised value, only
            // for its address: nothing is read.
            let f = unsafe { &raw const (*u.as_ptr()).$f };
            $want.insert(
                format!("field {}.{}", $name, stringify!($f)),
                std::vec![offset_of!($ty, $f) as u64, pointee_size(f) as u64],
            );
        })*
    };
}

/// The offset and size of chunk header word `which`, found by writing it
/// with its accessor into a zeroed buffer and seeing which word changed.
fn chunk_word(which: &str) -> Vec<u64> {
    let mut buf = [0usize; 8];
    let c = Chunk::from_ptr(buf.as_mut_ptr().cast());
    let p = Chunk::from_ptr(0x3330 as *mut u8);
    // SAFETY: every header word of the chunk lies in the buffer.
    unsafe {
        match which {
            "prev_size" => c.set_prev_size(7),
            "size" => c.set_head(7),
            "fd" => c.set_fd(p),
            "bk" => c.set_bk(p),
            _ => unreachable!("{which}"),
        }
    }
    let idx = buf.iter().position(|&w| w != 0).expect("nothing written");
    assert_eq!(buf.iter().filter(|&&w| w != 0).count(), 1);
    std::vec![(idx * size_of::<usize>()) as u64, size_of::<usize>() as u64]
}

/// The bits of a lock word that `Lock::holder` leaves out of the id.
fn lock_waiter_bits() -> u64 {
    let l = Lock::new();
    // SAFETY: Lock is repr(transparent) over an AtomicU32.
    let word = unsafe { &*(&raw const l).cast::<AtomicU32>() };
    let mut mask = 0;
    for bit in 0..32 {
        word.store((1 << bit) | 0x10_0000, Relaxed);
        if bit != 20 && l.holder() == Some(0x10_0000) {
            mask |= 1u64 << bit;
        }
    }
    word.store(0, Relaxed);
    mask
}

/// What the file must say, from the Rust side.
fn expected() -> BTreeMap<String, Vec<u64>> {
    let mut want = BTreeMap::new();
    want.insert("version".to_string(), std::vec![debuginfo::VERSION as u64]);
    fields!(want, "DebugInfo": DebugInfo {
        magic, version, size, layout_hash, main_arena, mp,
        thread_list_head, thread_list_lock, mmapped_registry, profile,
    });
    fields!(want, "Arena": Arena {
        mutex, flags, fastbins, top, last_remainder, bins, next,
        attached_threads, system_mem, max_system_mem,
    });
    fields!(want, "HeapInfo": HeapInfo { ar_ptr, prev, size, mprotect_size });
    fields!(want, "Params": Params {
        trim_threshold, top_pad, mmap_threshold, arena_max,
        n_mmaps, max_n_mmaps, no_dyn_threshold, mmapped_mem, max_mmapped_mem, sbrk_base,
    });
    fields!(want, "ThreadState": ThreadState { tcache, arena, tid, next });
    fields!(want, "Tcache": Tcache { counts, entries });
    fields!(want, "LargeCache": LargeCache { bytes, chunks });
    fields!(want, "Entry": Entry { next });
    want.remove("struct Entry"); // only its link is read
    fields!(want, "Shared": Shared { lock, table });
    fields!(want, "Table": Table { slots, cap });
    want.remove("struct Table"); // inside Shared
    want.insert("struct Lock".into(), std::vec![size_of::<Lock>() as u64]);

    // A slot of the mmap'd-chunk table is the pointee of Table::slots:
    // [start, length].
    let u = MaybeUninit::<Table>::uninit();
    // SAFETY: only the field's address is taken.
    let slots = unsafe { &raw const (*u.as_ptr()).slots };
    fn slot_size<S>(_: *const *mut S) -> usize {
        size_of::<S>()
    }
    let word = size_of::<usize>() as u64;
    want.insert("struct Slot".into(), std::vec![slot_size(slots) as u64]);
    want.insert("field Slot.start".into(), std::vec![0, word]);
    want.insert("field Slot.len".into(), std::vec![word, word]);

    for word in ["prev_size", "size", "fd", "bk"] {
        want.insert(format!("field chunk.{word}"), chunk_word(word));
    }

    // The element sizes of array fields (a bin is a pair of elements: fd, bk).
    fn elem<T, const N: usize>(_: *const [T; N]) -> usize {
        size_of::<T>()
    }
    let (av, tc) = (
        MaybeUninit::<Arena>::uninit(),
        MaybeUninit::<Tcache>::uninit(),
    );
    let (av, tc) = (av.as_ptr(), tc.as_ptr());
    // SAFETY: only field addresses are taken; nothing is read.
    let (count_size, bin_word, fastbin_size) = unsafe {
        (
            elem(&raw const (*tc).counts),
            elem(&raw const (*av).bins),
            elem(&raw const (*av).fastbins),
        )
    };
    let consts: [(&str, u64); 25] = [
        ("DEBUG_MAGIC", debuginfo::MAGIC),
        (
            "NONCONTIGUOUS_BIT",
            crate::arena::state::NONCONTIGUOUS_BIT as u64,
        ),
        ("NFASTBINS", crate::chunk::bins::NFASTBINS as u64),
        ("NBINS", crate::chunk::bins::NBINS as u64),
        ("NSMALLBINS", crate::chunk::bins::NSMALLBINS as u64),
        ("MIN_LARGE_SIZE", crate::chunk::bins::MIN_LARGE_SIZE as u64),
        ("LOCK_WAITERS", lock_waiter_bits()),
        ("LOCK_MARKED", crate::os::lock::MARKED as u64),
        ("HEAP_MAX_SIZE", crate::arena::heap::HEAP_MAX_SIZE as u64),
        ("CHUNK_HDR_SZ", crate::chunk::CHUNK_HDR_SZ as u64),
        ("MALLOC_ALIGNMENT", crate::chunk::MALLOC_ALIGNMENT as u64),
        ("MINSIZE", crate::chunk::MINSIZE as u64),
        ("PREV_INUSE", crate::chunk::PREV_INUSE as u64),
        ("IS_MMAPPED", crate::chunk::IS_MMAPPED as u64),
        ("NON_MAIN_ARENA", crate::chunk::NON_MAIN_ARENA as u64),
        (
            "TCACHE_MAX_BINS",
            crate::chunk::bins::TCACHE_MAX_BINS as u64,
        ),
        ("MMAPPED_EMPTY", registry::EMPTY as u64),
        ("MMAPPED_GONE", registry::GONE as u64),
        (
            "DUMP_LIST_LIMIT",
            crate::arena::walk::DUMP_LIST_LIMIT as u64,
        ),
        (
            "TCACHE_WALK_LIMIT",
            crate::report::lists::TCACHE_WALK_LIMIT as u64,
        ),
        (
            "THREAD_LIST_LIMIT",
            crate::thread::tls::registry::LIST_LIMIT as u64,
        ),
        // Sizes the scripts take from these rather than from a field:
        ("SIZE_SZ", crate::chunk::SIZE_SZ as u64),
        ("TCACHE_COUNT_SIZE", count_size as u64),
        ("BIN_SIZE", 2 * bin_word as u64),
        ("FASTBIN_SIZE", fastbin_size as u64),
    ];
    for (name, v) in consts {
        want.insert(format!("const {name}"), std::vec![v]);
    }
    want
}

#[test]
fn every_entry_of_layout_txt_matches_the_rust_structs() {
    let file = parse(LAYOUT);
    let want = expected();
    let mut wrong = Vec::new();
    for (key, got) in &file {
        match want.get(key) {
            Some(w) if w == got => {}
            Some(w) => wrong.push(format!(
                "{key}: layout.txt says {got:?}, the Rust side {w:?}"
            )),
            None => wrong.push(format!("{key}: in layout.txt, unknown to this test")),
        }
    }
    for key in want.keys().filter(|k| !file.contains_key(*k)) {
        wrong.push(format!("{key}: missing from layout.txt"));
    }
    assert!(
        wrong.is_empty(),
        "scripts/heaplib/layout.txt disagrees with the code:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_descriptor_points_at_the_statics_and_hashes_the_layout() {
    let d = &DEBUG_INFO;
    assert_eq!(d.magic.to_le_bytes(), *b"ptmrsdbg");
    assert_eq!(d.version, debuginfo::VERSION);
    assert_eq!(d.size as usize, size_of::<DebugInfo>());
    assert_eq!(d.layout_hash, layout_hash(LAYOUT));
    assert_eq!(
        d.main_arena,
        crate::arena::state::main_arena().cast_const().cast()
    );
    assert_eq!(d.mp, (&raw const crate::config::tunables::MP).cast());
    assert_eq!(
        d.thread_list_head,
        (&raw const crate::thread::tls::registry::HEAD).cast()
    );
    assert_eq!(
        d.thread_list_lock,
        (&raw const crate::thread::tls::registry::REGISTRY_LOCK).cast()
    );
    assert_eq!(d.mmapped_registry, (&raw const registry::SHARED).cast());
    assert_eq!(
        d.profile,
        (&raw const crate::config::profile::PROFILE).cast()
    );
}

#[test]
fn the_layout_hash_skips_comments_and_spacing_as_the_scripts_do() {
    // The value scripts/heaplib's layout_hash gives for both texts.
    let a = "  a  b\t# c d\n\n# only a comment\nvalue\t 0x10  \r\n";
    let b = "a b\nvalue 0x10";
    assert_eq!(layout_hash(a), 0x44f9_4470_21e1_ca50);
    assert_eq!(layout_hash(b), 0x44f9_4470_21e1_ca50);
    assert_ne!(layout_hash("a b\nvalue 0x1 0"), layout_hash(b));
    assert_ne!(layout_hash(LAYOUT), layout_hash(""));
}

/// Reads a word at `base + off` (memory of this process).
fn word_at(base: usize, off: u64) -> usize {
    // SAFETY: callers pass addresses inside live statics or mappings.
    unsafe { ((base + off as usize) as *const usize).read() }
}

#[test]
fn the_mmapped_record_is_found_through_the_layout() {
    let file = parse(LAYOUT);
    let off = |k: &str| file[k][0];
    let start = 0x7e57_0000_0000usize;
    assert!(registry::insert(start, 0x5000));
    let reg = DEBUG_INFO.mmapped_registry as usize;
    // Read the table as heap-inspect does, with the lock held so that no
    // other test moves it meanwhile.
    // SAFETY: the registry is a static.
    let lock = unsafe { &*((reg + off("field Shared.lock") as usize) as *const Lock) };
    lock.lock();
    let table = reg + off("field Shared.table") as usize;
    let slots = word_at(table, off("field Table.slots"));
    let cap = word_at(table, off("field Table.cap"));
    let slot = file["struct Slot"][0] as usize;
    let found = (0..cap)
        .map(|i| slots + i * slot)
        .find(|&s| word_at(s, off("field Slot.start")) == start)
        .map(|s| word_at(s, off("field Slot.len")));
    lock.unlock();
    assert!(matches!(registry::take(start, 0x5000), Ok(true)));
    assert_eq!(found, Some(0x5000));
}

#[test]
fn a_registered_thread_is_found_through_the_layout() {
    std::thread::spawn(|| {
        let file = parse(LAYOUT);
        let off = |k: &str| file[k][0];
        crate::thread::tls::registry::join();
        let me = crate::thread::tls::thread_state() as usize;
        let tid = crate::os::thread::tid();
        crate::thread::tls::registry::REGISTRY_LOCK.lock();
        let mut t = word_at(DEBUG_INFO.thread_list_head as usize, 0);
        let mut seen = None;
        while t != 0 {
            if t == me {
                // SAFETY: a registered state, alive (it is ours).
                seen = Some(unsafe {
                    ((t + off("field ThreadState.tid") as usize) as *const u32).read()
                });
            }
            t = word_at(t, off("field ThreadState.next"));
        }
        crate::thread::tls::registry::REGISTRY_LOCK.unlock();
        crate::thread::tls::registry::leave();
        assert_eq!(seen, Some(tid));
    })
    .join()
    .unwrap();
}
