//! Records a workflow's history as a replay fixture for `tests/replay.rs`:
//!
//! ```sh
//! cargo run -p integration-tests --bin record-history -- payment-880001 tests/histories/payment_workflow_threshold.json
//! ```
//!
//! (The SDK reads its own JSON form, not the `temporal workflow show --output json` form.)
//!
//! Floats (retry policies' `backoffCoefficient`) are written as strings, which proto JSON allows:
//! with `serde_json`'s `arbitrary_precision` (on in this workspace, for exact money) the SDK
//! cannot read its own bare floats back.

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
    std::fs::write(&path, quote_floats(&String::from_utf8(history.to_json().await?)?))?;
    println!("recorded {workflow_id} to {path}");
    Ok(())
}

/// `"backoffCoefficient":2.0` -> `"backoffCoefficient":"2.0"`.
fn quote_floats(json: &str) -> String {
    const KEY: &str = "\"backoffCoefficient\":";
    let mut out = String::with_capacity(json.len());
    let mut rest = json;
    while let Some(at) = rest.find(KEY) {
        let (head, tail) = rest.split_at(at + KEY.len());
        out.push_str(head);
        let end = tail.find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))).unwrap_or(tail.len());
        if end > 0 {
            out.push('"');
            out.push_str(&tail[..end]);
            out.push('"');
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}
