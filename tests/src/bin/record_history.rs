//! Records a workflow's history as a replay fixture for `tests/replay.rs`:
//!
//! ```sh
//! cargo run -p integration-tests --bin record-history -- payment-880001 tests/histories/payment_workflow_threshold.json
//! ```
//!
//! (The SDK reads its own JSON form, not the `temporal workflow show --output json` form.)

use integration_tests::config;
use payout_worker::connect_temporal;
use std::time::Duration;
use temporalio_client::WorkflowFetchHistoryOptions;
use workflows::PaymentWorkflow;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(workflow_id), Some(path)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: record-history <workflow-id> <output.json>");
    };
    let config = config();
    let client = connect_temporal(&config.temporal_address, &config.temporal_namespace, Duration::from_secs(5)).await?;
    let history = client.get_workflow_handle::<PaymentWorkflow>(workflow_id.as_str()).fetch_history(WorkflowFetchHistoryOptions::default());
    std::fs::write(&path, history.to_json().await?)?;
    println!("recorded {workflow_id} to {path}");
    Ok(())
}
