//! What several workflows share: the options every step runs with, polling the outbox and
//! ChangeNow until a final answer, and the root cause of an activity failure.
//!
//! Polling is Temporal's two patterns in turn: the first minutes in one activity that polls
//! every few seconds and heartbeats (one workflow task for a quick exchange or transfer, not two
//! per poll), then workflow timers backing off to a minute, so a wait of hours is a short
//! history and holds no activity slot.

use crate::activity_definitions::{
    ChangeNow, Ethereum, ExchangeSnapshot, ExchangeWatch, TransferProgress, TransferWatch, UnconfirmedTransfer,
};
use std::time::Duration;
use temporalio_common::{
    error::{ActivityExecutionError, ApplicationFailure},
    ActivityCloseTimeouts, RetryPolicy,
};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};

/// The exchange and the transfer are polled at 2 s, backing off by half each time up to a
/// minute: quick when things are quick, and a 6-hour wait stays a few hundred events of history.
const FIRST_POLL: Duration = Duration::from_secs(2);
const SLOWEST_POLL: Duration = Duration::from_secs(60);
/// ChangeNow usually finishes within minutes; past this an operator must look.
const EXCHANGE_DEADLINE: Duration = Duration::from_secs(6 * 60 * 60);
/// A transfer past its deadline was recorded as failed (it can still land) before runs in flight
/// learned to record it sent-unconfirmed and wait on.
const SENT_UNCONFIRMED_PATCH: &str = "transfer-sent-unconfirmed";

/// Runs first poll in one activity (every few seconds, heartbeating) for this long, then with
/// workflow timers; runs from before this change poll with timers only.
const POLL_IN_ACTIVITY_PATCH: &str = "poll-in-activity";
const ACTIVE_POLL_BUDGET: Duration = Duration::from_secs(5 * 60);
/// A worker lost mid-poll is noticed this soon; the activity heartbeats after every check.
const POLL_HEARTBEAT: Duration = Duration::from_secs(30);

/// The next poll interval: 1.5x the last, at most [`SLOWEST_POLL`].
fn next_poll(last: Duration) -> Duration {
    (last * 3 / 2).min(SLOWEST_POLL)
}

/// How long a run waits for its transfer's confirmations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferWait {
    /// A transfer is replaced with higher fees when stuck; not confirmed after this, something
    /// else is wrong (node, fees above `MAX_FEE_GWEI`, a lower nonce) and an operator must look.
    /// It is recorded sent-unconfirmed, with an alert, and the run waits on: it can still land.
    pub deadline: Duration,
    /// Polling after the deadline: slow, so days of waiting stay a small history.
    pub poll_after_deadline: Duration,
    /// Still not confirmed this long after the deadline: the run fails (its rows stay with the
    /// batch, as its transfer is open) and the outbox watch goes on checking the transfer.
    pub give_up_after_deadline: Duration,
}

impl TransferWait {
    pub const STANDARD: Self = Self::with_deadline(Duration::from_secs(2 * 60 * 60));

    /// The standard proportions for another deadline: polls every twelfth of it after it, and a
    /// wait of 84 deadlines (7 days for 2 hours; about 1,000 polls).
    pub const fn with_deadline(deadline: Duration) -> Self {
        Self {
            deadline,
            poll_after_deadline: Duration::from_millis(deadline.as_millis() as u64 / 12),
            give_up_after_deadline: Duration::from_secs(deadline.as_secs() * 84),
        }
    }
}

/// How a transfer ended, for the run that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEnd {
    /// Landed with its confirmations.
    Confirmed { tx_hash: String },
    /// Reverted, or cancelled at its nonce by the outbox: its value never left the hot wallet.
    NotSent { reason: String },
}

/// How `progress` ends the transfer's wait, if it does.
fn transfer_end(purpose_key: &str, progress: &TransferProgress) -> Option<TransferEnd> {
    match progress {
        TransferProgress::Confirmed { tx_hash, .. } => Some(TransferEnd::Confirmed { tx_hash: tx_hash.clone() }),
        TransferProgress::Reverted { tx_hash } => Some(TransferEnd::NotSent {
            reason: format!("transfer {purpose_key} was mined in {tx_hash} but reverted; nothing was transferred"),
        }),
        TransferProgress::Cancelled { tx_hash } => Some(TransferEnd::NotSent {
            reason: format!(
                "transfer {purpose_key} was abandoned unsent by an earlier run and cancelled at its nonce ({tx_hash}); nothing was transferred"
            ),
        }),
        TransferProgress::Pending { .. } | TransferProgress::Mined { .. } => None,
    }
}

