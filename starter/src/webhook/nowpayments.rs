//! `POST /webhooks/nowpayments`: verify, store, then start the payment's workflow.
//!
//! The answer never waits for Temporal: once the IPN is stored, the workflow start is handed to
//! the [`WorkflowLauncher`](crate::workflow_launcher::WorkflowLauncher), and the re-driver
//! covers any start that does not happen.
//!
//! Answers: 200 accepted (also for a duplicate), 401 missing or wrong signature, 400 malformed
//! body, 422 unknown client, 500 when the IPN could not be stored (NOWPayments retries).
//! Nothing is stored unless the signature is right. A signed IPN for an unknown client is kept
//! in `unroutable_ipns` with an alert (still 422), for `starter payment route`.

use super::HandlerState;
use crate::{ipn, signature};
use activities::db::{
    payments::{self, StoreIpnError},
    unroutable_ipns,
};
use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;
use tracing::{error, info, warn};

pub const SIGNATURE_HEADER: &str = "x-nowpayments-sig";

pub async fn receive_ipn(State(state): State<HandlerState>, headers: HeaderMap, body: Bytes) -> Response {
    let response = answer_ipn(&state, headers, body).await;
    state.metrics.count_ipn_answer(response.status());
    response
}

async fn answer_ipn(state: &HandlerState, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if signature.is_none() {
        return reject(StatusCode::UNAUTHORIZED, signature::SignatureError::Missing);
    }
    let value = match ipn::parse_json(&body) {
        Ok(value) => value,
        Err(e) => return reject(StatusCode::BAD_REQUEST, e),
    };
    let signed_as = match signature::verify(state.ipn_secret.expose(), &value, signature) {
        Ok(form) => form,
        Err(e) => {
            warn!(error = %e, "IPN refused: bad signature");
            return reject(StatusCode::UNAUTHORIZED, e);
        }
    };
    let raw = String::from_utf8_lossy(&body);
    let incoming = match ipn::parse_ipn(&value, &raw) {
        Ok(incoming) => incoming,
        Err(e) => return reject(StatusCode::BAD_REQUEST, e),
    };
    let payment_id = incoming.payment_id;

    let stored = match payments::store_ipn(&state.pool, &incoming).await {
        Ok(stored) => stored,
        Err(e @ StoreIpnError::UnknownClient(_)) => {
            // Signed, so it is NOWPayments' word that money arrived: keep it for an operator
            // rather than drop it. If it cannot be kept, 500 makes NOWPayments send it again.
            if let Err(keep_error) = unroutable_ipns::keep(&state.pool, &incoming).await {
                return internal(payment_id, keep_error);
            }
            warn!(
                payment_id,
                client_id = %incoming.client_id,
                alert = true,
                "IPN for an unknown client kept as unroutable; `starter payment route` processes it once the client exists"
            );
            return reject(StatusCode::UNPROCESSABLE_ENTITY, e);
        }
        Err(e) => return internal(payment_id, e),
    };
    info!(
        payment_id,
        client_id = %incoming.client_id,
        status = %stored.payment_status,
        new = stored.is_new,
        signed_as = signed_as.as_str(),
        "IPN stored"
    );

    // The IPN is durable now: answer at once and start the workflow off the request path.
    let workflow = if stored.workflow_started {
        "already_started"
    } else if !stored.needs_workflow() {
        "not_payable"
    } else if state.launcher.launch(payment_id, &incoming.client_id) {
        "scheduled"
    } else {
        warn!(payment_id, "launch queue full; the re-driver will start the workflow");
        "queued"
    };
    let status = if stored.is_new { "accepted" } else { "duplicate" };
    (
        StatusCode::OK,
        Json(json!({"status": status, "payment_id": payment_id, "payment_status": stored.payment_status, "workflow": workflow})),
    )
        .into_response()
}

fn reject(status: StatusCode, error: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": error.to_string()}))).into_response()
}

fn internal(payment_id: i64, e: impl std::fmt::Display) -> Response {
    error!(payment_id, error = %e, "IPN could not be stored");
    reject(StatusCode::INTERNAL_SERVER_ERROR, "the IPN could not be stored; please retry")
}
