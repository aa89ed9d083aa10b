//! `starter payment route <payment_id>`: an IPN kept as unroutable (its client did not exist) is
//! processed once the client exists: stored in `payments` and its workflow started, exactly as
//! the webhook would have. Routing twice changes nothing.
//!
//! An IPN names its channel in a field the subscriber's side fills in, and channel ids are public:
//! whoever registers a channel first would receive every payment kept for it. So a kept IPN goes
//! only to a client whose owner proved through Telegram that the channel is theirs, and only when
//! an operator routes it; who did is recorded on the row.

use crate::{
    ipn::{self, IpnError},
    temporal_gateway::{Started, TemporalGateway},
    workflow_launcher::start_and_record,
};
use activities::db::{
    clients::{self, ClientStoreError},
    payments::{self, StoreIpnError, StoredIpn},
    unroutable_ipns,
};
use sqlx::PgPool;
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("no unroutable IPN is kept for payment {0}")]
    NotUnroutable(i64),
    #[error("client '{client_id}' of payment {payment_id} still does not exist; add it first (`starter client add`)")]
    ClientStillUnknown { payment_id: i64, client_id: String },
    #[error(
        "client '{client_id}' of payment {payment_id} was added without Telegram proof of owning the channel; \
         an IPN kept as unroutable goes only to a channel whose owner registered through Telegram"
    )]
    OwnerNotProven { payment_id: i64, client_id: String },
    #[error("say who routes the payment (--operator)")]
    NoOperator,
    #[error("the kept IPN of payment {payment_id} cannot be read: {source}")]
    Unreadable { payment_id: i64, source: IpnError },
    #[error("payment {0} is marked routed but is not in payments")]
    RoutedButMissing(i64),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What became of the payment's workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowStart {
    Started,
    AlreadyStarted,
    /// Only `finished` payments are paid out; the IPN is recorded all the same.
    NotPayable,
    /// Temporal did not take the start now; `starter serve`'s re-driver starts it later.
    LeftToRedriver(String),
}

#[derive(Debug, Clone)]
pub struct Routed {
    pub payment_status: String,
    /// An earlier routing had already moved the IPN into `payments`.
    pub already_routed: bool,
    pub workflow: WorkflowStart,
}

pub async fn route(pool: &PgPool, gateway: &TemporalGateway, payment_id: i64, operator: &str) -> Result<Routed, RouteError> {
    let operator = operator.trim();
    if operator.is_empty() || operator.len() > 200 {
        return Err(RouteError::NoOperator);
    }
    let mut tx = pool.begin().await?;
    let kept = unroutable_ipns::lock(&mut tx, payment_id).await?.ok_or(RouteError::NotUnroutable(payment_id))?;
    let already_routed = kept.routed_at.is_some();
    let stored = if already_routed {
        tx.rollback().await?;
        let payment = payments::find(pool, payment_id).await?.ok_or(RouteError::RoutedButMissing(payment_id))?;
        StoredIpn { is_new: false, payment_status: payment.payment_status, workflow_started: payment.workflow_started_at.is_some() }
    } else {
        match clients::find(pool, &kept.client_id).await.map_err(client_error)? {
            None => return Err(RouteError::ClientStillUnknown { payment_id, client_id: kept.client_id }),
            Some(_) if clients::owner_telegram_id(pool, &kept.client_id).await.map_err(client_error)?.is_none() => {
                return Err(RouteError::OwnerNotProven { payment_id, client_id: kept.client_id })
            }
            Some(_) => {}
        }
        let unreadable = |source| RouteError::Unreadable { payment_id, source };
        let body = ipn::parse_json(kept.raw_ipn.as_bytes()).map_err(unreadable)?;
        let incoming = ipn::parse_ipn(&body, &kept.raw_ipn).map_err(unreadable)?;
        let stored = payments::store_ipn(&mut *tx, &incoming).await.map_err(|e| match e {
            StoreIpnError::UnknownClient(client_id) => RouteError::ClientStillUnknown { payment_id, client_id },
            StoreIpnError::Database(e) => RouteError::Database(e),
        })?;
        unroutable_ipns::mark_routed(&mut tx, payment_id, operator).await?;
        tx.commit().await?;
        info!(payment_id, client_id = %kept.client_id, status = %stored.payment_status, routed_by = operator, "unroutable IPN routed");
        stored
    };

    let workflow = if stored.workflow_started {
        WorkflowStart::AlreadyStarted
    } else if !stored.needs_workflow() {
        WorkflowStart::NotPayable
    } else {
        match start_and_record(pool, gateway, payment_id, &kept.client_id).await {
            Ok(Started::Now) => WorkflowStart::Started,
            Ok(Started::AlreadyExisted) => WorkflowStart::AlreadyStarted,
            Err(e) => WorkflowStart::LeftToRedriver(e.to_string()),
        }
    };
    Ok(Routed { payment_status: stored.payment_status, already_routed, workflow })
}

fn client_error(e: ClientStoreError) -> RouteError {
    match e {
        ClientStoreError::Database(e) => RouteError::Database(e),
        other => RouteError::Database(sqlx::Error::Protocol(other.to_string())),
    }
}
