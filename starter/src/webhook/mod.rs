//! The HTTP server: `POST /webhooks/nowpayments`, `GET /health`, `GET /ready`, `GET /metrics`
//! ([`crate::metrics`]) and the JSON API ([`crate::api`]).

mod nowpayments;
mod security_headers;
mod serve;

pub use nowpayments::SIGNATURE_HEADER;

use crate::{
    api::ApiState,
    metrics::{HttpMetrics, MetricsState},
    redriver,
    temporal_gateway::TemporalGateway,
    workflow_launcher::WorkflowLauncher,
};
use activities::config::Secret;
use axum::{
    extract::{DefaultBodyLimit, State},
    http::StatusCode,
    routing::{get, post},
    Json, Router,
};
use serde_json::json;
use sqlx::PgPool;
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::net::TcpListener;

/// IPNs and API requests are a few hundred bytes; anything near this limit is not a client's.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the server needs; [`spawn`] builds the launcher from it.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub ipn_secret: Secret,
    pub temporal: Arc<TemporalGateway>,
    /// `ADMIN_TOKEN`: the operator routes are off without it.
    pub admin_token: Option<Secret>,
    /// `TEMPORAL_UI_URL`: the admin console links every workflow it names there.
    pub temporal_ui_url: String,
    /// `TELEGRAM_*`: registration proves channel ownership through the platform's bot.
    pub telegram: activities::telegram::TelegramConfig,
}

#[derive(Clone)]
struct HandlerState {
    pool: PgPool,
    ipn_secret: Secret,
    launcher: WorkflowLauncher,
    metrics: HttpMetrics,
}

/// Temporal start calls in flight at once (each is one short RPC).
const PARALLEL_STARTS: usize = 32;

fn router(state: HandlerState, api: ApiState) -> Router {
    let metrics = MetricsState { pool: state.pool.clone(), http: state.metrics.clone() };
    let readiness = ReadyState { pool: state.pool.clone(), temporal: api.temporal.clone() };
    let router = Router::new()
        .route("/webhooks/nowpayments", post(nowpayments::receive_ipn))
        .route("/health", get(health))
        .with_state(state)
        .merge(Router::new().route("/metrics", get(crate::metrics::serve)).with_state(metrics))
        .merge(Router::new().route("/ready", get(ready)).with_state(readiness))
        .merge(crate::api::router(api.clone()))
        .merge(crate::pages::router(api))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    security_headers::with_security_headers(router)
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// How long `/ready` waits for each dependency.
const READY_DEADLINE: Duration = Duration::from_secs(2);

/// 200 when Postgres and Temporal both answer, else 503 naming what does not: for load
/// balancers and orchestrators (an IPN is still accepted without Temporal; see the re-driver).
async fn ready(State(state): State<ReadyState>) -> (StatusCode, Json<serde_json::Value>) {
    let postgres = tokio::time::timeout(READY_DEADLINE, sqlx::query("SELECT 1").execute(&state.pool)).await;
    let postgres = match postgres {
        Ok(Ok(_)) => "ok".to_owned(),
        Ok(Err(e)) => format!("unavailable: {e}"),
        Err(_) => format!("no answer within {READY_DEADLINE:?}"),
    };
    let temporal = match state.temporal.ping(READY_DEADLINE).await {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("unavailable: {e}"),
    };
    let ready = postgres == "ok" && temporal == "ok";
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({"status": if ready { "ready" } else { "not_ready" }, "postgres": postgres, "temporal": temporal})))
}

#[derive(Clone)]
struct ReadyState {
    pool: PgPool,
    temporal: Arc<TemporalGateway>,
}

/// A running server: its address, and the task serving it. Dropping it stops the server and
/// the re-driver beside it.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<()>,
    redriver: tokio::task::AbortHandle,
    stop_accepting: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RunningServer {
    /// Stops accepting connections and lets the requests in flight finish, for at most `grace`.
    /// Whether they all did. (An IPN is stored before it is answered, so one cut off is sent
    /// again by NOWPayments and found as a duplicate.)
    pub async fn shut_down(mut self, grace: Duration) -> bool {
        if let Some(stop) = self.stop_accepting.take() {
            stop.send(()).ok();
        }
        tokio::time::timeout(grace, &mut self.task).await.is_ok()
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.task.abort();
        self.redriver.abort();
    }
}

/// Binds, then serves in the background with the re-driver beside it.
pub async fn spawn(addr: SocketAddr, state: AppState, redrive_every: Duration) -> std::io::Result<RunningServer> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let redriver = tokio::spawn(redriver::run(state.pool.clone(), state.temporal.clone(), redrive_every));
    let launcher = WorkflowLauncher::spawn(state.pool.clone(), state.temporal.clone(), PARALLEL_STARTS);
    let api = ApiState::new(state.pool.clone(), state.temporal.clone(), state.admin_token, &state.temporal_ui_url, state.telegram);
    let handler_state = HandlerState { pool: state.pool, ipn_secret: state.ipn_secret, launcher, metrics: HttpMetrics::default() };
    let app = router(handler_state, api);
    let redriver_handle = redriver.abort_handle();
    let (stop_accepting, stop) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stopped = async {
            stop.await.ok();
        };
        serve::serve(listener, app, stopped).await;
        redriver.abort();
    });
    Ok(RunningServer { addr, task, redriver: redriver_handle, stop_accepting: Some(stop_accepting) })
}
