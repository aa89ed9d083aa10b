//! `starter schedules apply|trigger`: the project's Temporal Schedules, created or updated
//! idempotently (an existing schedule is updated, never an error).

use std::time::Duration;
use temporalio_client::{
    schedules::{CreateScheduleOptions, ScheduleAction, ScheduleOverlapPolicy, ScheduleSpec},
    Client,
};
use tracing::info;
use workflows::{
    alert_rules::SCHEDULE_ID as ALERT_RULES, daily_reconciliation::SCHEDULE_ID as RECONCILIATION,
    micro_batch_conversion::SCHEDULE_ID as MICRO_BATCH, outbox_watch::SCHEDULE_ID as OUTBOX_WATCH,
    threshold_payout_sweep::SCHEDULE_ID as PAYOUT_SWEEP, AlertRulesWorkflow, AlertRulesWorkflowInput, DailyReconciliationInput,
    DailyReconciliationWorkflow, MicroBatchConversionInput, MicroBatchConversionWorkflow, OutboxWatchInput, OutboxWatchWorkflow,
    ThresholdPayoutSweepInput, ThresholdPayoutSweepWorkflow,
};

/// Every schedule of the project, by id.
pub const ALL: &[&str] = &[MICRO_BATCH, PAYOUT_SWEEP, OUTBOX_WATCH, ALERT_RULES, RECONCILIATION];
/// Alert rules are evaluated, and alerts delivered, every minute.
const ALERT_RULES_EVERY: Duration = Duration::from_secs(60);
/// Open transfers are looked at every minute: a stuck one holds back every nonce after it.
const OUTBOX_WATCH_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct ScheduleSettings {
    pub task_queue: String,
    pub micro_batch_every: Duration,
    pub payout_sweep_every: Duration,
    /// Unpaid rows older than this are paid out whatever the total.
    pub payout_max_age_days: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleCommandError {
    #[error("unknown schedule '{0}' (known: {known})", known = ALL.join(", "))]
    Unknown(String),
    #[error("Temporal refused the schedule {id}: {source}")]
    Temporal { id: String, source: temporalio_client::schedules::ScheduleError },
}

fn action(id: &str, settings: &ScheduleSettings) -> ScheduleAction {
    let queue = settings.task_queue.clone();
    match id {
        PAYOUT_SWEEP => {
            let input = ThresholdPayoutSweepInput { max_age_days: settings.payout_max_age_days, only_client: None };
            ScheduleAction::start_workflow(ThresholdPayoutSweepWorkflow::run, input, queue, PAYOUT_SWEEP)
        }
        OUTBOX_WATCH => ScheduleAction::start_workflow(OutboxWatchWorkflow::run, OutboxWatchInput::default(), queue, OUTBOX_WATCH),
        ALERT_RULES => ScheduleAction::start_workflow(AlertRulesWorkflow::run, AlertRulesWorkflowInput::default(), queue, ALERT_RULES),
        RECONCILIATION => {
            ScheduleAction::start_workflow(DailyReconciliationWorkflow::run, DailyReconciliationInput::default(), queue, RECONCILIATION)
        }
        _ => ScheduleAction::start_workflow(MicroBatchConversionWorkflow::run, MicroBatchConversionInput::default(), queue, MICRO_BATCH),
    }
}

/// Creates each schedule, or updates its action, interval and overlap policy when it exists.
pub async fn apply(client: &Client, settings: &ScheduleSettings) -> Result<(), ScheduleCommandError> {
    let every = [
        (MICRO_BATCH, settings.micro_batch_every),
        (PAYOUT_SWEEP, settings.payout_sweep_every),
        (OUTBOX_WATCH, OUTBOX_WATCH_EVERY),
        (ALERT_RULES, ALERT_RULES_EVERY),
        (RECONCILIATION, workflows::daily_reconciliation::EVERY),
    ];
    for (id, every) in every {
        apply_one(client, id, every, settings).await?;
    }
    Ok(())
}

async fn apply_one(client: &Client, id: &'static str, every: Duration, settings: &ScheduleSettings) -> Result<(), ScheduleCommandError> {
    let err = |source| ScheduleCommandError::Temporal { id: id.to_owned(), source };
    let options = CreateScheduleOptions::builder()
        .action(action(id, settings))
        .spec(ScheduleSpec::from_interval(every))
        .overlap_policy(ScheduleOverlapPolicy::Skip)
        .note("created by `starter schedules apply`")
        .build();
    match client.create_schedule(id, options).await {
        Ok(_) => info!(schedule = id, ?every, "schedule created"),
        Err(e) if is_already_exists(&e) => {
            let new_action = action(id, settings);
            client
                .get_schedule_handle(id)
                .update(
                    move |update| {
                        update
                            .set_action(new_action)
                            .set_spec(ScheduleSpec::from_interval(every))
                            .set_overlap_policy(ScheduleOverlapPolicy::Skip);
                    },
                    Default::default(),
                )
                .await
                .map_err(err)?;
            info!(schedule = id, ?every, "schedule updated");
        }
        Err(e) => return Err(err(e)),
    }
    Ok(())
}

/// Runs a schedule's action now (skipped if a run is still going).
pub async fn trigger(client: &Client, id: &str) -> Result<(), ScheduleCommandError> {
    if !ALL.contains(&id) {
        return Err(ScheduleCommandError::Unknown(id.to_owned()));
    }
    client
        .get_schedule_handle(id)
        .trigger(ScheduleOverlapPolicy::Skip, Default::default())
        .await
        .map_err(|source| ScheduleCommandError::Temporal { id: id.to_owned(), source })
}

/// Temporal answers gRPC `AlreadyExists` for a schedule id in use.
fn is_already_exists(e: &temporalio_client::schedules::ScheduleError) -> bool {
    matches!(e, temporalio_client::schedules::ScheduleError::Rpc(status) if format!("{:?}", status.code()) == "AlreadyExists")
}
