//! Frequent polls inside one activity (Temporal's pattern for polls seconds apart): the
//! activity asks again and again, heartbeating after each answer, and returns once the answer
//! is final or its budget is spent. A worker lost mid-poll is noticed at the heartbeat timeout
//! and the poll starts over elsewhere, which is harmless: every check is a read, or an
//! idempotent step of the outbox.

use std::{future::Future, time::Duration};
use temporalio_sdk::activities::ActivityContext;
use tokio::time::Instant;

/// The first pause between two checks; each next one is half as long again, up to
/// [`SLOWEST_CHECK`]: quick answers are seen quickly, and a slow exchange is not asked every
/// second.
const FIRST_PAUSE: Duration = Duration::from_millis(500);
/// Well inside the workflows' heartbeat timeout, which must cover one pause and one check.
pub const SLOWEST_CHECK: Duration = Duration::from_secs(5);

/// The pauses between checks, in order.
fn pauses() -> impl Iterator<Item = Duration> {
    std::iter::successors(Some(FIRST_PAUSE), |last| {
        Some((*last * 3 / 2).min(SLOWEST_CHECK))
    })
}

/// Calls `check` until `is_final` says so, `budget` has passed, or the activity is cancelled;
/// returns the last answer. A failed check fails the activity (Temporal retries it by its
/// policy, or ends it if the error is non-retryable).
pub async fn poll_until_final<T, E, F, Fut>(
    ctx: &ActivityContext,
    budget: Duration,
    mut check: F,
    is_final: impl Fn(&T) -> bool,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + budget;
    let mut pauses = pauses();
    loop {
        let answer = check().await?;
        // A lost heartbeat only risks the poll being started over, which is harmless.
        let _ = ctx.record_heartbeat(()).await;
        let pause = pauses.next().unwrap_or(SLOWEST_CHECK);
        if is_final(&answer) || ctx.is_cancelled() || Instant::now() + pause > deadline {
            return Ok(answer);
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = ctx.cancelled() => return Ok(answer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_by_half_up_to_the_slowest_check() {
        let first: Vec<_> = pauses().take(7).map(|p| p.as_millis()).collect();
        assert_eq!(first, vec![500, 750, 1125, 1687, 2531, 3796, 5000]);
        assert!(pauses().take(1000).all(|p| p <= SLOWEST_CHECK));
    }
}
