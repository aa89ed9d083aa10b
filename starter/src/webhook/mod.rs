//! The HTTP server: `POST /webhooks/nowpayments` and `GET /health`.

mod nowpayments;

pub use nowpayments::SIGNATURE_HEADER;

use crate::{redriver, temporal_gateway::TemporalGateway};
use activities::config::Secret;
use axum::{
    extract::DefaultBodyLimit,
    routing::{get, post},
    Json, Router,
};
use serde_json::json;
use sqlx::PgPool;
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::net::TcpListener;

/// IPNs are a few hundred bytes; anything near this limit is not from NOWPayments.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub ipn_secret: Secret,
    pub temporal: Arc<TemporalGateway>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/webhooks/nowpayments", post(nowpayments::receive_ipn))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// A running server: its address, and the task serving it.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<()>,
}

/// Binds, then serves in the background with the re-driver beside it.
pub async fn spawn(addr: SocketAddr, state: AppState, redrive_every: Duration) -> std::io::Result<RunningServer> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let redriver = tokio::spawn(redriver::run(state.pool.clone(), state.temporal.clone(), redrive_every));
    let app = router(state);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "webhook server stopped");
        }
        redriver.abort();
    });
    Ok(RunningServer { addr, task })
}
