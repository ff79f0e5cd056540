//! Running a plan on tract's thread pool with its other threads awake.
//!
//! tract runs each parallel op through its executor's rayon pool. Called
//! from outside the pool, every such op hands its work to the pool and
//! waits for it; inside the pool, between two parallel ops the other
//! threads find nothing to do, go to sleep after a few microseconds, and
//! the next op wakes them through the kernel (a futex wake, costly on a
//! virtual machine: about 10% of a 2-thread `edge` int8 frame went to the
//! scheduler). [`run_in_pool`] runs the whole plan on one pool thread and
//! keeps the others polling the pool for work until it returns, as
//! onnxruntime's own pool spins during a run.

use std::sync::atomic::{AtomicBool, Ordering};
use tract_core::tract_linalg::multithread::Executor;

/// Run `f` (a plan's run) on a thread of `executor`'s pool while the
/// pool's other threads poll for the work its parallel ops split off, and
/// return its result. With a single-threaded executor, `f` runs here.
pub fn run_in_pool<R: Send>(executor: &Executor, f: impl FnOnce() -> R + Send) -> R {
    let Executor::MultiThread(pool) = executor else {
        return f();
    };
    if pool.current_num_threads() < 2 {
        return f();
    }
    pool.install(|| {
        let home = pool.current_thread_index();
        let done = AtomicBool::new(false);
        pool.scope(|scope| {
            for _ in 1..pool.current_num_threads() {
                scope.spawn(|_| {
                    // The thread that runs `f` may pick a poller up while it
                    // waits inside `f`: it must not poll for its own end.
                    if pool.current_thread_index() == home {
                        return;
                    }
                    while !done.load(Ordering::Acquire) {
                        match pool.yield_now() {
                            Some(rayon::Yield::Executed) => {}
                            Some(rayon::Yield::Idle) => std::hint::spin_loop(),
                            None => return,
                        }
                    }
                });
            }
            // Ends the polling even when `f` panics.
            struct Done<'a>(&'a AtomicBool);
            impl Drop for Done<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Release);
                }
            }
            let _done = Done(&done);
            f()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_core::tract_linalg::multithread::{multithread_tract_scope, par_chunks_mut};

    /// `f` runs on a pool thread, its parallel work covers every chunk once,
    /// the call returns `f`'s result, and a panic in `f` comes back out
    /// instead of leaving the pollers running.
    #[test]
    fn runs_parallel_work_on_the_pool_and_returns() {
        let executor = Executor::multithread(3);
        for round in 0..50usize {
            let sum = run_in_pool(&executor, || {
                assert!(rayon::current_thread_index().is_some());
                let mut out = vec![0usize; 4096];
                multithread_tract_scope(executor.clone(), || {
                    par_chunks_mut(&mut out, 1, 1 << 20, |first, chunk| {
                        for (i, v) in chunk.iter_mut().enumerate() {
                            *v += first + i + round;
                        }
                        Ok(())
                    })
                })
                .unwrap();
                out.iter().sum::<usize>()
            });
            assert_eq!(sum, (0..4096).map(|i| i + round).sum::<usize>());
        }
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_in_pool(&executor, || panic!("in f"))
        }));
        assert!(caught.is_err());
        assert_eq!(run_in_pool(&executor, || 7), 7);
        assert_eq!(run_in_pool(&Executor::SingleThread, || 8), 8);
    }
}
