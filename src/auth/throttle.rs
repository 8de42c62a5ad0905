//! Failed-login throttling per email and client address: after a burst of failures for one
//! email from one address, that pair waits out the rest of a one-minute window (429 with
//! Retry-After). An address that fails against many emails waits as well. The owner signing in
//! from another address is never slowed by a stranger's guesses, and nobody is locked out for
//! longer than a minute. The address is the forwarded one behind a trusted proxy.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Failures for one email from one address.
const MAX_FAILURES: u32 = 5;
/// Failures from one address, whatever the email.
const MAX_ADDRESS_FAILURES: u32 = 30;
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Pair(String, IpAddr),
    Address(IpAddr),
}

#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<Key, (u32, Instant)>>,
}

impl Throttle {
    /// Seconds `email` must wait before trying again from `ip`, if it must wait.
    pub fn retry_after(&self, email: &str, ip: IpAddr) -> Option<u64> {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let wait = |key: &Key, max: u32| {
            let (count, since) = map.get(key)?;
            let elapsed = since.elapsed();
            (*count >= max && elapsed < WINDOW).then(|| (WINDOW - elapsed).as_secs().clamp(1, 60))
        };
        let pair = wait(&Key::Pair(email.to_owned(), ip), MAX_FAILURES);
        let address = wait(&Key::Address(ip), MAX_ADDRESS_FAILURES);
        pair.max(address)
    }

    pub fn failed(&self, email: &str, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
        for key in [Key::Pair(email.to_owned(), ip), Key::Address(ip)] {
            let entry = map.entry(key).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= WINDOW {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
        }
    }

    pub fn succeeded(&self, email: &str, ip: IpAddr) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(&Key::Pair(email.to_owned(), ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_strangers_guesses_never_slow_the_owner_elsewhere() {
        let t = Throttle::default();
        let (stranger, owner): (IpAddr, IpAddr) = ("203.0.113.5".parse().unwrap(), "198.51.100.7".parse().unwrap());
        for _ in 0..MAX_FAILURES {
            assert_eq!(t.retry_after("ada@example.com", stranger), None);
            t.failed("ada@example.com", stranger);
        }
        assert!(t.retry_after("ada@example.com", stranger).is_some());
        assert_eq!(t.retry_after("ada@example.com", owner), None);
        assert_eq!(t.retry_after("bob@example.com", stranger), None);
    }

    #[test]
    fn an_address_spraying_emails_waits() {
        let t = Throttle::default();
        let ip: IpAddr = "203.0.113.5".parse().unwrap();
        for i in 0..MAX_ADDRESS_FAILURES {
            t.failed(&format!("user{i}@example.com"), ip);
        }
        assert!(t.retry_after("someone-else@example.com", ip).is_some());
        assert_eq!(t.retry_after("someone-else@example.com", "192.0.2.1".parse().unwrap()), None);
    }
}
