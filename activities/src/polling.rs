//! Frequent polls inside one activity (Temporal's pattern for polls seconds apart): the
//! activity asks again and again, heartbeating after each answer, and returns once the answer
//! is final or its budget is spent. A worker lost mid-poll is noticed at the heartbeat timeout
//! and the poll starts over elsewhere, which is harmless: every check is a read, or an
//! idempotent step of the outbox.

use std::{future::Future, time::Duration};
use temporalio_sdk::activities::ActivityContext;
use tokio::time::Instant;
use tracing::warn;

/// The first pause between two checks; each next one is half as long again, up to
/// [`SLOWEST_CHECK`]: quick answers are seen quickly, and a slow exchange is not asked every
/// second.
const FIRST_PAUSE: Duration = Duration::from_millis(500);
/// Well inside the workflows' heartbeat timeout, which must cover one pause and one check.
pub const SLOWEST_CHECK: Duration = Duration::from_secs(5);

/// The pauses between checks, in order.
fn pauses() -> impl Iterator<Item = Duration> {
    std::iter::successors(Some(FIRST_PAUSE), |last| Some((*last * 3 / 2).min(SLOWEST_CHECK)))
}

/// Calls `check` until `is_final` says so, `budget` has passed, or the activity is cancelled;
/// returns the last answer. A check that fails retryably (ChangeNow's 5xx or 429, the node or
/// the database away) is logged and tried again at the next pause, as the old poll-per-activity
/// loop rode such errors out one poll at a time; only when no check answered within the budget
/// does the activity fail with the last error (and Temporal retries it). A non-retryable error
/// fails it at once.
pub async fn poll_until_final<T, E, F, Fut>(
    ctx: &ActivityContext,
    budget: Duration,
    mut check: F,
    is_final: impl Fn(&T) -> bool,
    is_retryable: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let deadline = Instant::now() + budget;
    let mut pauses = pauses();
    let mut last_answer = None;
    loop {
        let last_error = match check().await {
            Ok(answer) if is_final(&answer) => return Ok(answer),
            Ok(answer) => {
                last_answer = Some(answer);
                None
            }
            Err(e) if is_retryable(&e) => {
                warn!(error = %e, "a check failed; polling on");
                Some(e)
            }
            Err(e) => return Err(e),
        };
        // A lost heartbeat only risks the poll being started over, which is harmless.
        let _ = ctx.record_heartbeat(()).await;
        let pause = pauses.next().unwrap_or(SLOWEST_CHECK);
        let out_of_time = Instant::now() + pause > deadline;
        if out_of_time || ctx.is_cancelled() {
            return match (last_answer, last_error) {
                (Some(answer), _) => Ok(answer),
                (None, Some(e)) => Err(e),
                (None, None) => unreachable!("every check either answered or failed"),
            };
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = ctx.cancelled() => {
                if let Some(answer) = last_answer {
                    return Ok(answer);
                }
            }
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
