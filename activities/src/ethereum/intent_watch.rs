//! What becomes of an outbox intent once the run that made it stops watching it.
//!
//! - **Abandoned unsent.** An intent signed but never broadcast, older than
//!   [`OutboxSettings::ABANDON_UNSENT_AFTER`](super::OutboxSettings::ABANDON_UNSENT_AFTER), belongs
//!   to a run that has ended (its send step gave up, or the run was terminated). Sending it now would
//!   pay for nobody; leaving it would hold its nonce, so every later transfer would wait behind it,
//!   and keep its amount reserved. Whoever touches it next (its own retry, a check of a higher
//!   nonce, the outbox watch) signs its cancellation instead: a 0-value transfer from the hot wallet
//!   to itself at the same nonce, stored as one more attempt and re-sent like any other. Exactly one
//!   attempt takes the nonce; if it is the cancellation the intent ends `cancelled` (nothing moved),
//!   if the original was out after all it ends `confirmed`.
//! - **Past its run's deadline.** A transfer sent and not confirmed by its run's deadline can still
//!   land: it is flagged sent-unconfirmed with one alert ([`HotWallet::mark_unconfirmed`]), not
//!   failed; the alert is settled when the intent ends.
//! - **The outbox watch** ([`HotWallet::watch_open_transfers`], on the `outbox-watch` schedule)
//!   checks every open intent until it ends, whether a run still waits for it or not, and first
//!   looks for a nonce gap in front of them ([`super::nonce_gap`]).

use super::{
    fee_bump::cancellation_fees,
    outbox::{insert_attempt, unconfirmed_alert_key, AttemptFees, StoredAttempt, TransferCall, ETH_TRANSFER_GAS},
    HotWallet, HotWalletError, TransferState,
};
use crate::db::alerts::{self, AlertKind, NewAlert};
use alloy::primitives::{Bytes, U256};
use std::time::Duration;
use tracing::{info, warn};
use workflows::activity_definitions::OutboxWatchReport;

impl HotWallet {
    /// The attempt to (re)send for `purpose_key`: its latest, or, when the intent was abandoned
    /// unsent, its cancellation (signed once, then re-sent and fee-bumped like any attempt).
    pub(super) async fn sendable_attempt(&self, purpose_key: &str) -> Result<StoredAttempt, HotWalletError> {
        let latest = self.latest_attempt(purpose_key).await?;
        if latest.cancels || !self.is_abandoned_unsent(purpose_key).await? {
            return Ok(latest);
        }
        self.cancel(purpose_key, &latest).await
    }

    async fn is_abandoned_unsent(&self, purpose_key: &str) -> Result<bool, HotWalletError> {
        // Only an intent of this key on this chain: a cancellation signed by another key would
        // take an unrelated nonce and leave the original free to land.
        let abandoned: Option<bool> = sqlx::query_scalar(
            "SELECT i.status = 'signed' AND i.created_at < now() - make_interval(secs => $2)
                    AND NOT EXISTS (SELECT 1 FROM transfer_attempts a
                                    WHERE a.purpose_key = i.purpose_key AND a.last_broadcast_at IS NOT NULL)
             FROM transfer_intents i WHERE i.purpose_key = $1 AND i.chain_id = $3 AND i.from_address = $4",
        )
        .bind(purpose_key)
        .bind(self.settings.abandon_unsent_after.as_secs_f64())
        .bind(self.chain_id() as i64)
        .bind(self.address().to_checksum(None))
        .fetch_optional(&self.pool)
        .await?;
        Ok(abandoned.unwrap_or(false))
    }

    /// Signs and stores the 0-value transfer to the hot wallet at the intent's nonce.
    async fn cancel(&self, purpose_key: &str, latest: &StoredAttempt) -> Result<StoredAttempt, HotWalletError> {
        let nonce: i64 =
            sqlx::query_scalar("SELECT nonce FROM transfer_intents WHERE purpose_key = $1").bind(purpose_key).fetch_one(&self.pool).await?;
        let nonce = u64::try_from(nonce).map_err(|_| HotWalletError::Corrupt(format!("nonce {nonce}")))?;
        let fees = cancellation_fees(latest.fees, self.fee_estimate().await?, self.settings.max_fee_per_gas);
        let call = TransferCall { to: self.address(), value: U256::ZERO, input: Bytes::new(), gas_limit: ETH_TRANSFER_GAS };
        let envelope = self.sign(call, nonce, fees.max_fee, fees.priority).await?;

        let stored = AttemptFees { max_fee: fees.max_fee, priority: fees.priority, gas_limit: ETH_TRANSFER_GAS };
        let mut tx = self.pool.begin().await?;
        // Two cancellations at once: the attempt number is unique, the second fails and is retried.
        insert_attempt(&mut tx, purpose_key, latest.attempt + 1, &envelope, stored, true).await?;
        tx.commit().await?;
        warn!(purpose_key, nonce, abandoned_tx = %latest.tx_hash, cancellation = %envelope.tx_hash(),
            "transfer abandoned unsent by its run; cancelled with a 0-value transfer to the hot wallet at its nonce");
        self.latest_attempt(purpose_key).await
    }

