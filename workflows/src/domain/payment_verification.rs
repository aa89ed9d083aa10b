//! What a payment is worth, on NOWPayments' word rather than the IPN's.
//!
//! The IPN is only a trigger: anyone holding the IPN secret can sign one. Before a payment is
//! routed its record is read from NOWPayments' API (`GET /v1/payment/{id}`), and only that
//! record's status, order and amounts count. These rules compare the two and decide.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The facts a payment is routed on, as NOWPayments' API reports them (or as an IPN claimed
/// them: the same shape, so the two can be compared field by field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFacts {
    pub payment_id: i64,
    pub payment_status: String,
    pub order_id: String,
    pub price_amount: Decimal,
    pub price_currency: String,
    pub outcome_amount: Option<Decimal>,
    pub outcome_currency: Option<String>,
}

/// Where a NOWPayments status leaves the payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordProgress {
    /// `finished`: the money arrived; the only status that is paid.
    Finished,
    /// Still moving (`waiting`, `confirming`, `confirmed`, `sending`, `partially_paid`): worth
    /// asking again later.
    InProgress,
    /// Ended without paying (`failed`, `refunded`, `expired`) or a status nobody documents:
    /// never paid, whatever an IPN said.
    NotPaid,
}

pub const FINISHED: &str = "finished";
const IN_PROGRESS: [&str; 5] = ["waiting", "confirming", "confirmed", "sending", "partially_paid"];

impl RecordProgress {
    pub fn of(payment_status: &str) -> Self {
        let status = payment_status.trim().to_ascii_lowercase();
        if status == FINISHED {
            Self::Finished
        } else if IN_PROGRESS.contains(&status.as_str()) {
            Self::InProgress
        } else {
            Self::NotPaid
        }
    }
}

/// One field where the IPN and NOWPayments' record disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub field: String,
    pub ipn: String,
    pub record: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: IPN '{}', NOWPayments '{}'", self.field, self.ipn, self.record)
    }
}

/// The fields where `ipn` claims something other than `record`. Amounts compare by value
/// (`40` = `40.00`), currencies and statuses without case.
pub fn differences(ipn: &PaymentFacts, record: &PaymentFacts) -> Vec<Difference> {
    fn text(value: &Option<String>) -> String {
        value.as_deref().unwrap_or("").trim().to_ascii_lowercase()
    }
    fn amount(value: Option<Decimal>) -> String {
        value.map(|d| d.normalize().to_string()).unwrap_or_default()
    }
    let pairs = [
        ("payment_status", ipn.payment_status.trim().to_ascii_lowercase(), record.payment_status.trim().to_ascii_lowercase()),
        ("order_id", ipn.order_id.trim().to_owned(), record.order_id.trim().to_owned()),
        ("price_amount", amount(Some(ipn.price_amount)), amount(Some(record.price_amount))),
        ("price_currency", ipn.price_currency.trim().to_ascii_lowercase(), record.price_currency.trim().to_ascii_lowercase()),
        ("outcome_amount", amount(ipn.outcome_amount), amount(record.outcome_amount)),
        ("outcome_currency", text(&ipn.outcome_currency), text(&record.outcome_currency)),
    ];
    pairs.into_iter().filter(|(_, a, b)| a != b).map(|(field, ipn, record)| Difference { field: field.to_owned(), ipn, record }).collect()
}

/// `PGP-{user_id}|{client_id}`: the Telegram user and the channel (client) paid for. The error
/// says what is wrong in words.
pub fn parse_order_id(order_id: &str) -> Result<(i64, String), String> {
    let bad = |reason: &str| format!("'{order_id}' {reason}; expected PGP-{{user_id}}|{{client_id}}");
    let rest = order_id.strip_prefix("PGP-").ok_or_else(|| bad("lacks the PGP- prefix"))?;
    let (user, client) = rest.split_once('|').ok_or_else(|| bad("lacks the '|' separator"))?;
    let user_id = user.parse::<i64>().map_err(|_| bad("has a non-numeric user id"))?;
    if client.is_empty() || client.contains('|') || client.chars().any(char::is_whitespace) {
        return Err(bad("has an invalid client id"));
    }
    Ok((user_id, client.to_owned()))
}

/// When to ask NOWPayments again about a record still in progress, after `looks` looks; `None`:
/// stop waiting (the payment is left `unverified` for an operator's `starter payment verify`).
/// Every 30 s for the first hour (a payment normally finishes within minutes), then every 10
/// minutes until three days have passed: a slow chain still gets paid, and the history stays a
/// few thousand events.
pub fn ask_again_after(looks: u32) -> Option<std::time::Duration> {
    use std::time::Duration;
    const QUICK_LOOKS: u32 = 120; // the first hour, at 30 s
    const SLOW_LOOKS: u32 = 426; // the next 71 hours, at 10 min
    if looks <= QUICK_LOOKS {
        Some(Duration::from_secs(30))
    } else if looks <= QUICK_LOOKS + SLOW_LOOKS {
        Some(Duration::from_secs(600))
    } else {
        None
    }
}

/// The differences in one line, for alerts and logs.
pub fn describe(differences: &[Difference]) -> String {
    differences.iter().map(Difference::to_string).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn facts() -> PaymentFacts {
        PaymentFacts {
            payment_id: 7,
            payment_status: "finished".into(),
            order_id: "PGP-1|-1001".into(),
            price_amount: dec!(40),
            price_currency: "usd".into(),
            outcome_amount: Some(dec!(0.0131)),
            outcome_currency: Some("eth".into()),
        }
    }

    #[test]
    fn the_same_facts_written_differently_agree() {
        let mut record = facts();
        record.price_amount = dec!(40.00);
        record.price_currency = "USD".into();
        record.outcome_amount = Some(dec!(0.013100));
        record.outcome_currency = Some("ETH".into());
        assert!(differences(&facts(), &record).is_empty());
    }

    #[test]
    fn a_lying_ipn_is_caught_field_by_field() {
        let mut ipn = facts();
        ipn.price_amount = dec!(1500);
        ipn.outcome_amount = Some(dec!(0.5));
        ipn.order_id = "PGP-1|-1002".into();
        let found = differences(&ipn, &facts());
        let fields: Vec<&str> = found.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["order_id", "price_amount", "outcome_amount"]);
        assert_eq!(found[1].to_string(), "price_amount: IPN '1500', NOWPayments '40'");
        let mut missing = facts();
        missing.outcome_amount = None;
        assert_eq!(differences(&facts(), &missing)[0].field, "outcome_amount");
    }

    #[test]
    fn a_slow_payment_is_asked_about_for_three_days_in_a_small_history() {
        let (mut waited, mut looks) = (std::time::Duration::ZERO, 1);
        while let Some(pause) = ask_again_after(looks) {
            waited += pause;
            looks += 1;
        }
        assert_eq!(waited.as_secs(), 72 * 3600);
        // About 8 history events per look (activity, ledger step, timer); Temporal's limit is ~51k.
        assert!(looks * 8 < 10_000, "{looks} looks");
    }

    #[test]
    fn only_finished_is_paid_and_unknown_statuses_never_are() {
        assert_eq!(RecordProgress::of("finished"), RecordProgress::Finished);
        assert_eq!(RecordProgress::of("FINISHED"), RecordProgress::Finished);
        for status in IN_PROGRESS {
            assert_eq!(RecordProgress::of(status), RecordProgress::InProgress, "{status}");
        }
        for status in ["failed", "refunded", "expired", "on_hold", ""] {
            assert_eq!(RecordProgress::of(status), RecordProgress::NotPaid, "{status}");
        }
    }
}
