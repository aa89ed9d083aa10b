//! The operator's routes, behind `ADMIN_TOKEN` (off without it): payout batches (list, retry,
//! cancel), conversions, alerts (list, ack) and settings. The same code paths as the CLI.

use super::{auth::Operator, decimal_text, read_json, ApiError, ApiPath, ApiQuery, ApiState};
use crate::cli::{
    early_payout,
    payout_batches::{self, Approval, BatchCommandError, CancelOutcome, RetryOutcome},
    threshold,
};
use activities::db::{alerts, clients, conversion_ledger, operator_lists, payout_approval};
use axum::{body::Bytes, extract::State, Json};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

const BATCH_STATUSES: &[&str] = &["pending", "processing", "completed", "failed", "awaiting_approval", "rejected"];

#[derive(Debug, Deserialize, IntoParams)]
pub struct BatchFilter {
    /// One of `pending`, `processing`, `completed`, `failed`, `awaiting_approval`, `rejected`.
    pub status: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PayoutBatchView {
    pub batch_id: Uuid,
    pub client_id: String,
    pub status: String,
    #[schema(value_type = String)]
    pub total_usdt: Decimal,
    pub payments: i32,
    pub payout_currency: String,
    pub wallet_address: String,
    pub failure_reason: Option<String>,
    pub tx_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversionView {
    pub batch_id: Uuid,
    pub status: String,
    #[schema(value_type = String)]
    pub total_eth: Decimal,
    #[schema(value_type = String)]
    pub total_usd: Decimal,
    pub rows: Option<i32>,
    #[schema(value_type = Option<String>)]
    pub usdt_received: Option<Decimal>,
    pub exchange_id: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The run that converted it, for the Temporal UI.
    pub workflow_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlertView {
    pub alert_id: i64,
    pub kind: String,
    /// `critical`, `warning` or `info`.
    pub severity: String,
    pub subject: String,
    pub message: String,
    pub raised_at: DateTime<Utc>,
}

/// What an operator's action did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ActionOutcome {
    /// `already_paid`, `signalled`, `started`, `in_progress`, `busy`, `cancel_requested`, `not_running`, `acknowledged`.
    pub outcome: String,
    /// The Temporal workflow acted on, when one was.
    pub workflow_id: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// Recorded as the payout's reason; required.
    pub reason: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Recorded as the batch's failure reason.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SettingsView {
    /// The pending pool that starts a conversion (read by every run; no restart).
    #[schema(value_type = String)]
    pub micro_batch_threshold_usd: Decimal,
    /// The highest threshold a client may choose.
    #[schema(value_type = String)]
    pub max_client_threshold_usd: Decimal,
    /// Payout batches above this wait for an operator's approval; null: off.
    #[schema(value_type = Option<String>)]
    pub payout_approval_above_usd: Option<Decimal>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    #[schema(value_type = Option<String>)]
    pub micro_batch_threshold_usd: Option<serde_json::Value>,
    #[schema(value_type = Option<String>)]
    pub max_client_threshold_usd: Option<serde_json::Value>,
    /// A USD amount, or `"off"` (or 0) to pay every batch without approval.
    #[schema(value_type = Option<String>)]
    pub payout_approval_above_usd: Option<serde_json::Value>,
}

fn batch_error(e: BatchCommandError) -> ApiError {
    match e {
        BatchCommandError::UnknownBatch(id) => ApiError::not_found(format!("there is no payout batch {id}")),
        e @ (BatchCommandError::NotAwaitingApproval { .. } | BatchCommandError::AwaitingApproval(_)) => ApiError::conflict(e.to_string()),
        other => ApiError::internal(other),
    }
}

/// List payout batches, newest first (at most 200).
#[utoipa::path(get, path = "/api/v1/payout-batches", tag = "operators", params(BatchFilter), security(("admin_token" = [])),
    responses((status = 200, body = [PayoutBatchView]), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody),
              (status = 404, description = "ADMIN_TOKEN is not set", body = super::ErrorBody), (status = 422, body = super::ErrorBody)))]
