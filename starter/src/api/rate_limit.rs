//! Registration is rate-limited per address: a fixed window per IP, in memory (one server; behind
//! a proxy every request comes from the proxy, so put the limit there too).

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

pub struct RateLimiter {
    window: Duration,
    max_per_window: u32,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(max_per_window: u32, window: Duration) -> Self {
        Self { window, max_per_window, seen: Mutex::new(HashMap::new()) }
    }

    /// Counts one request from `ip` at `now`; whether it is within the limit.
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Old windows go, so the map holds only the addresses of the last window.
        seen.retain(|_, (started, _)| now.duration_since(*started) < self.window);
        let (_, count) = seen.entry(ip).or_insert((now, 0));
        *count += 1;
        *count <= self.max_per_window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_own_window() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        assert!(limiter.allow(a, t0) && limiter.allow(a, t0));
        assert!(!limiter.allow(a, t0), "the third in the window is refused");
        assert!(limiter.allow(b, t0), "another address is not affected");
        assert!(limiter.allow(a, t0 + Duration::from_secs(61)), "a new window starts afresh");
    }
}
