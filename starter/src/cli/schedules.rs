//! `starter schedules apply|trigger`: the project's Temporal Schedules, created or updated
//! idempotently (an existing schedule is updated, never an error).

use std::time::Duration;
use temporalio_client::{
    schedules::{CreateScheduleOptions, ScheduleAction, ScheduleOverlapPolicy, ScheduleSpec},
    Client,
};
use tracing::info;
use workflows::{micro_batch_conversion::SCHEDULE_ID as MICRO_BATCH, MicroBatchConversionInput, MicroBatchConversionWorkflow};

/// Every schedule of the project, by id.
pub const ALL: &[&str] = &[MICRO_BATCH];

#[derive(Debug, Clone)]
pub struct ScheduleSettings {
    pub task_queue: String,
    pub micro_batch_every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleCommandError {
    #[error("unknown schedule '{0}' (known: {known})", known = ALL.join(", "))]
    Unknown(String),
    #[error("Temporal refused the schedule {id}: {source}")]
    Temporal { id: String, source: temporalio_client::schedules::ScheduleError },
}

fn micro_batch_action(task_queue: &str) -> ScheduleAction {
    ScheduleAction::start_workflow(MicroBatchConversionWorkflow::run, MicroBatchConversionInput::default(), task_queue, MICRO_BATCH)
}

/// Creates each schedule, or updates its action, interval and overlap policy when it exists.
pub async fn apply(client: &Client, settings: &ScheduleSettings) -> Result<(), ScheduleCommandError> {
    let id = MICRO_BATCH;
    let err = |source| ScheduleCommandError::Temporal { id: id.to_owned(), source };
    let options = CreateScheduleOptions::builder()
        .action(micro_batch_action(&settings.task_queue))
        .spec(ScheduleSpec::from_interval(settings.micro_batch_every))
        .overlap_policy(ScheduleOverlapPolicy::Skip)
        .note("created by `starter schedules apply`")
        .build();
    match client.create_schedule(id, options).await {
        Ok(_) => info!(schedule = id, every = ?settings.micro_batch_every, "schedule created"),
        Err(e) if is_already_exists(&e) => {
            let (queue, every) = (settings.task_queue.clone(), settings.micro_batch_every);
            client
                .get_schedule_handle(id)
                .update(
                    move |update| {
                        update
                            .set_action(micro_batch_action(&queue))
                            .set_spec(ScheduleSpec::from_interval(every))
                            .set_overlap_policy(ScheduleOverlapPolicy::Skip);
                    },
                    Default::default(),
                )
                .await
                .map_err(err)?;
            info!(schedule = id, every = ?settings.micro_batch_every, "schedule updated");
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
