//! The send rate per number: a token bucket each, so bursts stay under Meta's limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

/// Default throughput per number (messages per second).
pub const PER_NUMBER_MPS: f64 = 80.0;

/// A token bucket per number, so bursts stay under Meta's throughput limit.
#[derive(Default)]
pub struct Throughput {
    buckets: Mutex<HashMap<Uuid, (f64, Instant)>>,
}

impl Throughput {
    pub async fn acquire(&self, number: Uuid) {
        loop {
            let wait = {
                let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
                let (tokens, last) = map.entry(number).or_insert((PER_NUMBER_MPS, Instant::now()));
                *tokens = (*tokens + last.elapsed().as_secs_f64() * PER_NUMBER_MPS).min(PER_NUMBER_MPS);
                *last = Instant::now();
                if *tokens >= 1.0 {
                    *tokens -= 1.0;
                    None
                } else {
                    Some(Duration::from_secs_f64((1.0 - *tokens) / PER_NUMBER_MPS))
                }
            };
            match wait {
                None => return,
                Some(d) => tokio::time::sleep(d).await,
            }
        }
    }
}
