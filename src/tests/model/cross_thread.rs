//! The model run across threads: blocks made in one thread and freed or
//! reallocated in another stay intact, and both threads' arenas stay
//! consistent while the other runs.

use super::*;

/// Blocks made in one thread and freed (or reallocated) in another: the
/// freeing thread's tcache then holds chunks of the other thread's arena,
/// and both arenas are checked while the other thread runs.
#[test]
fn model_blocks_freed_by_another_thread() {
    use std::sync::mpsc;
    MP.no_dyn_threshold.store(1, Relaxed);
    install_abort_reporter();
    let seed = env_u64("PTMALLOC_RS_MODEL_SEED").unwrap_or(0x5eed_0002);
    let (tx, rx) = mpsc::sync_channel::<(usize, Block)>(64);
    let producer = std::thread::spawn(move || {
        let mut m = Model::new(seed);
        for round in 0..3000u64 {
            m.step();
            if round % 3 == 0
                && let Some((a, b)) = m.take("hand-over")
            {
                m.note(format!("hand over {a:#x} [{}]", b.len));
                let _ = tx.send((a, b));
            }
        }
        m.finish();
    });
    let consumer = std::thread::spawn(move || {
        let mut m = Model::new(seed ^ 0xffff);
        for (a, b) in rx {
            if !intact(a as *const u8, b, b.len) {
                m.fail(&format!("handed-over block {a:#x} lost its contents"));
            }
            // Keep some, so they are freed later among other operations.
            m.live.insert(a, b);
            m.live_bytes += b.len;
            m.step();
        }
        m.finish();
    });
    let p = producer.join();
    let c = consumer.join();
    assert!(
        p.is_ok() && c.is_ok(),
        "cross-thread model run failed (see above)"
    );
}
