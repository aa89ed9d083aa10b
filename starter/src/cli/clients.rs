//! `starter client add | update | show`: validation of a client's payout settings.

use crate::wallet_address::{self, AddressError};
use activities::db::clients::{ClientRecord, ClientSettings};
use rust_decimal::Decimal;
use std::str::FromStr;
use workflows::domain::PayoutStrategy;

/// The smallest threshold worth a swap (the seeds' rule); below it fees eat the payout.
pub const MIN_THRESHOLD_USD: Decimal = Decimal::from_parts(50, 0, 0, false, 0);
/// What the seeds recommend for Monero; lower thresholds only get a warning.
pub const RECOMMENDED_THRESHOLD_USD: Decimal = Decimal::from_parts(100, 0, 0, false, 0);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClientInputError {
    #[error("client id must be 1 to 64 letters, digits, '-' or '_' (a Telegram channel id such as -1001234567890)")]
    BadClientId,
    #[error("strategy must be 'instant' or 'threshold', got '{0}'")]
    BadStrategy(String),
    #[error("threshold '{0}' is not a decimal amount in USD")]
    BadThreshold(String),
    #[error("a threshold client needs a threshold of at least {MIN_THRESHOLD_USD} USD, got {0}")]
    ThresholdTooLow(Decimal),
    #[error("a threshold client's threshold may be at most {max} USD (`starter threshold show`), got {got}")]
    ThresholdTooHigh { got: Decimal, max: Decimal },
    #[error("threshold must have at most 2 decimals (cents), got {0}")]
    ThresholdTooPrecise(Decimal),
    #[error("an instant client has no threshold; leave --threshold-usd out or set it to 0")]
    ThresholdOnInstant,
    #[error("currency must be 2 to 12 lowercase letters or digits, got '{0}'")]
    BadCurrency(String),
    #[error(transparent)]
    Address(#[from] AddressError),
}

/// What the operator typed; `None` keeps the stored value on update.
#[derive(Debug, Clone, Default)]
pub struct ClientInput {
    pub client_id: String,
    pub wallet_address: Option<String>,
    pub payout_currency: Option<String>,
    pub payout_network: Option<String>,
    pub payout_strategy: Option<String>,
    pub payout_threshold_usd: Option<String>,
}

/// The configurable cap (`settings.max_client_threshold_usd`, also enforced by the database).
pub fn check_max(settings: &ClientSettings, max: Decimal) -> Result<(), ClientInputError> {
    match settings.payout_strategy == PayoutStrategy::Threshold && settings.payout_threshold_usd > max {
        true => Err(ClientInputError::ThresholdTooHigh { got: settings.payout_threshold_usd, max }),
        false => Ok(()),
    }
}

/// Merges the input over `existing` (if any) and validates the whole result: a partial update
/// can never leave a client in a state `add` would have refused.
pub fn validate(input: &ClientInput, existing: Option<&ClientRecord>) -> Result<ClientSettings, ClientInputError> {
    let client_id = input.client_id.trim();
    // It goes into URLs (status links, admin forms, Temporal UI links) as it is.
    let url_safe = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if client_id.is_empty() || client_id.len() > 64 || !client_id.chars().all(url_safe) {
        return Err(ClientInputError::BadClientId);
    }
    let pick = |given: &Option<String>, stored: Option<&String>| given.clone().or_else(|| stored.cloned());
    let strategy_text = pick(&input.payout_strategy, None)
        .or_else(|| existing.map(|c| c.payout_strategy.as_str().to_owned()))
        .unwrap_or_else(|| "instant".to_owned());
    let strategy = PayoutStrategy::from_str(strategy_text.trim().to_ascii_lowercase().as_str())
        .map_err(|_| ClientInputError::BadStrategy(strategy_text.clone()))?;

    let threshold = match (&input.payout_threshold_usd, strategy, existing) {
        (Some(text), _, _) => Some(Decimal::from_str(text.trim()).map_err(|_| ClientInputError::BadThreshold(text.clone()))?),
        // Switching to instant drops the old threshold; keeping threshold keeps it.
        (None, PayoutStrategy::Threshold, Some(c)) if c.payout_strategy == PayoutStrategy::Threshold => Some(c.payout_threshold_usd),
        (None, _, _) => None,
    };
    let payout_threshold_usd = match strategy {
        PayoutStrategy::Instant => match threshold {
            Some(t) if !t.is_zero() => return Err(ClientInputError::ThresholdOnInstant),
            _ => Decimal::ZERO,
        },
        PayoutStrategy::Threshold => {
            let t = threshold.unwrap_or(RECOMMENDED_THRESHOLD_USD);
            if t < MIN_THRESHOLD_USD {
                return Err(ClientInputError::ThresholdTooLow(t));
            }
            if t.normalize().scale() > 2 {
                return Err(ClientInputError::ThresholdTooPrecise(t));
            }
            t
        }
    };

    let currency = pick(&input.payout_currency, existing.map(|c| &c.payout_currency)).unwrap_or_default().trim().to_ascii_lowercase();
    if !(2..=12).contains(&currency.len()) || !currency.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ClientInputError::BadCurrency(currency));
    }
    // The network defaults to the currency itself (xmr on xmr, btc on btc, eth on eth).
    let network =
        pick(&input.payout_network, existing.map(|c| &c.payout_network)).unwrap_or_else(|| currency.clone()).trim().to_ascii_lowercase();
    let wallet = pick(&input.wallet_address, existing.map(|c| &c.wallet_address)).unwrap_or_default();
    let wallet_address = wallet_address::validate(&network, &wallet)?;

    Ok(ClientSettings {
        client_id: client_id.to_owned(),
        wallet_address,
        payout_currency: currency,
        payout_network: network,
        payout_strategy: strategy,
        payout_threshold_usd,
    })
}

