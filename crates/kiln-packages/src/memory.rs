//! One memory budget per build, shared by every archive the build opens (in parallel too):
//! decompressed bytes are reserved from it before they are held, so a decompression bomb
//! ends in an error naming it once the build as a whole holds too much, and four bombs at
//! once cost no more memory than one.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes one build may hold in memory of what its archives decompress to. Clones share the
/// same count.
#[derive(Debug, Clone)]
pub struct MemoryBudget(Arc<Counter>);

#[derive(Debug)]
struct Counter {
    limit: u64,
    held: AtomicU64,
    peak: AtomicU64,
}

/// Taking `wanted` more bytes would pass the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the build's memory limit of {} ({limit} bytes)", human(*limit))]
pub struct OverBudget {
    pub limit: u64,
    pub wanted: u64,
}

impl MemoryBudget {
    pub fn new(limit: u64) -> MemoryBudget {
        MemoryBudget(Arc::new(Counter { limit, held: AtomicU64::new(0), peak: AtomicU64::new(0) }))
    }

    /// For callers that bound memory some other way (tests, uploads already size-limited).
    pub fn unlimited() -> MemoryBudget {
        MemoryBudget::new(u64::MAX)
    }

    pub fn limit(&self) -> u64 {
        self.0.limit
    }

    /// Bytes reserved now, by every holder together.
    pub fn held(&self) -> u64 {
        self.0.held.load(Ordering::Relaxed)
    }

    /// The most ever held at once: what a build needed, to size the limit by.
    pub fn peak(&self) -> u64 {
        self.0.peak.load(Ordering::Relaxed)
    }

    /// An empty reservation that grows as data arrives.
    pub fn reservation(&self) -> Reservation {
        Reservation { budget: self.clone(), bytes: 0 }
    }

    fn take(&self, wanted: u64) -> Result<(), OverBudget> {
        let over = OverBudget { limit: self.0.limit, wanted };
        self.0
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(wanted).filter(|total| *total <= self.0.limit)
            })
            .map(|before| {
                self.0.peak.fetch_max(before + wanted, Ordering::Relaxed);
            })
            .map_err(|_| over)
    }

    fn give_back(&self, bytes: u64) {
        let _ = self.0.held.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| Some(held.saturating_sub(bytes)));
    }
}

/// Bytes taken from a budget, given back when dropped, so an archive refused half-way frees
/// what it had taken for the rest of the build.
#[derive(Debug)]
pub struct Reservation {
    budget: MemoryBudget,
    bytes: u64,
}

impl Reservation {
    pub fn grow(&mut self, wanted: u64) -> Result<(), OverBudget> {
        self.budget.take(wanted)?;
        self.bytes += wanted;
        Ok(())
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Leaves the bytes taken for as long as the budget lives: what an unpacked package holds
    /// stays in memory until its build ends, and so does the budget.
    pub fn keep(mut self) {
        self.bytes = 0;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.give_back(self.bytes);
        }
    }
}

/// Why a bounded read stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    OverBudget(#[from] OverBudget),
}

/// Reads `reader` to its end, reserving every byte before it is held. `expected` (a size the
/// archive declares, which may lie) is reserved up front, so an honest giant fails before any
/// decompression and a liar fails as soon as its bytes pass the budget.
pub fn read_reserved(
    reader: &mut dyn Read,
    expected: u64,
    reservation: &mut Reservation,
) -> Result<Vec<u8>, ReadError> {
    const CHUNK: u64 = 64 << 10;
    reservation.grow(expected)?;
    let capacity = usize::try_from(expected).map_err(|_| io::Error::other("too large for this machine"))?;
    let mut data = Vec::with_capacity(capacity);
    let mut reserved = expected;
    loop {
        if data.len() as u64 == reserved {
            reservation.grow(CHUNK)?;
            reserved += CHUNK;
        }
        // Small windows: zero-filling the whole declared size on every read would be quadratic.
        let room = usize::try_from((reserved - data.len() as u64).min(CHUNK)).unwrap_or(0);
        let start = data.len();
        data.resize(start + room, 0);
        let read = match reader.read(&mut data[start..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e.into()),
        };
        data.truncate(start + read);
        if read == 0 && room > 0 {
            break;
        }
    }
    // What was reserved for a declared size that turned out smaller goes back.
    let unused = reserved - data.len() as u64;
    if unused > 0 {
        reservation.budget.give_back(unused);
        reservation.bytes -= unused;
    }
    data.shrink_to_fit();
    Ok(data)
}

/// `3221225472` → `3 GiB`: sizes in messages people read.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else if value.fract() < 0.05 || value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_one_limit_and_give_back_when_dropped() {
        let budget = MemoryBudget::new(100);
        let mut a = budget.reservation();
        let mut b = budget.clone().reservation();
        a.grow(60).unwrap();
        assert_eq!(b.grow(41), Err(OverBudget { limit: 100, wanted: 41 }));
        b.grow(40).unwrap();
        drop(a);
        assert_eq!(budget.held(), 40);
        b.keep();
        assert_eq!(budget.held(), 40, "kept bytes stay taken");
    }

    #[test]
    fn a_read_stops_at_the_budget_even_when_the_declared_size_lies() {
        let budget = MemoryBudget::new(1 << 20);
        let mut reservation = budget.reservation();
        let mut zeros = io::repeat(0).take(8 << 20);
        let error = read_reserved(&mut zeros, 10, &mut reservation).unwrap_err();
        assert!(matches!(error, ReadError::OverBudget(_)), "{error}");
        assert!(reservation.bytes() <= 1 << 20);
        drop(reservation);
        assert_eq!(budget.held(), 0);

        let mut reservation = budget.reservation();
        let data = read_reserved(&mut &b"short"[..], 1000, &mut reservation).unwrap();
        assert_eq!((data.as_slice(), reservation.bytes()), (&b"short"[..], 5));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(256 << 20), "256 MiB");
        assert_eq!(human(3 << 30), "3 GiB");
        assert_eq!(human(1536), "1.5 KiB");
    }
}
