//! Model runs of random sequences, each in a thread of its own: the
//! regular run (`make test`: deterministic thresholds, a fixed seed) proves
//! that every call of the C API keeps the model's blocks intact and every
//! arena consistent; the long run (`make fuzz`) does the same with the
//! dynamic mmap threshold at work, from a seed of the clock.

use super::*;

/// Runs `sequences` random sequences from `run_seed`, each (1..=`max_len`
/// operations, or twice that for the narrow profiles, then every block
/// checked and freed) in a thread of its own: a thread arena, and a tcache
/// that starts empty and is flushed back into the arena when the thread
/// ends. The arena is the one the previous sequence's thread left on the
/// free list (unless another test's thread took it meanwhile).
fn run_sequences(run_seed: u64, sequences: u64, max_len: u64, dynamic_threshold: bool) {
    install_abort_reporter();
    let mut cov = Coverage::default();
    let mut seeds = Rng(run_seed);
    for i in 0..sequences {
        let seed = if sequences == 1 {
            run_seed
        } else {
            seeds.next()
        };
        CURRENT_SEED.store(seed, Relaxed);
        if dynamic_threshold && seed % 2 == 0 {
            // The dynamic mmap threshold only rises: start half of the
            // sequences from the defaults again (only the fuzz run, alone
            // in its process, may touch these).
            MP.mmap_threshold
                .store(crate::config::tunables::DEFAULT_MMAP_THRESHOLD, Relaxed);
            MP.trim_threshold
                .store(crate::config::tunables::DEFAULT_TRIM_THRESHOLD, Relaxed);
        }
        let run = std::thread::spawn(move || {
            let mut m = Model::new(seed);
            let len = m.profile.length(&mut m.rng, max_len);
            while m.profile == Profile::FillHeap && m.live_bytes < FILL_BYTES {
                m.step();
            }
            for _ in 0..len {
                m.step();
            }
            m.finish();
            m.cov
        });
        match run.join() {
            Ok(c) => cov.add(&c),
            Err(_) => panic!(
                "model run from seed {run_seed:#x} failed in sequence {i} (seed {seed:#x}; see above)"
            ),
        }
        if sequences >= 1000 && (i + 1) % (sequences / 10) == 0 {
            std::eprintln!("model: {} of {sequences} sequences", i + 1);
        }
    }
    std::eprintln!(
        "model: {sequences} sequences, {} heap checks ({} with fastbin chunks, {} with binned chunks), {} mmap'd blocks, up to {} heaps",
        cov.checks,
        cov.with_fast,
        cov.with_binned,
        cov.mmapped,
        cov.max_heaps
    );
}

/// The regular run: deterministic thresholds (the dynamic mmap threshold
/// would make a sequence depend on what ran before), a fixed seed unless
/// PTMALLOC_RS_MODEL_SEED is set.
#[test]
fn model_random_sequences_through_the_c_api() {
    MP.no_dyn_threshold.store(1, Relaxed);
    let seed = env_u64("PTMALLOC_RS_MODEL_SEED").unwrap_or(0x5eed_0001);
    let n = env_u64("PTMALLOC_RS_MODEL_SEQUENCES").unwrap_or(2000);
    std::eprintln!("model: {n} sequences from seed {seed:#x}");
    run_sequences(seed, n, 120, false);
}

/// The long run of `make fuzz`: PTMALLOC_RS_FUZZ_SEQUENCES sequences
/// (default 200000) of up to 400 operations (twice that for the narrow
/// profiles), with the dynamic mmap threshold at work (half of the
/// sequences start from the default thresholds again), from
/// PTMALLOC_RS_MODEL_SEED or a seed from the clock (printed).
#[test]
#[ignore]
fn fuzz_random_sequences_long_run() {
    let seed = env_u64("PTMALLOC_RS_MODEL_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let n = env_u64("PTMALLOC_RS_FUZZ_SEQUENCES").unwrap_or(200_000);
    MP.no_dyn_threshold.store(0, Relaxed);
    std::eprintln!(
        "fuzz: {n} sequences from seed {seed:#x} (PTMALLOC_RS_MODEL_SEED={seed:#x} repeats this run)"
    );
    run_sequences(seed, n, 400, true);
}