    /// Flags a transfer that outlived its run's deadline without its confirmations: not a failure
    /// (it was sent and can still land), but one alert for operators, settled when it ends.
    pub async fn mark_unconfirmed(&self, purpose_key: &str, waited: Duration) -> Result<(), HotWalletError> {
        let mut tx = self.pool.begin().await?;
        let open: Option<(i64, String)> = sqlx::query_as(
            "UPDATE transfer_intents i SET unconfirmed_since = COALESCE(unconfirmed_since, now()), updated_at = now()
             WHERE purpose_key = $1 AND status = 'signed'
             RETURNING nonce, (SELECT tx_hash FROM transfer_attempts a WHERE a.purpose_key = i.purpose_key
                               ORDER BY attempt DESC LIMIT 1)",
        )
        .bind(purpose_key)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((nonce, latest)) = open else {
            // It ended meanwhile: nothing to flag.
            return Ok(());
        };
        let message = format!(
            "transfer {purpose_key} (nonce {nonce}, latest attempt {latest}) is not confirmed {} min after it was sent. \
             It may still land, so nothing is failed: its run keeps waiting, and the outbox watch keeps re-sending it \
             and bumps its fees while it is underpriced (up to MAX_FEE_GWEI). Check the node, the base fee and any \
             lower nonce still open",
            waited.as_secs() / 60
        );
        let alert = NewAlert {
            dedupe_key: unconfirmed_alert_key(purpose_key),
            kind: AlertKind::TransferUnconfirmed,
            subject: purpose_key.to_owned(),
            message: &message,
        };
        alerts::raise(&mut tx, &alert).await?;
        tx.commit().await?;
        warn!(purpose_key, nonce, tx_hash = %latest, alert = true, "transfer past its run's deadline; recorded sent-unconfirmed");
        Ok(())
    }

    /// One pass over the open intents older than `min_age`, lowest nonce first (a lower nonce
    /// holds back every one above it), at most `limit`: each is checked (receipts, fee bump,
    /// re-send), and one abandoned unsent is cancelled. An intent never broadcast and not yet
    /// abandoned is left to the send step that may still be sending it.
    /// The pass stops after `budget` (the rest waits for the next pass), and `heartbeat` is called
    /// after each intent.
    pub async fn watch_open_transfers<Beat>(
        &self,
        min_age: Duration,
        limit: i64,
        budget: Duration,
        heartbeat: impl Fn() -> Beat,
    ) -> Result<OutboxWatchReport, HotWalletError>
    where
        Beat: std::future::Future<Output = ()> + Send,
    {
        // A gap holds back every intent this pass would look at: say so first.
        if let Err(e) = self.alert_nonce_gap().await {
            warn!(error = %e, "outbox watch could not look for a nonce gap");
        }
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT i.purpose_key FROM transfer_intents i
             WHERE i.status = 'signed' AND i.chain_id = $1 AND i.from_address = $2
               AND i.created_at < now() - make_interval(secs => $3)
               AND (i.created_at < now() - make_interval(secs => $4)
                    OR EXISTS (SELECT 1 FROM transfer_attempts a
                               WHERE a.purpose_key = i.purpose_key AND a.last_broadcast_at IS NOT NULL))
             ORDER BY i.nonce LIMIT $5",
        )
        .bind(self.chain_id() as i64)
        .bind(self.address().to_checksum(None))
        .bind(min_age.as_secs_f64())
        .bind(self.settings.abandon_unsent_after.as_secs_f64())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut report = OutboxWatchReport::default();
        let started = std::time::Instant::now();
        for key in keys {
            if started.elapsed() >= budget {
                break;
            }
            heartbeat().await;
            report.checked += 1;
            // Lowest nonce first, each re-sent in turn: no need to re-send the lower ones again.
            match self.check_one(&key, false).await {
                Ok(TransferState::Confirmed { .. }) => report.confirmed += 1,
                Ok(TransferState::Cancelled { .. }) => report.cancelled += 1,
                Ok(TransferState::Pending { .. } | TransferState::Mined { .. }) => report.still_open += 1,
                Err(HotWalletError::Reverted { .. }) => report.reverted += 1,
                // One transfer the node refuses must not keep the watch from the others.
                Err(e) => {
                    warn!(purpose_key = %key, error = %e, "outbox watch could not check a transfer");
                    report.errors += 1;
                }
            }
        }
        if report.checked > 0 {
            info!(?report, "outbox watch pass");
        }
        Ok(report)
    }
}
