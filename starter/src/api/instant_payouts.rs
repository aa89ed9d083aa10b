//! Operator routes on instant payouts, behind `ADMIN_TOKEN` like the batch routes: approve or
//! reject one held for approval. The CLI's code path (`starter instant-payout approve|reject`).

use super::{
    auth::Operator,
    operators::{ActionOutcome, RejectRequest},
    read_json, ApiError, ApiPath, ApiState,
};
use crate::cli::{
    instant_payouts::{self, InstantPayoutCommandError},
    payout_batches::Approval,
};
use axum::{body::Bytes, extract::State, Json};

fn command_error(e: InstantPayoutCommandError) -> ApiError {
    match e {
        e @ InstantPayoutCommandError::UnknownPayout(_) => ApiError::not_found(e.to_string()),
        e @ InstantPayoutCommandError::NotAwaitingApproval { .. } => ApiError::conflict(e.to_string()),
        other => ApiError::internal(other),
    }
}

/// Approve an instant payout awaiting approval: the `approve` signal to its InstantPayoutWorkflow; it is sent.
#[utoipa::path(post, path = "/api/v1/instant-payouts/{payment_id}/approve", tag = "operators", security(("admin_token" = [])),
    params(("payment_id" = i64, Path)),
    responses((status = 200, body = ActionOutcome), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody),
              (status = 404, body = super::ErrorBody), (status = 409, description = "Not awaiting approval", body = super::ErrorBody)))]
pub async fn approve_instant_payout(
    _: Operator,
    State(state): State<ApiState>,
    ApiPath(payment_id): ApiPath<i64>,
) -> Result<Json<ActionOutcome>, ApiError> {
    let client = state.temporal.client().await.map_err(ApiError::internal)?;
    let workflow_id = instant_payouts::decide(&state.pool, &client, state.temporal.task_queue(), payment_id, Approval::Approve)
        .await
        .map_err(command_error)?;
    tracing::info!(payment_id, workflow_id, "operator approved an instant payout (API)");
    Ok(Json(ActionOutcome { outcome: "approve_sent".into(), workflow_id: Some(workflow_id), detail: None }))
}

/// Reject an instant payout awaiting approval: it ends `rejected` with the reason; nothing is sent.
#[utoipa::path(post, path = "/api/v1/instant-payouts/{payment_id}/reject", tag = "operators", security(("admin_token" = [])),
    params(("payment_id" = i64, Path)), request_body = RejectRequest,
    responses((status = 200, body = ActionOutcome), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody),
              (status = 404, body = super::ErrorBody), (status = 409, description = "Not awaiting approval", body = super::ErrorBody),
              (status = 422, body = super::ErrorBody)))]
pub async fn reject_instant_payout(
    _: Operator,
    State(state): State<ApiState>,
    ApiPath(payment_id): ApiPath<i64>,
    body: Bytes,
) -> Result<Json<ActionOutcome>, ApiError> {
    let request: RejectRequest = read_json(&body)?;
    if request.reason.trim().is_empty() {
        return Err(ApiError::invalid("reason", "a rejection needs a reason"));
    }
    let client = state.temporal.client().await.map_err(ApiError::internal)?;
    let reject = Approval::Reject { reason: request.reason.trim().to_owned() };
    let workflow_id =
        instant_payouts::decide(&state.pool, &client, state.temporal.task_queue(), payment_id, reject).await.map_err(command_error)?;
    tracing::info!(payment_id, workflow_id, "operator rejected an instant payout (API)");
    Ok(Json(ActionOutcome { outcome: "reject_sent".into(), workflow_id: Some(workflow_id), detail: None }))
}
