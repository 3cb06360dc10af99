//! CPU-bound work over many independent items (xz decompression of packages, gzip of layers)
//! spread over every core, so a build uses the whole machine and stays deterministic: each
//! result lands in its item's place whatever order the threads finish in.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `work` on every item on as many threads as there are cores, the largest items (by
/// `size`) first so the threads finish together. Results come back in the items' order;
/// `None` only where a worker stopped before its item (a panic is passed on by the scope).
pub fn map_largest_first<T: Sync, R: Send>(
    items: &[T],
    size: impl Fn(&T) -> u64,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<Option<R>> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(size(&items[i])));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len()).max(1);
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some(&index) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let result = work(&items[index]);
                    if let Ok(mut slot) = slots[index].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    slots.into_iter().map(|slot| slot.into_inner().ok().flatten()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order() {
        let items: Vec<u64> = (0..50).collect();
        let squares = map_largest_first(&items, |n| *n, |n| n * n);
        assert_eq!(squares, items.iter().map(|n| Some(n * n)).collect::<Vec<_>>());
        assert!(map_largest_first(&[] as &[u64], |n| *n, |n| *n).is_empty());
    }
}