/// Polls the outbox until the transfer has its confirmations or ended without moving anything.
/// Past [`TransferWait::deadline`] the transfer is recorded sent-unconfirmed (with one alert) and
/// polled on; an error after [`TransferWait::give_up_after_deadline`] more.
pub async fn wait_until_confirmed<W>(ctx: &mut WorkflowContext<W>, purpose_key: &str, wait: TransferWait) -> WorkflowResult<TransferEnd> {
    let (mut waited, mut interval, mut flagged) = (Duration::ZERO, FIRST_POLL, false);
    if ctx.patched(POLL_IN_ACTIVITY_PATCH) {
        let budget = ACTIVE_POLL_BUDGET.min(wait.deadline);
        let watch = TransferWatch { purpose_key: purpose_key.to_owned(), budget_secs: budget.as_secs() };
        let progress = ctx.execute_activity(Ethereum::await_transfer_settled, watch, polling_step_options(budget)).await;
        let progress = progress.map_err(|e| ApplicationFailure::non_retryable(root_cause(&e)))?;
        if let Some(end) = transfer_end(purpose_key, &progress) {
            return Ok(end);
        }
        waited = budget;
        interval = if waited >= wait.deadline { wait.poll_after_deadline } else { SLOWEST_POLL };
    }
    loop {
        let progress = ctx.execute_activity(Ethereum::check_transfer, purpose_key.to_owned(), step_options()).await;
        let progress = progress.map_err(|e| ApplicationFailure::non_retryable(root_cause(&e)))?;
        if let Some(end) = transfer_end(purpose_key, &progress) {
            return Ok(end);
        }
        if waited >= wait.deadline && !flagged {
            if !ctx.patched(SENT_UNCONFIRMED_PATCH) {
                return Err(ApplicationFailure::non_retryable(format!(
                    "transfer {purpose_key} is not confirmed after {}h ({progress:?}); check the node and the hot wallet",
                    wait.deadline.as_secs() / 3600
                ))
                .into());
            }
            let unconfirmed = UnconfirmedTransfer { purpose_key: purpose_key.to_owned(), waited_secs: waited.as_secs() };
            // The record is what an operator sees, but failing to write it must not turn "may still
            // land" into a failure: the next poll tries again.
            flagged = ctx.execute_activity(Ethereum::mark_transfer_unconfirmed, unconfirmed, step_options()).await.is_ok();
        }
        if waited >= wait.deadline + wait.give_up_after_deadline {
            return Err(ApplicationFailure::non_retryable(format!(
                "transfer {purpose_key} is still not confirmed {}h after it was sent ({progress:?}); it stays open and the \
                 outbox watch keeps checking it",
                waited.as_secs() / 3600
            ))
            .into());
        }
        ctx.timer(interval).await;
        waited += interval;
        interval = if waited >= wait.deadline { wait.poll_after_deadline } else { next_poll(interval) };
    }
}

/// Polls ChangeNow until the exchange is settled ([`ExchangeSnapshot::is_settled`]), or fails
/// after [`EXCHANGE_DEADLINE`].
pub async fn wait_until_final<W>(ctx: &mut WorkflowContext<W>, exchange_id: &str) -> WorkflowResult<ExchangeSnapshot> {
    let (mut waited, mut interval) = (Duration::ZERO, FIRST_POLL);
    if ctx.patched(POLL_IN_ACTIVITY_PATCH) {
        let watch = ExchangeWatch { exchange_id: exchange_id.to_owned(), budget_secs: ACTIVE_POLL_BUDGET.as_secs() };
        let snapshot = ctx.execute_activity(ChangeNow::await_exchange_settled, watch, polling_step_options(ACTIVE_POLL_BUDGET)).await?;
        if snapshot.is_settled() {
            return Ok(snapshot);
        }
        (waited, interval) = (ACTIVE_POLL_BUDGET, SLOWEST_POLL);
    }
    loop {
        let snapshot = ctx.execute_activity(ChangeNow::exchange_progress, exchange_id.to_owned(), step_options()).await?;
        if snapshot.is_settled() {
            return Ok(snapshot);
        }
        if waited >= EXCHANGE_DEADLINE {
            return Err(ApplicationFailure::non_retryable(format!(
                "exchange {exchange_id} is still '{}' after {}h; check it with ChangeNow",
                snapshot.status,
                EXCHANGE_DEADLINE.as_secs() / 3600
            ))
            .into());
        }
        ctx.timer(interval).await;
        waited += interval;
        interval = next_poll(interval);
    }
}

