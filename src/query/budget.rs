//! The memory set aside for datasets held decoded, shared by all of them: a version reserves its
//! estimated size before it is read, settles the reservation against its real size once built,
//! and gives it back when the version is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Memory set aside for resident datasets, shared by all of them.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    used: AtomicU64,
}

impl Budget {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Budget {
            limit,
            used: AtomicU64::new(0),
        })
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Reserves `bytes` if they fit.
    pub(crate) fn reserve(self: &Arc<Self>, bytes: u64) -> Option<Reservation> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            if used + bytes > self.limit {
                return None;
            }
            match self.used.compare_exchange(
                used,
                used + bytes,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Some(Reservation {
                        budget: Arc::clone(self),
                        bytes,
                    });
                }
                Err(now) => used = now,
            }
        }
    }
}

/// Budget held by a resident version, given back when the version is dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<Budget>,
    bytes: u64,
}

impl Reservation {
    /// Settles an estimate against the real size: gives back the excess, or takes what is
    /// missing if the budget has it (`None` otherwise, the reservation then dropped whole).
    pub(crate) fn resize(&mut self, bytes: u64) -> Option<()> {
        if bytes > self.bytes {
            let mut more = self.budget.reserve(bytes - self.bytes)?;
            // The extra bytes now belong to this reservation: dropping `more` gives back none.
            self.bytes += more.bytes;
            more.bytes = 0;
        } else {
            self.budget
                .used
                .fetch_sub(self.bytes - bytes, Ordering::Relaxed);
            self.bytes = bytes;
        }
        Some(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// Budget reserved for a version about to be decoded.
pub struct ReservationTicket(pub(crate) Reservation);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_settle_against_the_budget_and_give_back() {
        let budget = Budget::new(100);
        let mut r = budget.reserve(60).unwrap();
        assert!(budget.reserve(50).is_none());
        r.resize(30).unwrap();
        assert_eq!(budget.used(), 30);
        r.resize(90).unwrap();
        assert_eq!(budget.used(), 90);
        assert!(r.resize(200).is_none());
        assert_eq!(budget.used(), 90);
        drop(r);
        assert_eq!(budget.used(), 0);
    }
}
