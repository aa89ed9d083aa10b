//! The NOWPayments payments created in the sandbox, on the chain: their pay addresses are
//! watched with the exchanges' pay-ins, a deposit makes the payment `confirming`, and the
//! lifecycle forwards its outcome from the treasury to the hot wallet before it is `finished`.
//! Every change is announced by an IPN.

use crate::{chain::Deposit, nowpayments_flow as flow, Simulator};
use activities::nowpayments::api::PaymentRecord;
use alloy::primitives::Address;
use std::time::Instant;
use tracing::{info, warn};

impl Simulator {
    /// The pay addresses of payments still waiting for their ETH.
    pub(crate) fn nowpayments_watched(&self) -> Vec<Address> {
        let state = self.nowpayments_lock();
        state
            .flows
            .iter()
            .filter(|(id, _)| state.records.get(id).is_some_and(|r| r.payment_status == "waiting"))
            .map(|(_, f)| f.pay_address)
            .collect()
    }

    /// A deposit to a waiting payment's pay address: `confirming`, with what arrived. Returns
    /// whether the deposit was one of NOWPayments'.
    pub(crate) fn nowpayments_deposit(&self, deposit: &Deposit) -> bool {
        let confirmed = {
            let mut guard = self.nowpayments_lock();
            let state = &mut *guard;
            let Some((&payment_id, flow_of)) = state.flows.iter_mut().find(|(_, f)| f.pay_address == deposit.to) else {
                return false;
            };
            match state.records.get_mut(&payment_id).filter(|r| r.payment_status == "waiting") {
                // A second deposit to a payment no longer waiting stays where it is, as it would.
                None => None,
                Some(_) if deposit.coin != "eth" => {
                    warn!(payment_id, got = deposit.coin, "NOWPayments: deposit of the wrong coin ignored");
                    None
                }
                Some(record) => {
                    flow::confirming(record, deposit.amount);
                    flow_of.forward_due = flow::due_after(Instant::now(), self.config.step_delay);
                    info!(payment_id, amount = %deposit.amount, tx_hash = %deposit.tx_hash, "NOWPayments: payment confirming");
                    Some((record.clone(), flow_of.ipn_callback_url.clone()))
                }
            }
        };
        if let Some((record, url)) = confirmed {
            self.nowpayments_changed();
            self.announce(url.as_deref(), &record);
        }
        true
    }

    /// Forwards the outcomes that are due, one at a time (the treasury's nonces stay in order),
    /// and finishes each payment whose outcome arrived.
    pub(crate) async fn forward_nowpayments(&self) {
        let due = {
            let mut state = self.nowpayments_lock();
            let state = &mut *state;
            flow::take_due(state.flows.iter_mut(), &state.records, Instant::now())
        };
        let to = self.config.nowpayments_outcome_address.to_checksum(None);
        for forward in due {
            let paid = if forward.amount.is_zero() { Ok(None) } else { self.chain.pay("eth", &to, forward.amount).await.map(Some) };
            let finished = {
                let mut guard = self.nowpayments_lock();
                let state = &mut *guard;
                let (Some(record), Some(flow_of)) = (state.records.get_mut(&forward.payment_id), state.flows.get_mut(&forward.payment_id))
                else {
                    continue;
                };
                flow_of.forwarding = false;
                match paid {
                    Ok(tx_hash) => {
                        flow::finished(record, forward.amount);
                        info!(payment_id = forward.payment_id, outcome = %forward.amount, %to, tx_hash = tx_hash.as_deref().unwrap_or("-"), "NOWPayments: outcome forwarded, payment finished");
                        Some((record.clone(), flow_of.ipn_callback_url.clone()))
                    }
                    // Left confirming: tried again on the next tick (e.g. once the treasury is funded).
                    Err(e) => {
                        warn!(payment_id = forward.payment_id, error = %e, "NOWPayments: outcome not forwarded; will retry");
                        None
                    }
                }
            };
            if let Some((record, url)) = finished {
                self.nowpayments_changed();
                self.announce(url.as_deref(), &record);
            }
        }
    }

    fn announce(&self, url: Option<&str>, record: &PaymentRecord) {
        if let Some(url) = url.filter(|u| !u.trim().is_empty()) {
            self.ipns.send(url, record);
        }
    }

    /// A record changed: where the state is kept, it is written again (under the lock, so two
    /// changes are written in the order they happened).
    pub(crate) fn nowpayments_changed(&self) {
        let Some(path) = &self.config.state_file else { return };
        let state = self.nowpayments_lock();
        if let Err(e) = crate::state_file::save(path, &crate::state_file::SavedState::of(&state)) {
            warn!(error = %e, "NOWPayments state not written");
        }
    }
}
