//! The worker: connects to Temporal and Postgres, registers every workflow and activity, runs.
//! A library as well as a binary so the integration tests run the very same worker in-process.

use activities::{
    alert_webhook::AlertWebhookActivities,
    changenow::{ChangeNowClient, REQUEST_TIMEOUT as CHANGENOW_TIMEOUT},
    config::{Config, ConfigError, TemporalSecurity},
    db::alert_rules::AlertRuleActivities,
    ethereum::{HotWallet, OutboxSettings},
    metrics::WorkerMetrics,
    reconciliation::ReconciliationActivities,
    BenchmarkActivitiesImpl, ChangeNowActivities, ConversionLedgerActivities, EthereumActivities, InstantPayoutLedgerActivities,
    PaymentLedgerActivities, PayoutLedgerActivities, StrandedBatchActivities,
};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::{str::FromStr, sync::Arc, time::Duration};
use temporalio_client::{Client, ClientOptions, ClientTlsOptions, Connection, ConnectionOptions, TlsOptions};
use temporalio_common::telemetry::{metrics::CoreMeter, start_prometheus_metric_exporter, PrometheusExporterOptions, TelemetryOptions};
use temporalio_sdk::{
    runtime::{
        worker_tuner::{FixedSizeSlotSupplier, TunerHolder},
        PollerBehavior, RuntimeOptions,
    },
    Runtime, Worker, WorkerOptions,
};
use tracing::info;
use workflows::{
    AlertRulesWorkflow, ClientPayoutWorkflow, DailyReconciliationWorkflow, InstantPayoutWorkflow, MicroBatchConversionWorkflow,
    NoopBenchmarkWorkflow, OutboxWatchWorkflow, PaymentWorkflow, ThresholdPayoutSweepWorkflow,
};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("TEMPORAL_ADDRESS '{0}' is not a valid host:port")]
    BadAddress(String),
    #[error("cannot reach Temporal at {address}: {source}")]
    Connect { address: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("cannot set up the worker: {0}")]
    Setup(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the hot wallet cannot start: {0}")]
    HotWallet(#[from] activities::ethereum::HotWalletError),
}

/// What the activities talk to, built once from the configuration.
#[derive(Clone)]
pub struct PayoutServices {
    pub pool: PgPool,
    pub hot_wallet: Arc<HotWallet>,
    pub changenow: ChangeNowClient,
    pub nowpayments: activities::nowpayments::NowPaymentsClient,
    pub usdt_contract: Option<alloy::primitives::Address>,
    pub usdc_contract: Option<alloy::primitives::Address>,
    /// `CHANGENOW_SENDER_ADDRESSES`: the only senders whose refunds are credited.
    pub changenow_senders: Vec<alloy::primitives::Address>,
    pub fault_kill_after_broadcast: bool,
    pub alert_webhook_url: Option<String>,
    /// The worker's own metrics, on the SDK's meter (`None` without `METRICS_ADDR`).
    pub metrics: Option<WorkerMetrics>,
    pub tuning: activities::config::WorkerTuning,
}

impl PayoutServices {
    pub async fn connect(config: &Config, pool: PgPool) -> Result<Self, WorkerError> {
        let rpc_url = Config::required(&config.eth_rpc_url, "ETH_RPC_URL")?;
        let key = Config::required(&config.host_wallet_private_key, "HOST_WALLET_PRIVATE_KEY")?;
        let changenow_url = Config::required(&config.changenow_api_url, "CHANGENOW_API_URL")?;
        let changenow_key = Config::required(&config.changenow_api_key, "CHANGENOW_API_KEY")?;
        let nowpayments_key = Config::required(&config.nowpayments_api_key, "NOWPAYMENTS_API_KEY")?;
        let usdt_contract = token_address(config.usdt_contract.as_deref(), "USDT_CONTRACT")?;
        let usdc_contract = token_address(config.usdc_contract.as_deref(), "USDC_CONTRACT")?;
        let changenow_senders = config
            .changenow_sender_addresses
            .iter()
            .map(|text| token_address(Some(text), "CHANGENOW_SENDER_ADDRESSES").map(Option::unwrap_or_default))
            .collect::<Result<Vec<_>, _>>()?;
        let settings = OutboxSettings {
            confirmations: config.eth_confirmations,
            stuck_after: config.transfer_stuck_after,
            max_fee_per_gas: config.max_fee_per_gas_wei,
            abandon_unsent_after: OutboxSettings::ABANDON_UNSENT_AFTER,
        };
        let hot_wallet = Arc::new(HotWallet::connect(pool.clone(), rpc_url, key, settings).await?);
        config.check_confirmations_for_chain(hot_wallet.chain_id())?;
        let changenow =
            ChangeNowClient::new(changenow_url, changenow_key, CHANGENOW_TIMEOUT).map_err(|e| WorkerError::Setup(e.to_string()))?;
        let nowpayments = activities::nowpayments::NowPaymentsClient::new(
            &config.nowpayments_api_url,
            nowpayments_key,
            activities::nowpayments::REQUEST_TIMEOUT,
        )
        .map_err(|e| WorkerError::Setup(e.to_string()))?;
        Ok(Self {
            pool,
            hot_wallet,
            changenow,
            nowpayments,
            usdt_contract,
            usdc_contract,
            changenow_senders,
            fault_kill_after_broadcast: config.fault_kill_after_broadcast,
            alert_webhook_url: config.alert_webhook_url.as_ref().map(|url| url.expose().to_owned()),
            metrics: None,
            tuning: config.worker_tuning,
        })
    }
}

/// Logs for people (`LOG_FORMAT=text`, the default) or for log shippers (`LOG_FORMAT=json`, one
/// JSON object per line with the structured fields); `RUST_LOG` filters (default `info`).
pub fn init_logging() -> Result<(), WorkerError> {
    let filter = || tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    match std::env::var("LOG_FORMAT").unwrap_or_default().trim() {
        "" | "text" => tracing_subscriber::fmt().with_env_filter(filter()).init(),
        "json" => tracing_subscriber::fmt().json().flatten_event(true).with_current_span(false).with_env_filter(filter()).init(),
        other => {
            return Err(WorkerError::Config(ConfigError::Invalid { name: "LOG_FORMAT", reason: format!("'{other}' is not text or json") }))
        }
    }
    Ok(())
}

/// A token contract from the configuration, if set.
fn token_address(text: Option<&str>, name: &'static str) -> Result<Option<alloy::primitives::Address>, ConfigError> {
    text.map(|text| {
        alloy::primitives::Address::from_str(text.trim())
            .map_err(|_| ConfigError::Invalid { name, reason: format!("'{text}' is not an Ethereum address") })
    })
    .transpose()
}

/// Connects a Temporal client in plain text (a dev server); fails within `timeout` when nothing
/// answers.
pub async fn connect_temporal(address: &str, namespace: &str, timeout: Duration) -> Result<Client, WorkerError> {
    connect_temporal_secured(address, namespace, &TemporalSecurity::default(), timeout).await
}

/// Connects a Temporal client with the configured TLS, client certificate and API key.
pub async fn connect_temporal_as_configured(config: &Config, timeout: Duration) -> Result<Client, WorkerError> {
    connect_temporal_secured(&config.temporal_address, &config.temporal_namespace, &config.temporal_security, timeout).await
}

pub async fn connect_temporal_secured(
    address: &str,
    namespace: &str,
    security: &TemporalSecurity,
    timeout: Duration,
) -> Result<Client, WorkerError> {
    let scheme = if security.tls.is_some() { "https" } else { "http" };
    let url = url::Url::parse(&format!("{scheme}://{address}")).map_err(|_| WorkerError::BadAddress(address.to_owned()))?;
    let tls = security.tls.as_ref().map(|tls| {
        let client = tls.client_identity.as_ref().map(|identity| {
            ClientTlsOptions::builder()
                .client_cert(identity.cert_pem.clone())
                .client_private_key(identity.key_pem.expose().as_bytes().to_vec())
                .build()
        });
        TlsOptions::builder()
            .maybe_server_root_ca_cert(tls.server_ca_pem.clone())
            .maybe_domain(tls.server_name.clone())
            .maybe_client_tls_options(client)
            .build()
    });
    let options = ConnectionOptions::new(url)
        .connect_timeout(timeout)
        .identity(identity())
        .maybe_tls_options(tls)
        .maybe_api_key(security.api_key.as_ref().map(|key| key.expose().to_owned()))
        .build();
    let connection = tokio::time::timeout(timeout, Connection::connect(options))
        .await
        .map_err(|_| WorkerError::Connect { address: address.to_owned(), source: "timed out".into() })?
        .map_err(|e| WorkerError::Connect { address: address.to_owned(), source: e.into() })?;
    Client::new(connection, ClientOptions::new(namespace).build())
        .map_err(|e| WorkerError::Connect { address: address.to_owned(), source: e.into() })
}

fn identity() -> String {
    format!("payout-engine@{}", std::process::id())
}

/// Every workflow and activity of the payout engine, on one task queue.
pub fn worker_options(task_queue: &str, services: PayoutServices) -> Result<WorkerOptions, WorkerError> {
    let refund_address = services.hot_wallet.address().to_checksum(None);
    let tuning = services.tuning;
    let slots = FixedSizeSlotSupplier::new;
    let tuner = TunerHolder::builder()
        .workflow_task_slot_supplier(slots(tuning.max_workflow_tasks))
        .activity_task_slot_supplier(slots(tuning.max_activities))
        .local_activity_task_slot_supplier(slots(tuning.max_local_activities))
        .nexus_task_slot_supplier(slots(1))
        .build();
    Ok(WorkerOptions::new(task_queue)
        .tuner(tuner)
        .maybe_workflow_task_poller_behavior(tuning.workflow_pollers.map(PollerBehavior::SimpleMaximum))
        .maybe_activity_task_poller_behavior(tuning.activity_pollers.map(PollerBehavior::SimpleMaximum))
        .register_workflow::<PaymentWorkflow>()
        .and_then(|o| o.register_workflow::<InstantPayoutWorkflow>())
        .and_then(|o| o.register_workflow::<MicroBatchConversionWorkflow>())
        .and_then(|o| o.register_workflow::<ClientPayoutWorkflow>())
        .and_then(|o| o.register_workflow::<ThresholdPayoutSweepWorkflow>())
        .and_then(|o| o.register_workflow::<OutboxWatchWorkflow>())
        .and_then(|o| o.register_workflow::<AlertRulesWorkflow>())
        .and_then(|o| o.register_workflow::<NoopBenchmarkWorkflow>())
        .and_then(|o| o.register_workflow::<DailyReconciliationWorkflow>())
        .map_err(|e| WorkerError::Setup(e.to_string()))?
        .register_activities(PaymentLedgerActivities::new(services.pool.clone()))
        .register_activities(activities::db::payment_verification::PaymentVerificationActivities::new(services.pool.clone()))
        .register_activities(activities::nowpayments::NowPaymentsActivities::new(services.nowpayments.clone(), services.pool.clone()))
        .register_activities(InstantPayoutLedgerActivities::new(services.pool.clone()))
        .register_activities(ConversionLedgerActivities::new(services.pool.clone()))
        .register_activities(PayoutLedgerActivities::new(services.pool.clone()))
        .register_activities(StrandedBatchActivities::new(services.pool.clone()))
        .register_activities(activities::db::payout_approval::PayoutApprovalActivities::new(services.pool.clone()))
        .register_activities(AlertRuleActivities::new(services.pool.clone(), services.metrics.clone()))
        .register_activities(AlertWebhookActivities::new(services.pool.clone(), services.alert_webhook_url.clone()))
        .register_activities(ReconciliationActivities::new(
            services.pool.clone(),
            services.hot_wallet.clone(),
            services.changenow.clone(),
            services.usdt_contract,
            services.usdc_contract,
        ))
        .register_activities(ChangeNowActivities::new(services.changenow, services.pool, refund_address))
        .register_activities(
            EthereumActivities::new(services.hot_wallet, services.usdt_contract)
                .with_usdc_contract(services.usdc_contract)
                .with_changenow_senders(services.changenow_senders)
                .killing_the_process_after_broadcast(services.fault_kill_after_broadcast),
        )
        .register_activities(activities::payout_starts::PayoutStartActivities)
        .register_activities(BenchmarkActivitiesImpl)
        .build())
}

/// Runs a worker until it is shut down (the returned handle) or fails.
pub struct RunningWorker {
    worker: Worker,
    // The worker's core runtime (telemetry, pollers) must live as long as the worker.
    _runtime: Runtime,
    metrics_server: Option<MetricsServer>,
}

/// The SDK's Prometheus endpoint, stopped with the worker.
struct MetricsServer {
    bound_addr: SocketAddr,
    abort_handle: tokio::task::AbortHandle,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.abort_handle.abort();
    }
}

