//! Faults of a sandboxed service (NOWPayments' API, Telegram's Bot API): a failing status for a
//! while or for a number of requests, a `retry_after` to answer with, and a delay.

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// `{"status": 503, "for_secs": 25}`, `{"status": 429, "retry_after": 3, "count": 5}`, optionally
/// `"delay_ms"`; `{}` clears them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRequest {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub for_secs: Option<u64>,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub retry_after: Option<u64>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

/// The faults in force: a failing status for a while or for a number of requests, and a delay.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    status: Option<u16>,
    until: Option<Instant>,
    count: Option<u32>,
    retry_after: Option<u64>,
    delay: Duration,
}

impl Faults {
    pub fn from_request(request: &FaultRequest, now: Instant) -> Self {
        Self {
            status: request.status,
            until: request.for_secs.map(|secs| now + Duration::from_secs(secs)),
            count: request.count,
            retry_after: request.retry_after,
            delay: Duration::from_millis(request.delay_ms.unwrap_or(0)),
        }
    }

    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// The failure this request gets, if any (a counted failure is used up). Without `for_secs`
    /// or `count`, a status fails every request until cleared.
    pub fn take_failure(&mut self, now: Instant) -> Option<(u16, Option<u64>)> {
        let status = self.status?;
        if self.until.is_some_and(|until| now >= until) {
            self.status = None;
            return None;
        }
        if let Some(left) = self.count.as_mut() {
            if *left == 0 {
                self.status = None;
                return None;
            }
            *left -= 1;
        }
        Some((status, self.retry_after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_and_timed_faults_run_out() {
        let now = Instant::now();
        let mut counted =
            Faults::from_request(&FaultRequest { status: Some(429), count: Some(2), retry_after: Some(3), ..Default::default() }, now);
        assert_eq!(counted.take_failure(now), Some((429, Some(3))));
        assert_eq!(counted.take_failure(now), Some((429, Some(3))));
        assert_eq!(counted.take_failure(now), None);
        let mut timed = Faults::from_request(&FaultRequest { status: Some(503), for_secs: Some(25), ..Default::default() }, now);
        assert_eq!(timed.take_failure(now + Duration::from_secs(24)), Some((503, None)));
        assert_eq!(timed.take_failure(now + Duration::from_secs(25)), None);
        let mut cleared = Faults::from_request(&FaultRequest::default(), now);
        assert_eq!(cleared.take_failure(now), None);
    }
}
