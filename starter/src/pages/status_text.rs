//! The client's status as seed 000's Telegram message ("💰 Your Payout Status"), for the bot or a
//! quick look: `GET /clients/{client_id}/status.txt`.

use crate::api::clients::ClientStatus;
use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

/// `██████░░░░` for 60 %: one block per full 10 %.
pub fn progress_bar(percent: Decimal) -> String {
    let filled = (percent / Decimal::TEN).floor().clamp(Decimal::ZERO, Decimal::TEN);
    let filled = usize::try_from(filled.mantissa() / 10i128.pow(filled.scale())).unwrap_or(0);
    format!("{}{}", "█".repeat(filled), "░".repeat(10 - filled))
}

fn usd(amount: Decimal) -> String {
    format!("${:.2}", amount.round_dp_with_strategy(2, RoundingStrategy::ToZero))
}

fn days_ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    match (now - then).num_days() {
        0 => "today".to_owned(),
        1 => "1 day ago".to_owned(),
        n => format!("{n} days ago"),
    }
}

pub fn status_text(status: &ClientStatus, now: DateTime<Utc>) -> String {
    let coin = status.payout_currency.to_uppercase();
    let mut text = String::from("💰 Your Payout Status\n\n");
    if status.payout_strategy == "instant" {
        text.push_str(&format!("Strategy: Instant Payout\nTarget: {coin}\n\nEvery payment is sent to your wallet as it arrives.\n"));
    } else {
        let have = status.accumulated_usdt + status.pending_conversion_usd;
        text.push_str(&format!(
            "Strategy: Threshold Payout\nTarget: {coin}\nThreshold: {}\n\n📊 Progress:\n├─ Accumulated: {}\n├─ Remaining: {}\n└─ Progress: {}% {}\n",
            usd(status.threshold_usd),
            usd(have),
            usd(status.remaining_usd),
            status.progress_percent.trunc(),
            progress_bar(status.progress_percent),
        ));
    }
    let payments: Vec<_> = status.recent_payments.iter().filter(|p| p.net_usd.is_some()).take(3).collect();
    if !payments.is_empty() {
        text.push_str("\n📅 Recent Payments:\n");
        for (i, payment) in payments.iter().enumerate() {
            let branch = if i + 1 == payments.len() { "└─" } else { "├─" };
            let net = payment.net_usd.unwrap_or_default();
            text.push_str(&format!("{branch} {}: +{}\n", days_ago(payment.received_at, now), usd(net)));
        }
    }
    if status.payout_strategy == "threshold" {
        match status.estimated_payout_at {
            Some(at) if at <= now => text.push_str("\n📅 Estimated payout: now (the next payout run)\n"),
            Some(at) => {
                let days = (at - now).num_days();
                let when = if days < 1 { "within a day".to_owned() } else { format!("in about {days} days") };
                text.push_str(&format!("\n📅 Estimated payout: {when}\n   (Based on your payment frequency)\n"));
            }
            None => text.push_str("\n📅 Estimated payout: after your next payments\n"),
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::clients::PaymentView;
    use chrono::Duration;
    use rust_decimal_macros::dec;

    fn status(now: DateTime<Utc>) -> ClientStatus {
        let payment = |id, days, net| PaymentView {
            payment_id: id,
            price_usd: dec!(51.55),
            net_usd: Some(net),
            status: "accumulated".into(),
            received_at: now - Duration::days(days),
        };
        ClientStatus {
            client_id: "-1001".into(),
            payout_strategy: "threshold".into(),
            payout_currency: "xmr".into(),
            payout_network: "xmr".into(),
            wallet_address: "44AFF".into(),
            threshold_usd: dec!(500),
            accumulated_usdt: dec!(300.5),
            pending_conversion_usd: dec!(40),
            remaining_usd: dec!(159.5),
            progress_percent: dec!(68.1),
            estimated_payout_at: Some(now + Duration::days(7) + Duration::hours(2)),
            recent_payments: vec![payment(3, 2, dec!(50)), payment(2, 5, dec!(50)), payment(1, 8, dec!(48.5))],
            payouts: vec![],
            instant_payouts: vec![],
        }
    }

    #[test]
    fn reads_like_the_seeds_telegram_message() {
        let now = Utc::now();
        let expected = "💰 Your Payout Status\n\nStrategy: Threshold Payout\nTarget: XMR\nThreshold: $500.00\n\n\
            📊 Progress:\n├─ Accumulated: $340.50\n├─ Remaining: $159.50\n└─ Progress: 68% ██████░░░░\n\n\
            📅 Recent Payments:\n├─ 2 days ago: +$50.00\n├─ 5 days ago: +$50.00\n└─ 8 days ago: +$48.50\n\n\
            📅 Estimated payout: in about 7 days\n   (Based on your payment frequency)\n";
        assert_eq!(status_text(&status(now), now), expected);
    }

    #[test]
    fn the_bar_fills_one_block_per_ten_percent() {
        assert_eq!(progress_bar(dec!(0)), "░░░░░░░░░░");
        assert_eq!(progress_bar(dec!(9.9)), "░░░░░░░░░░");
        assert_eq!(progress_bar(dec!(68)), "██████░░░░");
        assert_eq!(progress_bar(dec!(100)), "██████████");
    }
}