pub fn describe(client: &ClientRecord) -> String {
    let threshold = match client.payout_strategy {
        PayoutStrategy::Threshold => format!(" (threshold {} USD)", client.payout_threshold_usd),
        PayoutStrategy::Instant => String::new(),
    };
    format!(
        "client {}\n  strategy: {}{}\n  pays to:  {} {} on {}\n  created:  {}\n  updated:  {}",
        client.client_id,
        client.payout_strategy,
        threshold,
        client.wallet_address,
        client.payout_currency,
        client.payout_network,
        client.created_at,
        client.updated_at
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use rust_decimal_macros::dec;

    const XMR: &str = "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A";

    fn threshold_input(threshold: &str) -> ClientInput {
        ClientInput {
            client_id: "-1001".into(),
            wallet_address: Some(XMR.into()),
            payout_currency: Some("XMR".into()),
            payout_strategy: Some("threshold".into()),
            payout_threshold_usd: Some(threshold.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_threshold_client_needs_at_least_fifty_dollars() {
        let ok = validate(&threshold_input("50"), None).unwrap();
        assert_eq!((ok.payout_threshold_usd, ok.payout_network.as_str()), (dec!(50), "xmr"));
        assert_eq!(validate(&threshold_input("49.99"), None), Err(ClientInputError::ThresholdTooLow(dec!(49.99))));
        assert!(matches!(validate(&threshold_input("-100"), None), Err(ClientInputError::ThresholdTooLow(_))));
        assert!(matches!(validate(&threshold_input("lots"), None), Err(ClientInputError::BadThreshold(_))));
        assert!(matches!(validate(&threshold_input("100.001"), None), Err(ClientInputError::ThresholdTooPrecise(_))));
    }

    #[test]
    fn a_threshold_above_the_configured_maximum_is_refused() {
        let at_max = validate(&threshold_input("2000"), None).unwrap();
        assert_eq!(check_max(&at_max, dec!(2000)), Ok(()));
        let above = validate(&threshold_input("2000.01"), None).unwrap();
        assert_eq!(check_max(&above, dec!(2000)), Err(ClientInputError::ThresholdTooHigh { got: dec!(2000.01), max: dec!(2000) }));
        let instant = validate(&ClientInput { payout_strategy: Some("instant".into()), ..threshold_input("0") }, None).unwrap();
        assert_eq!(check_max(&instant, dec!(50)), Ok(()));
    }

    #[test]
    fn client_ids_are_safe_in_a_url() {
        for bad in ["../batches/x/approve?", "-100 1", "a|b", "", "x?y", &"9".repeat(65)] {
            let input = ClientInput { client_id: bad.to_owned(), ..threshold_input("100") };
            assert_eq!(validate(&input, None), Err(ClientInputError::BadClientId), "{bad:?}");
        }
        assert!(validate(&ClientInput { client_id: "-1001234567890".into(), ..threshold_input("100") }, None).is_ok());
    }

    #[test]
    fn an_instant_client_has_no_threshold() {
        let mut input = threshold_input("100");
        input.payout_strategy = Some("instant".into());
        assert_eq!(validate(&input, None), Err(ClientInputError::ThresholdOnInstant));
        input.payout_threshold_usd = None;
        assert_eq!(validate(&input, None).unwrap().payout_threshold_usd, Decimal::ZERO);
        input.payout_strategy = Some("weekly".into());
        assert!(matches!(validate(&input, None), Err(ClientInputError::BadStrategy(_))));
    }

    #[test]
    fn refuses_an_address_for_the_wrong_network() {
        let mut input = threshold_input("100");
        input.wallet_address = Some("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".into());
        assert!(matches!(validate(&input, None), Err(ClientInputError::Address(_))));
    }

    #[test]
    fn an_update_is_validated_as_a_whole() {
        let stored = ClientRecord {
            client_id: "-1001".into(),
            wallet_address: XMR.into(),
            payout_currency: "xmr".into(),
            payout_network: "xmr".into(),
            payout_strategy: PayoutStrategy::Threshold,
            payout_threshold_usd: dec!(500),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let only_wallet = ClientInput { client_id: "-1001".into(), wallet_address: Some("bad".into()), ..Default::default() };
        assert!(validate(&only_wallet, Some(&stored)).is_err());
        let keep_all = ClientInput { client_id: "-1001".into(), ..Default::default() };
        assert_eq!(validate(&keep_all, Some(&stored)).unwrap().payout_threshold_usd, dec!(500));
        let to_instant = ClientInput { client_id: "-1001".into(), payout_strategy: Some("instant".into()), ..Default::default() };
        assert_eq!(validate(&to_instant, Some(&stored)).unwrap().payout_threshold_usd, Decimal::ZERO);
    }
}
