//! NOWPayments' records across sandbox restarts: with `SIMULATOR_STATE_FILE` set, what the
//! NOWPayments face knows is written to that JSON file on every change (to a temporary file,
//! then renamed, so a crash leaves the old state or the new, never half of one) and read back
//! at start. ChangeNow's exchanges are not kept: a restarted ChangeNow forgets them, as before.

use crate::{nowpayments::NowPayments, nowpayments_flow::Flow};
use activities::nowpayments::api::PaymentRecord;
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("state file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("state file {path} is not the sandbox's state: {source}")]
    Format { path: PathBuf, source: serde_json::Error },
}

/// What is kept: the records, the created payments' pay addresses and callbacks, and the last
/// payment id handed out.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SavedState {
    pub last_payment_id: i64,
    pub records: Vec<PaymentRecord>,
    #[serde(default)]
    pub flows: BTreeMap<i64, Flow>,
}

impl SavedState {
    pub fn of(nowpayments: &NowPayments) -> Self {
        Self {
            last_payment_id: nowpayments.last_payment_id,
            records: nowpayments.records.values().cloned().collect(),
            flows: nowpayments.flows.clone(),
        }
    }

    /// NOWPayments as it was; its faults are not kept (they are a test's, not the service's).
    pub fn into_nowpayments(self) -> NowPayments {
        NowPayments {
            records: self.records.into_iter().map(|r| (r.payment_id, r)).collect(),
            flows: self.flows,
            last_payment_id: self.last_payment_id,
            faults: Default::default(),
        }
    }
}

/// The saved state, or `None` if there is no file yet.
pub fn load(path: &Path) -> Result<Option<SavedState>, StateFileError> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StateFileError::Io { path: path.to_owned(), source }),
    };
    serde_json::from_slice(&text).map(Some).map_err(|source| StateFileError::Format { path: path.to_owned(), source })
}

pub fn save(path: &Path, state: &SavedState) -> Result<(), StateFileError> {
    let io = |source| StateFileError::Io { path: path.to_owned(), source };
    let text = serde_json::to_vec_pretty(state).map_err(|source| StateFileError::Format { path: path.to_owned(), source })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, text).map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::Address;

    #[test]
    fn what_is_saved_is_read_back() {
        let dir = std::env::temp_dir().join(format!("sandbox-state-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("state.json");
        assert!(load(&path).unwrap().is_none(), "no file yet");
        let record: PaymentRecord = serde_json::from_str(
            r#"{"payment_id": 42, "payment_status": "waiting", "price_amount": 40, "price_currency": "usd", "pay_amount": 0.01333333, "order_id": "PGP-1|-1009"}"#,
        )
        .unwrap();
        let mut nowpayments = NowPayments { last_payment_id: 42, ..Default::default() };
        nowpayments.records.insert(42, record.clone());
        let flow = Flow {
            pay_address: Address::repeat_byte(7),
            ipn_callback_url: Some("http://x/ipn".into()),
            forward_due: None,
            forwarding: false,
        };
        nowpayments.flows.insert(42, flow.clone());
        save(&path, &SavedState::of(&nowpayments)).unwrap();
        let restored = load(&path).unwrap().unwrap().into_nowpayments();
        assert_eq!(restored.records.get(&42), Some(&record));
        assert_eq!(restored.flows.get(&42), Some(&flow));
        assert_eq!(restored.last_payment_id, 42);
        std::fs::write(&path, "not json").unwrap();
        assert!(matches!(load(&path), Err(StateFileError::Format { .. })));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
