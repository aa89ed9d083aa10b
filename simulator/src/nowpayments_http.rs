//! NOWPayments' HTTP face in the sandbox: `POST /v1/payment`, `GET /v1/payment/{id}` and the `/sim/nowpayments/*`
//! controls (see [`crate::nowpayments`]).

use crate::{
    http::uuid_bytes20,
    nowpayments::{error, injected, FaultRequest, Faults},
    nowpayments_flow::{self as flow, CreatePayment},
    Simulator,
};
use activities::nowpayments::api::{PaymentRecord, API_KEY_HEADER, PAYMENT_PATH};
use alloy::primitives::Address;
use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use std::{sync::Arc, time::Instant};
use tracing::info;

type Shared = State<Arc<Simulator>>;

pub fn router() -> Router<Arc<Simulator>> {
    Router::new()
        .route(PAYMENT_PATH, post(create_payment))
        .route(&format!("{PAYMENT_PATH}/{{payment_id}}"), get(payment))
        .route("/sim/nowpayments/payments", post(know_payment).get(list_payments))
        .route("/sim/nowpayments/faults", post(set_faults))
}

/// API key, injected delay and injected failure, in that order.
async fn gate(sim: &Simulator, headers: &HeaderMap) -> Result<(), Response> {
    let key = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok());
    if key != Some(sim.config.nowpayments_api_key.as_str()) {
        return Err(error(StatusCode::UNAUTHORIZED, "INVALID_API_KEY", "Invalid api key"));
    }
    let (delay, failure) = {
        let mut state = sim.nowpayments_lock();
        (state.faults.delay(), state.faults.take_failure(Instant::now()))
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some((status, retry_after)) = failure {
        info!(status, "NOWPayments: injected failure");
        return Err(injected(status, retry_after));
    }
    Ok(())
}

async fn payment(State(sim): Shared, headers: HeaderMap, Path(payment_id): Path<String>) -> Response {
    if let Err(refused) = gate(&sim, &headers).await {
        return refused;
    }
    let Ok(payment_id) = payment_id.trim().parse::<i64>() else {
        return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST_PARAMS", "paymentID must be a number");
    };
    match sim.nowpayments_lock().records.get(&payment_id) {
        Some(record) => Json(record.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND", "Payment not found"),
    }
}

/// NOWPayments' create-payment call: a fresh pay address on the local chain and the record of
/// a `waiting` payment priced at the market's ETH price.
async fn create_payment(State(sim): Shared, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(refused) = gate(&sim, &headers).await {
        return refused;
    }
    let request: CreatePayment = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST_PARAMS", &e.to_string()),
    };
    let pay_address = Address::from_slice(&uuid_bytes20());
    let eth_usd = sim.market().price("eth").ok();
    let record = {
        let mut state = sim.nowpayments_lock();
        let payment_id = flow::next_payment_id(state.last_payment_id);
        let record = match flow::new_record(payment_id, &request, pay_address, eth_usd) {
            Ok(record) => record,
            Err(e) => return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST_PARAMS", &e.to_string()),
        };
        state.last_payment_id = payment_id;
        state.records.insert(payment_id, record.clone());
        let ipn_callback_url = request.ipn_callback_url.clone();
        state.flows.insert(payment_id, flow::Flow { pay_address, ipn_callback_url, forward_due: None, forwarding: false });
        record
    };
    info!(payment_id = record.payment_id, %pay_address, pay_amount = ?record.pay_amount, order_id = ?record.order_id, "NOWPayments: payment created");
    sim.nowpayments_changed();
    (StatusCode::CREATED, Json(record)).into_response()
}

/// Makes NOWPayments know a payment (the JSON `GET /v1/payment/{id}` returns), without a chain
/// deposit: replaces an earlier record of the same payment.
async fn know_payment(State(sim): Shared, body: axum::body::Bytes) -> Response {
    let record: PaymentRecord = match serde_json::from_slice(&body) {
        Ok(record) => record,
        Err(e) => return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST_PARAMS", &e.to_string()),
    };
    info!(payment_id = record.payment_id, payment_status = %record.payment_status, "NOWPayments: payment known");
    sim.nowpayments_lock().records.insert(record.payment_id, record.clone());
    sim.nowpayments_changed();
    (StatusCode::CREATED, Json(record)).into_response()
}

async fn list_payments(State(sim): Shared) -> Json<Vec<PaymentRecord>> {
    Json(sim.nowpayments_lock().records.values().cloned().collect())
}

async fn set_faults(State(sim): Shared, Json(request): Json<FaultRequest>) -> StatusCode {
    sim.nowpayments_lock().faults = Faults::from_request(&request, Instant::now());
    StatusCode::NO_CONTENT
}