pub async fn list_payout_batches(
    _: Operator,
    State(state): State<ApiState>,
    ApiQuery(filter): ApiQuery<BatchFilter>,
) -> Result<Json<Vec<PayoutBatchView>>, ApiError> {
    if let Some(status) = filter.status.as_deref().filter(|s| !BATCH_STATUSES.contains(s)) {
        return Err(ApiError::invalid("status", format!("unknown status '{status}' (one of {})", BATCH_STATUSES.join(", "))));
    }
    let rows = operator_lists::payout_batches(&state.pool, filter.status.as_deref()).await?;
    Ok(Json(
        rows.into_iter()
            .map(|b| PayoutBatchView {
                batch_id: b.batch_id,
                client_id: b.client_id,
                status: b.status,
                total_usdt: b.total_amount_usdt,
                payments: b.total_payments_count,
                payout_currency: b.client_payout_currency,
                wallet_address: b.client_wallet_address,
                failure_reason: b.failure_reason,
                tx_hash: b.tx_hash,
                created_at: b.created_at,
                completed_at: b.completed_at,
            })
            .collect(),
    ))
}

/// Retry a failed payout batch: the `retry` signal to its waiting run, or a new run (the CLI's `batch retry`).
#[utoipa::path(post, path = "/api/v1/payout-batches/{batch_id}/retry", tag = "operators", security(("admin_token" = [])),
    params(("batch_id" = Uuid, Path)),
    responses((status = 200, body = ActionOutcome), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody),
              (status = 404, body = super::ErrorBody)))]
pub async fn retry_payout_batch(
    _: Operator,
    State(state): State<ApiState>,
    ApiPath(batch_id): ApiPath<Uuid>,
) -> Result<Json<ActionOutcome>, ApiError> {
    let client = state.temporal.client().await.map_err(ApiError::internal)?;
    let outcome = payout_batches::retry(&state.pool, &client, state.temporal.task_queue(), batch_id).await.map_err(batch_error)?;
    tracing::info!(batch_id = %batch_id, ?outcome, "operator retried a payout batch (API)");
    let (outcome, workflow_id, detail) = match outcome {
        RetryOutcome::AlreadyPaid => ("already_paid", None, None),
        RetryOutcome::Signalled { workflow_id } => ("signalled", Some(workflow_id), None),
        RetryOutcome::Started { workflow_id } => ("started", Some(workflow_id), None),
        RetryOutcome::InProgress { workflow_id } => ("in_progress", Some(workflow_id), None),
        RetryOutcome::Busy { workflow_id, other_batch } => {
            ("busy", Some(workflow_id), other_batch.map(|b| format!("the group's run is paying batch {b}; retry once it has ended")))
        }
    };
    Ok(Json(ActionOutcome { outcome: outcome.to_owned(), workflow_id, detail }))
}

/// Cancel the run paying (or waiting on) a payout batch: what the Temporal UI's cancel does.
#[utoipa::path(post, path = "/api/v1/payout-batches/{batch_id}/cancel", tag = "operators", security(("admin_token" = [])),
    params(("batch_id" = Uuid, Path)), request_body(content = CancelRequest, description = "Optional"),
    responses((status = 200, body = ActionOutcome), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody),
              (status = 404, body = super::ErrorBody)))]
pub async fn cancel_payout_batch(
    _: Operator,
    State(state): State<ApiState>,
    ApiPath(batch_id): ApiPath<Uuid>,
    body: Bytes,
) -> Result<Json<ActionOutcome>, ApiError> {
    let request: CancelRequest = if body.is_empty() { CancelRequest::default() } else { read_json(&body)? };
    let reason = request.reason.filter(|r| !r.trim().is_empty()).unwrap_or_else(|| "cancelled from the API".to_owned());
    let client = state.temporal.client().await.map_err(ApiError::internal)?;
    let outcome = payout_batches::cancel(&state.pool, &client, batch_id, &reason).await.map_err(batch_error)?;
    let (outcome, workflow_id) = match outcome {
        CancelOutcome::Requested { workflow_id } => ("cancel_requested", workflow_id),
        CancelOutcome::NotRunning { workflow_id } => ("not_running", workflow_id),
    };
    Ok(Json(ActionOutcome { outcome: outcome.to_owned(), workflow_id: Some(workflow_id), detail: None }))
}

/// Approve a payout batch awaiting approval: the `approve` signal to the run holding it.
#[utoipa::path(post, path = "/api/v1/payout-batches/{batch_id}/approve", tag = "operators", security(("admin_token" = [])),
    params(("batch_id" = Uuid, Path)),
    responses((status = 200, body = ActionOutcome), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody),
              (status = 404, body = super::ErrorBody), (status = 409, description = "Not awaiting approval", body = super::ErrorBody)))]
