//! `starter ipn send-test`: a correctly signed IPN, as NOWPayments would send it, so a newcomer
//! can watch a payment go through the local stack.

use crate::signature;
use rust_decimal::Decimal;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct TestIpn {
    pub payment_id: i64,
    pub user_id: i64,
    pub client_id: String,
    pub status: String,
    pub price_usd: Decimal,
    pub outcome_eth: Decimal,
}

impl TestIpn {
    /// The IPN body; amounts are written as JSON numbers, exactly as NOWPayments does.
    pub fn body(&self) -> Value {
        let number =
            |d: Decimal| -> Value { serde_json::from_str(&d.normalize().to_string()).unwrap_or_else(|_| Value::String(d.to_string())) };
        json!({
            "payment_id": self.payment_id,
            "invoice_id": null,
            "payment_status": self.status,
            "pay_address": "0x000000000000000000000000000000000000dEaD",
            "price_amount": number(self.price_usd),
            "price_currency": "usd",
            "pay_amount": number(self.outcome_eth),
            "actually_paid": number(self.outcome_eth),
            "pay_currency": "eth",
            "order_id": format!("PGP-{}|{}", self.user_id, self.client_id),
            "order_description": "Telegram channel subscription",
            "outcome_amount": number(self.outcome_eth),
            "outcome_currency": "eth",
        })
    }
}

/// The body as it goes on the wire, and its signature header value.
pub fn signed(ipn: &TestIpn, secret: &str) -> (String, String) {
    let body = ipn.body();
    (body.to_string(), signature::sign(secret, &body))
}

/// Makes the sandbox's NOWPayments (`nowpayments_url`) know the payment as the IPN describes it,
/// so the engine's check with NOWPayments confirms it. Only the sandbox has this control.
pub async fn make_known(nowpayments_url: &str, ipn: &TestIpn) -> Result<(), String> {
    let url = format!("{}/sim/nowpayments/payments", nowpayments_url.trim_end_matches('/'));
    let response = reqwest::Client::new().post(&url).json(&ipn.body()).send().await.map_err(|e| e.without_url().to_string())?;
    if !response.status().is_success() {
        return Err(format!("{} answered {}", nowpayments_url, response.status()));
    }
    Ok(())
}

/// Sends the IPN to `url` and returns the webhook's status and answer.
pub async fn send(url: &str, ipn: &TestIpn, secret: &str) -> Result<(u16, String), reqwest::Error> {
    let (body, sig) = signed(ipn, secret);
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header(crate::webhook::SIGNATURE_HEADER, sig)
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}
