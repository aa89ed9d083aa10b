//! NOWPayments in the sandbox: the payment records its API answers (`GET /v1/payment/{id}`,
//! `x-api-key` checked), the controls that make it know a payment (`POST
//! /sim/nowpayments/payments`) and the faults that make it fail (`POST /sim/nowpayments/faults`).
//!
//! The engine routes a payment only on this record, so tests drive every case through it: a
//! payment NOWPayments does not know, one whose IPN lies about the amount, NOWPayments down.

pub use crate::service_faults::{FaultRequest, Faults};
use activities::nowpayments::api::{ErrorBody, PaymentRecord};
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use std::collections::BTreeMap;

/// What NOWPayments knows: records by payment id, and for the payments created through
/// `POST /v1/payment`, their pay address and callback.
#[derive(Debug, Default)]
pub struct NowPayments {
    pub records: BTreeMap<i64, PaymentRecord>,
    pub flows: BTreeMap<i64, crate::nowpayments_flow::Flow>,
    pub last_payment_id: i64,
    pub faults: Faults,
}

/// NOWPayments' error answer, in its own shape.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ErrorBody { status: false, status_code: status.as_u16(), code: code.to_owned(), message: message.to_owned() };
    (status, Json(body)).into_response()
}

/// An injected failure as NOWPayments would send it (429 with `Retry-After`).
pub fn injected(status: u16, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut response = error(status, "INTERNAL_ERROR", "injected by the sandbox");
    if let Some(secs) = retry_after {
        if let Ok(value) = secs.to_string().parse() {
            response.headers_mut().insert("retry-after", value);
        }
    }
    response
}
