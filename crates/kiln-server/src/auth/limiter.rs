//! Slows down token guessing: each source address may fail authentication a limited number
//! of times per window, after which it gets `429` until the window passes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Failed attempts allowed per address per window, unless configured otherwise.
pub const MAX_FAILURES: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; the oldest windows are dropped first.
const MAX_TRACKED: usize = 100_000;

pub struct Limiter {
    max_failures: u32,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    /// Set once any failure is tracked, so good requests skip the lock while nobody fails.
    any_failures: AtomicBool,
}

impl Default for Limiter {
    fn default() -> Limiter {
        Limiter::new(MAX_FAILURES)
    }
}

impl Limiter {
    pub fn new(max_failures: u32) -> Limiter {
        Limiter { max_failures: max_failures.max(1), failures: Mutex::default(), any_failures: AtomicBool::new(false) }
    }

    /// Seconds to wait if `address` is blocked now.
    pub fn blocked(&self, address: IpAddr) -> Option<u64> {
        if !self.any_failures.load(Ordering::Relaxed) {
            return None;
        }
        let failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (start, count) = failures.get(&address)?;
        let elapsed = start.elapsed();
        (elapsed < WINDOW && *count >= self.max_failures).then(|| (WINDOW - elapsed).as_secs().max(1))
    }

    pub fn failed(&self, address: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.any_failures.store(true, Ordering::Relaxed);
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let entry = failures.entry(address).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit() {
        let limiter = Limiter::default();
        let address: IpAddr = [127, 0, 0, 9].into();
        for _ in 0..MAX_FAILURES - 1 {
            limiter.failed(address);
        }
        assert!(limiter.blocked(address).is_none());
        limiter.failed(address);
        assert!(limiter.blocked(address).is_some());
        assert!(limiter.blocked([127, 0, 0, 10].into()).is_none());
    }
}