pub async fn approve_payout_batch(
    _: Operator,
    State(state): State<ApiState>,
    ApiPath(batch_id): ApiPath<Uuid>,
) -> Result<Json<ActionOutcome>, ApiError> {
    let client = state.temporal.client().await.map_err(ApiError::internal)?;
    let workflow_id = payout_batches::decide(&state.pool, &client, state.temporal.task_queue(), batch_id, Approval::Approve)
        .await
        .map_err(batch_error)?;
    Ok(Json(ActionOutcome { outcome: "approve_sent".into(), workflow_id: Some(workflow_id), detail: None }))
}

/// Reject a payout batch awaiting approval: it ends `rejected` with the reason, its rows released.
#[utoipa::path(post, path = "/api/v1/payout-batches/{batch_id}/reject", tag = "operators", security(("admin_token" = [])),
    params(("batch_id" = Uuid, Path)), request_body = RejectRequest,
    responses((status = 200, body = ActionOutcome), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody),
              (status = 404, body = super::ErrorBody), (status = 409, description = "Not awaiting approval", body = super::ErrorBody),
              (status = 422, body = super::ErrorBody)))]
pub async fn reject_payout_batch(
    _: Operator,
    State(state): State<ApiState>,
    ApiPath(batch_id): ApiPath<Uuid>,
    body: Bytes,
) -> Result<Json<ActionOutcome>, ApiError> {
    let request: RejectRequest = read_json(&body)?;
    if request.reason.trim().is_empty() {
        return Err(ApiError::invalid("reason", "a rejection needs a reason"));
    }
    let client = state.temporal.client().await.map_err(ApiError::internal)?;
    let reject = Approval::Reject { reason: request.reason.trim().to_owned() };
    let workflow_id =
        payout_batches::decide(&state.pool, &client, state.temporal.task_queue(), batch_id, reject).await.map_err(batch_error)?;
    Ok(Json(ActionOutcome { outcome: "reject_sent".into(), workflow_id: Some(workflow_id), detail: None }))
}

/// Pay a client now, below its threshold: one payout per wallet group with converted, unpaid USDT
/// (the CLI's `payout now`).
#[utoipa::path(post, path = "/api/v1/clients/{client_id}/payout-now", tag = "operators", security(("admin_token" = [])),
    params(("client_id" = String, Path)),
    responses((status = 200, body = ActionOutcome), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody),
              (status = 404, body = super::ErrorBody)))]
pub async fn payout_now(
    _: Operator,
    State(state): State<ApiState>,
    ApiPath(client_id): ApiPath<String>,
) -> Result<Json<ActionOutcome>, ApiError> {
    let client = state.temporal.client().await.map_err(ApiError::internal)?;
    match early_payout::payout_now(&state.pool, &client, state.temporal.task_queue(), &client_id).await {
        Ok(workflow_id) => Ok(Json(ActionOutcome { outcome: "payout_started".into(), workflow_id: Some(workflow_id), detail: None })),
        Err(early_payout::EarlyPayoutError::UnknownClient(id)) => Err(ApiError::not_found(format!("there is no client {id}"))),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// List conversion batches, newest first (at most 200).
#[utoipa::path(get, path = "/api/v1/conversions", tag = "operators", security(("admin_token" = [])),
    responses((status = 200, body = [ConversionView]), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody),
              (status = 404, body = super::ErrorBody)))]
pub async fn list_conversions(_: Operator, State(state): State<ApiState>) -> Result<Json<Vec<ConversionView>>, ApiError> {
    let rows = operator_lists::conversions(&state.pool).await?;
    Ok(Json(
        rows.into_iter()
            .map(|c| ConversionView {
                batch_id: c.batch_conversion_id,
                status: c.conversion_status,
                total_eth: c.total_eth,
                total_usd: c.total_eth_usd,
                rows: c.row_count,
                usdt_received: c.actual_usdt_received,
                exchange_id: c.cn_api_id,
                failure_reason: c.failure_reason,
                created_at: c.created_at,
                completed_at: c.completed_at,
                workflow_id: c.workflow_id,
            })
            .collect(),
    ))
}

/// Open alerts, oldest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "operators", security(("admin_token" = [])),
    responses((status = 200, body = [AlertView]), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody),
              (status = 404, body = super::ErrorBody)))]
pub async fn list_alerts(_: Operator, State(state): State<ApiState>) -> Result<Json<Vec<AlertView>>, ApiError> {
    let open = alerts::open(&state.pool).await?;
    Ok(Json(
        open.into_iter()
            .map(|a| AlertView {
                alert_id: a.alert_id,
                kind: a.kind,
                severity: a.severity,
                subject: a.subject,
                message: a.message,
                raised_at: a.raised_at,
            })
            .collect(),
    ))
}

