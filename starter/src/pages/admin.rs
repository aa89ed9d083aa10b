//! The admin console, `/admin`: totals, failed batches with Retry and Cancel, open alerts with
//! Ack, the thresholds form (seed 002's no-redeploy change), an early payout per client, and a
//! link into the Temporal UI for every workflow it names. Off (404) unless `ADMIN_TOKEN` is set;
//! a session from `/admin/login`; every form carries the session's CSRF token. The actions are
//! the API's and the CLI's code paths.

use super::{admin_session, message, render};
use crate::{
    api::{
        constant_time_eq,
        operators::{apply_settings, SettingsChange},
        ApiState,
    },
    cli::{early_payout, payout_batches},
};
use activities::db::{
    alerts::{self, Alert},
    clients, conversion_ledger,
    operator_dashboard::{self, NearThreshold, Totals},
    operator_lists::{self, ConversionRow},
    payout_approval,
};
use askama::Template;
use axum::{
    extract::{ConnectInfo, Form, Path, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Router,
};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::{net::SocketAddr, time::Instant};
use uuid::Uuid;
use workflows::{micro_batch_conversion, outbox_watch, payment_workflow_id, threshold_payout_sweep};

/// Clients holding this share of their threshold are listed.
const NEAR_THRESHOLD: Decimal = Decimal::from_parts(8, 0, 0, false, 1);

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/admin", get(dashboard))
        .route("/admin/login", get(login_form).post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/batches/{batch_id}/retry", post(retry_batch))
        .route("/admin/batches/{batch_id}/cancel", post(cancel_batch))
        .route("/admin/batches/{batch_id}/approve", post(approve_batch))
        .route("/admin/batches/{batch_id}/reject", post(reject_batch))
        .route("/admin/alerts/{alert_id}/ack", post(ack_alert))
        .route("/admin/settings", post(change_settings))
        .route("/admin/clients/{client_id}/payout-now", post(payout_now))
        .route("/admin/payout-now", post(payout_now_named))
        .with_state(state)
}

#[derive(Template)]
#[template(path = "admin_login.html")]
struct LoginPage {
    error: Option<String>,
}

struct BatchRow {
    batch_id: Uuid,
    client_id: String,
    total_usdt: Decimal,
    reason: String,
    workflow_url: String,
}

struct ConversionEntry {
    c: ConversionRow,
    /// Its own run in the Temporal UI, when the batch recorded it.
    workflow_url: Option<String>,
}

struct RecentPayment {
    payment_id: i64,
    client_id: String,
    status: String,
    workflow_url: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct Dashboard {
    csrf: String,
    done: Option<&'static str>,
    totals: Totals,
    micro_batch_threshold_usd: Decimal,
    max_client_threshold_usd: Decimal,
    success_rate: Option<Decimal>,
    /// Clients holding unpaid money, fullest first, each with its early-payout button.
    holding: Vec<NearThreshold>,
    /// How many of them hold at least 80 % of their threshold.
    near_count: usize,
    near_share: Decimal,
    failed: Vec<BatchRow>,
    awaiting: Vec<BatchRow>,
    processing: Vec<BatchRow>,
    rejected: Vec<BatchRow>,
    payout_approval_above_usd: Option<Decimal>,
    alerts: Vec<Alert>,
    conversions: Vec<ConversionEntry>,
    conversions_url: String,
    payments: Vec<RecentPayment>,
    schedules: Vec<(String, String, String)>,
}

fn off() -> Response {
    message(StatusCode::NOT_FOUND, "Not found", "The admin console is off: ADMIN_TOKEN is not set.")
}

/// The live session's CSRF token, or the response that sends the operator to log in.
fn session(state: &ApiState, headers: &HeaderMap) -> Result<String, Response> {
    if state.admin_token().is_none() {
        return Err(off());
    }
    admin_session::session_cookie(headers)
        .and_then(|id| state.admin_sessions.csrf_of(&id, Instant::now()))
        .ok_or_else(|| Redirect::to("/admin/login").into_response())
}

/// A state-changing form: a live session and its own CSRF token, or 403.
fn checked(state: &ApiState, headers: &HeaderMap, csrf: &str) -> Result<(), Response> {
    let expected = session(state, headers)?;
    if constant_time_eq(&expected, csrf) {
        Ok(())
    } else {
        Err(message(StatusCode::FORBIDDEN, "Refused", "This form is stale or was not sent by this console; reload /admin and try again."))
    }
}

fn done(code: &str) -> Response {
    Redirect::to(&format!("/admin?done={code}")).into_response()
}

fn workflow_url(state: &ApiState, workflow_id: &str) -> String {
    format!("{}/namespaces/{}/workflows/{}", state.temporal_ui_url, state.temporal_namespace, workflow_id)
}

async fn login_form(State(state): State<ApiState>) -> Response {
    if state.admin_token().is_none() {
        return off();
    }
    render(StatusCode::OK, LoginPage { error: None })
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

async fn login(State(state): State<ApiState>, ConnectInfo(peer): ConnectInfo<SocketAddr>, Form(form): Form<LoginForm>) -> Response {
    let Some(expected) = state.admin_token() else { return off() };
    if !state.allow_admin_login(peer.ip(), Instant::now()) {
        tracing::warn!(ip = %peer.ip(), "admin login attempts over the limit");
        let error = Some("Too many login attempts from this address; wait a minute.".into());
        return render(StatusCode::TOO_MANY_REQUESTS, LoginPage { error });
    }
    if !constant_time_eq(expected, form.token.trim()) {
        tracing::warn!("admin login refused");
        return render(StatusCode::FORBIDDEN, LoginPage { error: Some("Wrong token.".into()) });
    }
    let (id, _) = state.admin_sessions.open(Instant::now());
    tracing::info!("operator logged in to the admin console");
    ([(header::SET_COOKIE, admin_session::set_cookie(&id))], Redirect::to("/admin")).into_response()
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(State(state): State<ApiState>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    if let Err(refused) = checked(&state, &headers, &form.csrf) {
        return refused;
    }
    if let Some(id) = admin_session::session_cookie(&headers) {
        state.admin_sessions.close(&id);
    }
    ([(header::SET_COOKIE, admin_session::clear_cookie())], Redirect::to("/admin/login")).into_response()
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

/// What an action's redirect says, from a fixed list (nothing typed is echoed back).
fn done_message(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "retried" => Some("Retry sent: the batch pays again (see its workflow)."),
        "retry-busy" => Some("The group's run is paying another batch; retry once it has ended."),
        "already-paid" => Some("That batch is already paid; nothing was sent again."),
        "cancelled" => Some("Cancellation requested: the batch is recorded failed with your reason."),
        "not-running" => Some("No run was paying that batch; nothing to cancel."),
        "acked" => Some("Alert acknowledged."),
        "settings" => Some("Thresholds saved; the next conversion run reads them."),
        "payout-started" => Some("Early payout started."),
        "approved" => Some("Approval sent: the batch is paid."),
        "rejected" => Some("Rejection sent: the batch ends rejected and its rows are released."),
        _ => None,
    }
}

async fn dashboard(State(state): State<ApiState>, headers: HeaderMap, Query(query): Query<DoneQuery>) -> Response {
    let csrf = match session(&state, &headers) {
        Ok(csrf) => csrf,
        Err(response) => return response,
    };
    match dashboard_page(&state, csrf, done_message(query.done.as_deref())).await {
        Ok(page) => render(StatusCode::OK, page),
        Err(e) => crate::api::ApiError::internal(e).into_response(),
    }
}

async fn dashboard_page(state: &ApiState, csrf: String, done: Option<&'static str>) -> anyhow::Result<Dashboard> {
    let totals = operator_dashboard::totals(&state.pool).await?;
    let success_rate = (totals.batches_24h > 0)
        .then(|| (Decimal::from(totals.completed_24h) * Decimal::ONE_HUNDRED / Decimal::from(totals.batches_24h)).round_dp(1));
    let failed = batch_rows(state, "failed").await?;
    let awaiting = batch_rows(state, "awaiting_approval").await?;
    let processing = batch_rows(state, "processing").await?;
    let rejected = batch_rows(state, "rejected").await?.into_iter().take(20).collect();
    let payments = activities::db::payments::recent(&state.pool, 20)
        .await?
        .into_iter()
        .map(|(payment_id, client_id, status)| RecentPayment {
            workflow_url: workflow_url(state, &payment_workflow_id(payment_id)),
            payment_id,
            client_id,
            status,
        })
        .collect();
    let holding = operator_dashboard::clients_near_threshold(&state.pool, Decimal::ZERO).await?;
    let conversions_url = format!(
        "{}/namespaces/{}/workflows?query=WorkflowType%3D%22MicroBatchConversionWorkflow%22",
        state.temporal_ui_url, state.temporal_namespace
    );
    Ok(Dashboard {
        csrf,
        done,
        micro_batch_threshold_usd: conversion_ledger::read_threshold(&state.pool).await?,
        max_client_threshold_usd: clients::max_threshold(&state.pool).await?,
        success_rate,
        near_count: holding.iter().filter(|c| c.have_usd >= c.threshold_usd * NEAR_THRESHOLD).count(),
        near_share: NEAR_THRESHOLD,
        holding,
        failed,
        awaiting,
        processing,
        rejected,
        payout_approval_above_usd: payout_approval::approval_amount(&state.pool).await?,
        alerts: alerts::open(&state.pool).await?,
        conversions: operator_lists::conversions(&state.pool)
            .await?
            .into_iter()
            .take(10)
            .map(|c| ConversionEntry { workflow_url: c.workflow_id.as_deref().map(|id| workflow_url(state, id)), c })
            .collect(),
        conversions_url,
        payments,
        schedules: next_runs(state).await,
        totals,
    })
}

/// The payout batches in `status`, each with a link to the run acting on it.
async fn batch_rows(state: &ApiState, status: &str) -> anyhow::Result<Vec<BatchRow>> {
    let mut rows = Vec::new();
    for batch in operator_lists::payout_batches(&state.pool, Some(status)).await? {
        let workflow_id = payout_batches::workflow_of_batch(&state.pool, batch.batch_id).await?;
        rows.push(BatchRow {
            batch_id: batch.batch_id,
            client_id: batch.client_id,
            total_usdt: batch.total_amount_usdt,
            reason: batch.failure_reason.unwrap_or_default(),
            workflow_url: workflow_url(state, &workflow_id),
        });
    }
    Ok(rows)
}

/// Each schedule's next run, from Temporal; "unknown" when Temporal does not answer.
async fn next_runs(state: &ApiState) -> Vec<(String, String, String)> {
    let ids = [micro_batch_conversion::SCHEDULE_ID, threshold_payout_sweep::SCHEDULE_ID, outbox_watch::SCHEDULE_ID];
    let client = state.temporal.client().await.ok();
    let mut runs = Vec::with_capacity(ids.len());
    for id in ids {
        let next = match &client {
            Some(client) => match client.get_schedule_handle(id).describe(Default::default()).await {
                Ok(description) => description
                    .future_action_times()
                    .first()
                    .map(|at| chrono::DateTime::<chrono::Utc>::from(*at).format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_else(|| "none planned".into()),
                Err(_) => "not applied (`starter schedules apply`)".into(),
            },
            None => "unknown: Temporal does not answer".into(),
        };
        let url = format!("{}/namespaces/{}/schedules/{id}", state.temporal_ui_url, state.temporal_namespace);
        runs.push((id.to_owned(), next, url));
    }
    runs
}

async fn retry_batch(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(batch_id): Path<Uuid>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = checked(&state, &headers, &form.csrf) {
        return refused;
    }
    let client = match state.temporal.client().await {
        Ok(client) => client,
        Err(e) => return crate::api::ApiError::internal(e).into_response(),
    };
    match payout_batches::retry(&state.pool, &client, state.temporal.task_queue(), batch_id).await {
        Ok(payout_batches::RetryOutcome::AlreadyPaid) => done("already-paid"),
        Ok(payout_batches::RetryOutcome::Busy { .. }) => done("retry-busy"),
        Ok(_) => done("retried"),
        Err(payout_batches::BatchCommandError::UnknownBatch(id)) => {
            message(StatusCode::NOT_FOUND, "Not found", format!("There is no payout batch {id}."))
        }
        Err(e @ payout_batches::BatchCommandError::AwaitingApproval(_)) => message(StatusCode::CONFLICT, "Not retried", e.to_string()),
        Err(e) => crate::api::ApiError::internal(e).into_response(),
    }
}

#[derive(Deserialize)]
struct CancelForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

async fn cancel_batch(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(batch_id): Path<Uuid>,
    Form(form): Form<CancelForm>,
) -> Response {
    if let Err(refused) = checked(&state, &headers, &form.csrf) {
        return refused;
    }
    let client = match state.temporal.client().await {
        Ok(client) => client,
        Err(e) => return crate::api::ApiError::internal(e).into_response(),
    };
    let reason = if form.reason.trim().is_empty() { "cancelled from the admin console".to_owned() } else { form.reason.trim().to_owned() };
    match payout_batches::cancel(&state.pool, &client, batch_id, &reason).await {
        Ok(payout_batches::CancelOutcome::Requested { .. }) => done("cancelled"),
        Ok(payout_batches::CancelOutcome::NotRunning { .. }) => done("not-running"),
        Err(payout_batches::BatchCommandError::UnknownBatch(id)) => {
            message(StatusCode::NOT_FOUND, "Not found", format!("There is no payout batch {id}."))
        }
        Err(e) => crate::api::ApiError::internal(e).into_response(),
    }
}

async fn ack_alert(State(state): State<ApiState>, headers: HeaderMap, Path(alert_id): Path<i64>, Form(form): Form<CsrfForm>) -> Response {
    if let Err(refused) = checked(&state, &headers, &form.csrf) {
        return refused;
    }
    match alerts::acknowledge(&state.pool, alert_id).await {
        Ok(true) => done("acked"),
        Ok(false) => message(StatusCode::NOT_FOUND, "Not found", format!("There is no open alert {alert_id}.")),
        Err(e) => crate::api::ApiError::internal(e).into_response(),
    }
}

#[derive(Deserialize)]
struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    micro_batch_threshold_usd: String,
    #[serde(default)]
    max_client_threshold_usd: String,
    /// Empty: no approval needed.
    #[serde(default)]
    payout_approval_above_usd: String,
}

async fn change_settings(State(state): State<ApiState>, headers: HeaderMap, Form(form): Form<SettingsForm>) -> Response {
    if let Err(refused) = checked(&state, &headers, &form.csrf) {
        return refused;
    }
    let value = |text: &str| (!text.trim().is_empty()).then(|| serde_json::Value::String(text.trim().to_owned()));
    let change = SettingsChange {
        micro_batch_threshold_usd: value(&form.micro_batch_threshold_usd),
        max_client_threshold_usd: value(&form.max_client_threshold_usd),
        payout_approval_above_usd: Some(value(&form.payout_approval_above_usd).unwrap_or_else(|| serde_json::Value::String("off".into()))),
    };
    match apply_settings(&state, change).await {
        Ok(()) => done("settings"),
        Err(e) if e.status.is_client_error() => message(e.status, "Not saved", e.body.error),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct PayoutNowForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    client_id: String,
}

/// The early payout of any client, named in the form.
async fn payout_now_named(state: State<ApiState>, headers: HeaderMap, Form(form): Form<PayoutNowForm>) -> Response {
    let client_id = form.client_id.trim().to_owned();
    payout_now(state, headers, Path(client_id), Form(CsrfForm { csrf: form.csrf })).await
}

async fn payout_now(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = checked(&state, &headers, &form.csrf) {
        return refused;
    }
    let client = match state.temporal.client().await {
        Ok(client) => client,
        Err(e) => return crate::api::ApiError::internal(e).into_response(),
    };
    match early_payout::payout_now(&state.pool, &client, state.temporal.task_queue(), &client_id).await {
        Ok(_) => done("payout-started"),
        Err(early_payout::EarlyPayoutError::UnknownClient(id)) => {
            message(StatusCode::NOT_FOUND, "Not found", format!("There is no client {id}."))
        }
        Err(e) => crate::api::ApiError::internal(e).into_response(),
    }
}

async fn approve_batch(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(batch_id): Path<Uuid>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = checked(&state, &headers, &form.csrf) {
        return refused;
    }
    decide(&state, batch_id, payout_batches::Approval::Approve, "approved").await
}

async fn reject_batch(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(batch_id): Path<Uuid>,
    Form(form): Form<CancelForm>,
) -> Response {
    if let Err(refused) = checked(&state, &headers, &form.csrf) {
        return refused;
    }
    if form.reason.trim().is_empty() {
        return message(StatusCode::UNPROCESSABLE_ENTITY, "Not rejected", "A rejection needs a reason.");
    }
    decide(&state, batch_id, payout_batches::Approval::Reject { reason: form.reason.trim().to_owned() }, "rejected").await
}

/// The approval signal, as the API and the CLI send it.
async fn decide(state: &ApiState, batch_id: Uuid, approval: payout_batches::Approval, done_code: &str) -> Response {
    let client = match state.temporal.client().await {
        Ok(client) => client,
        Err(e) => return crate::api::ApiError::internal(e).into_response(),
    };
    match payout_batches::decide(&state.pool, &client, state.temporal.task_queue(), batch_id, approval).await {
        Ok(_) => done(done_code),
        Err(payout_batches::BatchCommandError::UnknownBatch(id)) => {
            message(StatusCode::NOT_FOUND, "Not found", format!("There is no payout batch {id}."))
        }
        Err(
            e @ (payout_batches::BatchCommandError::NotAwaitingApproval { .. } | payout_batches::BatchCommandError::AwaitingApproval(_)),
        ) => message(StatusCode::CONFLICT, "Nothing to decide", e.to_string()),
        Err(e) => crate::api::ApiError::internal(e).into_response(),
    }
}
