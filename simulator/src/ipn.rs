//! The sandbox's NOWPayments IPNs: the record's JSON, POSTed to the payment's
//! `ipn_callback_url` with `x-nowpayments-sig` made by the very function the engine's webhook
//! checks it with. A callback answered other than 2xx is tried again with backoff, as
//! NOWPayments does; the IPNs of one payment go out in order.

use activities::nowpayments::{api::PaymentRecord, signature};
use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::Duration,
};
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub const SIGNATURE_HEADER: &str = "x-nowpayments-sig";
/// Tries of one IPN, and the wait before the second (doubled after each failure).
const ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct IpnSender {
    http: reqwest::Client,
    secret: String,
    /// The last IPN of each payment: the next one waits for it, so `finished` never overtakes
    /// `confirming`.
    last: Mutex<HashMap<i64, JoinHandle<()>>>,
}

impl IpnSender {
    pub fn new(secret: &str) -> Self {
        let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().unwrap_or_default();
        Self { http, secret: secret.to_owned(), last: Mutex::new(HashMap::new()) }
    }

    /// Sends `record` to `url` in the background, after the payment's earlier IPNs.
    pub fn send(&self, url: &str, record: &PaymentRecord) {
        let body = match serde_json::to_value(record) {
            Ok(body) => body,
            Err(e) => {
                warn!(payment_id = record.payment_id, error = %e, "IPN body could not be made");
                return;
            }
        };
        let signature = signature::sign(&self.secret, &body);
        let (http, url, payment_id, status) = (self.http.clone(), url.to_owned(), record.payment_id, record.payment_status.clone());
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let earlier = last.remove(&payment_id);
        let task = tokio::spawn(async move {
            if let Some(earlier) = earlier {
                let _ = earlier.await;
            }
            deliver(&http, &url, body.to_string(), &signature, payment_id, &status).await;
        });
        last.insert(payment_id, task);
    }
}

async fn deliver(http: &reqwest::Client, url: &str, body: String, signature: &str, payment_id: i64, status: &str) {
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let sent = http
            .post(url)
            .header(SIGNATURE_HEADER, signature)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                info!(payment_id, payment_status = status, attempt, "NOWPayments: IPN delivered");
                return;
            }
            Ok(response) => {
                warn!(payment_id, payment_status = status, attempt, http_status = response.status().as_u16(), "NOWPayments: IPN refused")
            }
            Err(e) => warn!(payment_id, payment_status = status, attempt, error = %e, "NOWPayments: IPN not delivered"),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    warn!(payment_id, payment_status = status, attempts = ATTEMPTS, "NOWPayments: IPN given up");
}