/// Acknowledge an open alert.
#[utoipa::path(post, path = "/api/v1/alerts/{alert_id}/ack", tag = "operators", security(("admin_token" = [])),
    params(("alert_id" = i64, Path)),
    responses((status = 200, body = ActionOutcome), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody),
              (status = 404, description = "No open alert with this id", body = super::ErrorBody)))]
pub async fn ack_alert(
    _: Operator,
    State(state): State<ApiState>,
    ApiPath(alert_id): ApiPath<i64>,
) -> Result<Json<ActionOutcome>, ApiError> {
    if !alerts::acknowledge(&state.pool, alert_id).await? {
        return Err(ApiError::not_found(format!("there is no open alert {alert_id}")));
    }
    Ok(Json(ActionOutcome { outcome: "acknowledged".into(), workflow_id: None, detail: None }))
}

async fn current_settings(state: &ApiState) -> Result<SettingsView, ApiError> {
    let micro_batch_threshold_usd = conversion_ledger::read_threshold(&state.pool).await.map_err(ApiError::internal)?;
    let max_client_threshold_usd = clients::max_threshold(&state.pool).await.map_err(ApiError::internal)?;
    let payout_approval_above_usd = payout_approval::approval_amount(&state.pool).await.map_err(ApiError::internal)?;
    Ok(SettingsView { micro_batch_threshold_usd, max_client_threshold_usd, payout_approval_above_usd })
}

/// The settings operators change at run time.
#[utoipa::path(get, path = "/api/v1/settings", tag = "operators", security(("admin_token" = [])),
    responses((status = 200, body = SettingsView), (status = 401, body = super::ErrorBody), (status = 403, body = super::ErrorBody),
              (status = 404, body = super::ErrorBody)))]
pub async fn get_settings(_: Operator, State(state): State<ApiState>) -> Result<Json<SettingsView>, ApiError> {
    Ok(Json(current_settings(&state).await?))
}

/// Change the micro-batch threshold and/or the cap on client thresholds (the CLI's rules).
#[utoipa::path(put, path = "/api/v1/settings", tag = "operators", security(("admin_token" = [])), request_body = SettingsChange,
    responses((status = 200, body = SettingsView), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody),
              (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody)))]
pub async fn put_settings(_: Operator, State(state): State<ApiState>, body: Bytes) -> Result<Json<SettingsView>, ApiError> {
    let change: SettingsChange = read_json(&body)?;
    apply_settings(&state, change).await?;
    Ok(Json(current_settings(&state).await?))
}

/// Validates both values before changing either.
pub async fn apply_settings(state: &ApiState, change: SettingsChange) -> Result<(), ApiError> {
    let micro = decimal_text("micro_batch_threshold_usd", change.micro_batch_threshold_usd)?
        .map(|t| threshold::parse_threshold(&t).map_err(|e| ApiError::invalid("micro_batch_threshold_usd", e.to_string())))
        .transpose()?;
    let cap = decimal_text("max_client_threshold_usd", change.max_client_threshold_usd)?
        .map(|t| threshold::parse_threshold(&t).map_err(|e| ApiError::invalid("max_client_threshold_usd", e.to_string())))
        .transpose()?;
    let approval = match decimal_text("payout_approval_above_usd", change.payout_approval_above_usd)?.map(|t| t.trim().to_ascii_lowercase())
    {
        None => None,
        Some(t) if t == "off" || t.is_empty() => Some(None),
        Some(t) => match threshold::parse_threshold(&t) {
            Ok(usd) => Some(Some(usd)),
            Err(threshold::ThresholdError::NotPositive(zero)) if zero.is_zero() => Some(None),
            Err(e) => return Err(ApiError::invalid("payout_approval_above_usd", e.to_string())),
        },
    };
    if let Some(cap) = cap {
        // The database refuses a cap below 50 or below a client's threshold, and says which.
        clients::set_max_threshold(&state.pool, cap).await.map_err(|e| match e {
            clients::ClientStoreError::Database(sqlx::Error::Database(refused)) => {
                ApiError::invalid("max_client_threshold_usd", refused.message().to_owned())
            }
            other => ApiError::internal(other),
        })?;
    }
    if let Some(micro) = micro {
        threshold::set(&state.pool, micro).await?;
    }
    if let Some(approval) = approval {
        payout_approval::set_approval_amount(&state.pool, approval).await?;
    }
    tracing::info!(?micro, ?cap, ?approval, "operator changed settings");
    Ok(())
}