/// The innermost message of an activity failure (Temporal wraps the activity's own error as the
/// cause of a generic "activity task failed").
pub fn root_cause(error: &ActivityExecutionError) -> String {
    let Some(mut failure) = error.failure() else { return error.to_string() };
    while let Some(cause) = failure.cause.as_deref() {
        failure = cause;
    }
    failure.message.clone()
}

/// External calls retry with backoff while the system is away; the errors activities mark
/// non-retryable end the step at once. Each call is short (one HTTP request, one signature, one
/// transaction), so a worker that dies mid-step is noticed after [`STEP_TIMEOUT`] and the step
/// retried. No step retries forever: after [`STEP_GIVE_UP`] it fails, and its workflow records
/// the failure (a failed batch, an alert) instead of blocking its schedule without a word.
pub fn step_options() -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: STEP_GIVE_UP,
        start_to_close: STEP_TIMEOUT,
    })
    .retry_policy(step_retry_policy())
    .build()
}

/// A polling step: it runs for up to `budget`, heartbeating, so a worker lost mid-poll is
/// noticed at [`POLL_HEARTBEAT`] and the poll retried like any step.
pub fn polling_step_options(budget: Duration) -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: STEP_GIVE_UP + budget,
        start_to_close: budget + STEP_TIMEOUT,
    })
    .heartbeat_timeout(POLL_HEARTBEAT)
    .retry_policy(step_retry_policy())
    .build()
}

/// The step that records a failure: it is what makes the failure visible, so it keeps trying
/// (the database away) far longer than the step that failed.
pub fn failure_step_options() -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: FAILURE_STEP_GIVE_UP,
        start_to_close: STEP_TIMEOUT,
    })
    .retry_policy(step_retry_policy())
    .build()
}

/// Longer than a ChangeNow or node outage the platform rides out unattended.
pub const STEP_GIVE_UP: Duration = Duration::from_secs(30 * 60);
pub const FAILURE_STEP_GIVE_UP: Duration = Duration::from_secs(24 * 60 * 60);

pub const STEP_TIMEOUT: Duration = Duration::from_secs(15);

pub fn step_retry_policy() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_millis(500))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(60))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_past_a_transfer_deadline_stay_a_small_history() {
        let wait = TransferWait::STANDARD;
        assert_eq!(wait.poll_after_deadline, Duration::from_secs(600));
        assert_eq!(wait.give_up_after_deadline, Duration::from_secs(7 * 24 * 3600));
        let polls = wait.give_up_after_deadline.as_secs() / wait.poll_after_deadline.as_secs();
        // About 10 history events per poll; Temporal's limit is ~51k.
        assert!(polls * 10 < 20_000, "{polls} polls");
        let short = TransferWait::with_deadline(Duration::from_secs(12));
        assert_eq!((short.poll_after_deadline, short.give_up_after_deadline), (Duration::from_secs(1), Duration::from_secs(1008)));
    }

    #[test]
    fn polling_backs_off_to_a_minute_and_six_hours_stay_a_small_history() {
        let (mut waited, mut interval, mut polls) = (Duration::ZERO, FIRST_POLL, 0);
        while waited < EXCHANGE_DEADLINE {
            waited += interval;
            interval = next_poll(interval);
            polls += 1;
        }
        assert_eq!(interval, SLOWEST_POLL);
        // About 10 history events per poll (activity + timer); Temporal's limit is ~51k.
        assert!(polls < 400, "{polls} polls");
    }
}
