//! Sorting words in place for the reports (the dump's address sets, the
//! heap checker's batches), without allocating and without a panic: core's
//! `sort_unstable` compiles one in for orders that are not total, which a
//! word's order always is. A heapsort: no recursion, no extra memory,
//! O(n log n) at worst.

/// Sorts `v` in ascending order.
pub fn sort(v: &mut [usize]) {
    let n = v.len();
    for root in (0..n / 2).rev() {
        sift_down(v, root, n);
    }
    for end in (1..n).rev() {
        // SAFETY: `0 < end < n = v.len()`.
        unsafe { swap(v, 0, end) };
        sift_down(v, 0, end);
    }
}

/// Restores the max-heap order of `v[..end]` below `root` (`end <= v.len()`).
fn sift_down(v: &mut [usize], mut root: usize, end: usize) {
    debug_assert!(end <= v.len());
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        // SAFETY: every index read is below `end <= v.len()` (checked just
        // above, or `child + 1 < end`).
        unsafe {
            if child + 1 < end && v.get_unchecked(child) < v.get_unchecked(child + 1) {
                child += 1;
            }
            if v.get_unchecked(root) >= v.get_unchecked(child) {
                return;
            }
            swap(v, root, child);
        }
        root = child;
    }
}

/// # Safety
/// `a` and `b` are below `v.len()`.
unsafe fn swap(v: &mut [usize], a: usize, b: usize) {
    let p = v.as_mut_ptr();
    // SAFETY: both in bounds (caller); `ptr::swap` allows `a == b`.
    unsafe { core::ptr::swap(p.add(a), p.add(b)) }
}

#[cfg(test)]
mod tests {
    use super::sort;

    #[test]
    fn sorts_like_the_standard_sort() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for n in [0usize, 1, 2, 3, 7, 64, 1000, 2048] {
            let mut v: std::vec::Vec<usize> = (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed % 500) as usize
                })
                .collect();
            let mut want = v.clone();
            want.sort();
            sort(&mut v);
            assert_eq!(v, want, "n = {n}");
        }
    }
}
