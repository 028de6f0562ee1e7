//! Bin arithmetic: which bin a chunk size belongs to, and the binmap.
//!
//! Every arena has:
//! - 10 **fastbins** for chunk sizes 32..=176 (only sizes up to
//!   `global_max_fast`, 128 by default, are used): singly linked, LIFO,
//!   never coalesced until `malloc_consolidate`;
//! - 126 doubly linked bins in `bins[]`, each a fake chunk whose `fd`/`bk`
//!   words are two entries of the array: bin 1 is the **unsorted** bin,
//!   bins 2..=63 the **small** bins (one exact size each, 32..=1008, FIFO),
//!   bins 64..=126 the **large** bins (geometrically growing ranges, each
//!   kept sorted by size, largest first, with `fd_nextsize`/`bk_nextsize`
//!   skipping from one size to the next);
//! - a **binmap**: one bit per bin, set when the bin may be non-empty
//!   (invariant: bit clear ⇒ bin empty; a set bit over an empty bin is
//!   cleared lazily by the search that finds it empty).

use super::{MALLOC_ALIGNMENT, MINSIZE, SIZE_SZ, request2size};

pub const NBINS: usize = 128;
pub const NSMALLBINS: usize = 64;
pub const SMALLBIN_WIDTH: usize = 16;
/// Chunks smaller than this go to small bins.
pub const MIN_LARGE_SIZE: usize = NSMALLBINS * SMALLBIN_WIDTH;
/// The largest fastbin-able request glibc accepts for M_MXFAST.
pub const MAX_FAST_SIZE: usize = 80 * SIZE_SZ / 4;
pub const NFASTBINS: usize = fastbin_index(request2size(MAX_FAST_SIZE)) + 1;
/// Default M_MXFAST: requests up to this many bytes use fastbins.
pub const DEFAULT_MXFAST: usize = 64 * SIZE_SZ / 4;
/// Freeing a chunk of at least this size (after coalescing) first empties the
/// fastbins, then considers trimming.
pub const FASTBIN_CONSOLIDATION_THRESHOLD: usize = 65536;

pub const BINMAPSHIFT: usize = 5;
pub const BITSPERMAP: usize = 1 << BINMAPSHIFT;
pub const BINMAPSIZE: usize = NBINS / BITSPERMAP;

/// The unsorted bin.
pub const UNSORTED: usize = 1;

const _: () = assert!(NFASTBINS == 10 && MAX_FAST_SIZE == 160 && DEFAULT_MXFAST == 128);

#[inline]
pub const fn fastbin_index(size: usize) -> usize {
    (size >> 4) - 2
}

#[inline]
pub const fn in_smallbin_range(size: usize) -> bool {
    size < MIN_LARGE_SIZE
}

#[inline]
pub const fn smallbin_index(size: usize) -> usize {
    size >> 4
}

/// Large bins: 32 bins 64 bytes apart, 16 of 512, 8 of 4096, 4 of 32768,
/// 2 of 262144, and one for the rest.
#[inline]
pub const fn largebin_index(size: usize) -> usize {
    if (size >> 6) <= 48 {
        48 + (size >> 6)
    } else if (size >> 9) <= 20 {
        91 + (size >> 9)
    } else if (size >> 12) <= 10 {
        110 + (size >> 12)
    } else if (size >> 15) <= 4 {
        119 + (size >> 15)
    } else if (size >> 18) <= 2 {
        124 + (size >> 18)
    } else {
        126
    }
}

#[inline]
pub const fn bin_index(size: usize) -> usize {
    if in_smallbin_range(size) {
        smallbin_index(size)
    } else {
        largebin_index(size)
    }
}

#[inline]
pub const fn idx2block(i: usize) -> usize {
    i >> BINMAPSHIFT
}

#[inline]
pub const fn idx2bit(i: usize) -> u32 {
    1 << (i & (BITSPERMAP - 1))
}

// The tcache's bins: one per chunk size from MINSIZE up, 16 bytes apart.

pub const TCACHE_MAX_BINS: usize = 64;
/// Default entries per bin: glibc's 7 (more saves time but changes every
/// layout after the eighth free of a size; `tcache_count` sets it).
pub const TCACHE_FILL_COUNT: usize = 7;
/// Largest request the tcache serves by default (chunk 1040).
pub const TCACHE_MAX_BYTES: usize = tidx2usize(TCACHE_MAX_BINS - 1);

/// The bin of chunk size `nb` (a multiple of 16, at least MINSIZE).
#[inline]
pub const fn csize2tidx(nb: usize) -> usize {
    (nb - MINSIZE) / MALLOC_ALIGNMENT
}

/// The chunk size of bin `idx` (the inverse of `csize2tidx`).
pub const fn tidx2csize(idx: usize) -> usize {
    idx * MALLOC_ALIGNMENT + MINSIZE
}

/// The largest request served by bin `idx`.
pub const fn tidx2usize(idx: usize) -> usize {
    tidx2csize(idx) - SIZE_SZ
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcache_bins_cover_requests_up_to_1032_bytes() {
        assert_eq!(csize2tidx(32), 0);
        assert_eq!(csize2tidx(48), 1);
        assert_eq!(csize2tidx(request2size(1032)), 63);
        assert_eq!(csize2tidx(request2size(1033)), 64);
        assert_eq!(TCACHE_MAX_BYTES, 1032);
        for idx in 0..TCACHE_MAX_BINS {
            assert_eq!(csize2tidx(request2size(tidx2usize(idx))), idx);
        }
    }

    #[test]
    fn fastbins_cover_chunk_sizes_32_to_176() {
        assert_eq!(fastbin_index(32), 0);
        assert_eq!(fastbin_index(128), 6);
        assert_eq!(fastbin_index(176), 9);
    }

    #[test]
    fn small_bins_hold_one_size_each_below_1024() {
        assert_eq!(smallbin_index(32), 2);
        assert_eq!(smallbin_index(1008), 63);
        assert!(in_smallbin_range(1008));
        assert!(!in_smallbin_range(1024));
        for s in (32..1024).step_by(16) {
            assert_eq!(bin_index(s), s / 16);
        }
    }

    #[test]
    fn large_bins_are_monotonic_and_span_64_to_126() {
        assert_eq!(largebin_index(1024), 64);
        assert_eq!(largebin_index(1024 + 63), 64);
        assert_eq!(largebin_index(1024 + 64), 65);
        assert_eq!(largebin_index(3072), 96);
        assert_eq!(largebin_index(usize::MAX & !15), 126);
        let mut last = 64;
        let mut s = 1024;
        while s < 1 << 30 {
            let i = largebin_index(s);
            assert!(i >= last && i <= 126, "size {s} -> {i}");
            last = i;
            s += 16;
        }
        assert_eq!(last, 126);
    }

    #[test]
    fn binmap_blocks_and_bits() {
        assert_eq!(BINMAPSIZE, 4);
        assert_eq!(idx2block(31), 0);
        assert_eq!(idx2block(32), 1);
        assert_eq!(idx2bit(33), 2);
        assert_eq!(idx2bit(127), 1 << 31);
    }
}
