//! The injectable clock: tests move it to exercise windows, sessions and expiry.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, SubsecRound, Utc};

#[derive(Clone, Default, Debug)]
pub struct Clock {
    offset_micros: Arc<AtomicI64>,
}

impl Clock {
    /// Now, truncated to microseconds (PostgreSQL's precision) so values round-trip exactly.
    pub fn now(&self) -> DateTime<Utc> {
        let now = Utc::now() + chrono::Duration::microseconds(self.offset_micros.load(Ordering::Relaxed));
        now.trunc_subsecs(6)
    }

    /// Moves the clock forward by `by` (tests).
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_micros.fetch_add(by.num_microseconds().unwrap_or(0), Ordering::Relaxed);
    }
}