impl RunningWorker {
    /// With `metrics_addr`, the SDK's Prometheus exporter serves its worker metrics and ours there.
    pub fn new(
        client: Client,
        task_queue: &str,
        mut services: PayoutServices,
        metrics_addr: Option<SocketAddr>,
    ) -> Result<Self, WorkerError> {
        let setup = |e: &dyn std::fmt::Display| WorkerError::Setup(e.to_string());
        let mut telemetry = TelemetryOptions::builder().build();
        let mut exporter = None;
        if let Some(addr) = metrics_addr {
            let options = PrometheusExporterOptions::builder()
                .socket_addr(addr)
                .counters_total_suffix(true)
                .use_seconds_for_durations(true)
                .unit_suffix(true)
                .build();
            let started = start_prometheus_metric_exporter(options)
                .map_err(|e| WorkerError::Setup(format!("cannot serve metrics on METRICS_ADDR {addr}: {e}")))?;
            let meter: Arc<dyn CoreMeter> = started.meter.clone();
            services.metrics = Some(WorkerMetrics::new(&meter));
            telemetry = TelemetryOptions::builder().metrics(meter).build();
            info!(address = %started.bound_addr, "worker metrics at /metrics");
            exporter = Some(MetricsServer { bound_addr: started.bound_addr, abort_handle: started.abort_handle });
        }
        let options = RuntimeOptions::builder().telemetry_options(telemetry).build().map_err(|e| setup(&e))?;
        let runtime = Runtime::from_current_tokio(options).map_err(|e| setup(&e))?;
        let worker = Worker::new(&runtime, client, worker_options(task_queue, services)?).map_err(|e| setup(&e))?;
        Ok(Self { worker, _runtime: runtime, metrics_server: exporter })
    }

    /// Where the metrics are served (the bound port when `METRICS_ADDR` asked for port 0).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(|s| s.bound_addr)
    }

    /// A function that asks the worker to finish its current tasks and stop.
    pub fn shutdown_handle(&self) -> impl Fn() + Send + Sync + 'static {
        self.worker.shutdown_handle()
    }

    pub async fn run(mut self) -> Result<(), WorkerError> {
        self.worker.run().await.map_err(|e| WorkerError::Setup(e.to_string()))
    }
}
