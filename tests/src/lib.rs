//! Test harness: each test gets its own database, its own task queue, its own chain (anvil with
//! the test USDT, and the ChangeNow simulator watching it), an in-process worker and an
//! in-process webhook server, all against the real Temporal dev server and real Postgres that
//! `make test` started (addresses from `.env`).

pub mod chain;
pub mod soak;
pub mod telegram;

use activities::{
    config::Secret,
    db::{self, clients::ClientSettings},
    Config,
};
use chain::TestChain;
use payout_starter::{
    cli::test_ipn::{self, TestIpn},
    temporal_gateway::TemporalGateway,
    webhook::{self, AppState, SIGNATURE_HEADER},
};
use payout_worker::{connect_temporal, PayoutServices, RunningWorker};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use temporalio_client::{Client, WorkflowGetResultOptions, WorkflowStartOptions};
use workflows::domain::{PayoutStrategy, PlatformFee};
use workflows::{
    micro_batch_conversion::BatchConverted, MicroBatchConversionInput, MicroBatchConversionOutcome, MicroBatchConversionWorkflow,
};

pub const XMR_WALLET: &str = "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A";

/// The operators' token of every test app.
pub const ADMIN_TOKEN: &str = "test-admin-token-of-32-characters";

pub fn config() -> Config {
    dotenvy::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../.env")).ok();
    let mut config = Config::from_env().expect("run the tests with `make test` (it writes .env and starts the stack)");
    // The stack's worker owns the configured metrics port and alert receiver; a test sets its own.
    config.metrics_addr = None;
    config.alert_webhook_url = None;
    config
}

/// Payment ids unique across tests and runs: workflow ids live in the shared Temporal server.
pub fn fresh_payment_id() -> i64 {
    static NEXT: AtomicI64 = AtomicI64::new(0);
    let base = chrono::Utc::now().timestamp_micros() % 1_000_000_000_000;
    base * 100 + NEXT.fetch_add(1, Ordering::Relaxed) % 100 + (std::process::id() as i64 % 97) * 1_000_000_000_000_00
}

/// A fresh database with the migrations applied.
pub async fn fresh_database(config: &Config) -> (PgPool, String) {
    let base_url = config.database_url.expose();
    let server_url = format!("{}/postgres", base_url.rsplit_once('/').expect("DATABASE_URL has a database").0);
    let name = format!("payouts_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&server_url).await.expect("Postgres is not reachable");
    admin.execute(format!(r#"CREATE DATABASE "{name}""#).as_str()).await.expect("cannot create test database");
    let url = format!("{}/{name}", server_url.rsplit_once('/').map(|(s, _)| s).unwrap_or_default());
    let pool = db::connect(&url).await.expect("cannot connect to the test database");
    db::MIGRATOR.run(&pool).await.expect("migrations failed");
    (pool, url)
}

/// A worker on its own thread and runtime, as the worker binary runs it.
pub struct TestWorker {
    shutdown: Box<dyn Fn() + Send + Sync>,
}

impl TestWorker {
    /// `config` names the chain and ChangeNow the worker talks to; `database_url` its database.
    pub fn start(config: &Config, temporal_address: &str, task_queue: &str, database_url: &str) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        let (config, address, queue, url) = (config.clone(), temporal_address.to_owned(), task_queue.to_owned(), database_url.to_owned());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async move {
                let pool = db::connect(&url).await.expect("worker cannot reach Postgres");
                let services = PayoutServices::connect(&config, pool).await.expect("worker cannot reach the chain");
                let client = connect_temporal(&address, &config.temporal_namespace, Duration::from_secs(10))
                    .await
                    .expect("worker cannot reach Temporal");
                let worker = RunningWorker::new(client, &queue, services, config.metrics_addr).expect("worker setup");
                tx.send(Box::new(worker.shutdown_handle()) as Box<dyn Fn() + Send + Sync>).ok();
                worker.run().await.expect("worker failed");
            });
        });
        let shutdown = rx.recv_timeout(Duration::from_secs(30)).expect("worker did not start");
        Self { shutdown }
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        (self.shutdown)();
    }
}

pub struct TestApp {
    pub config: Config,
    pub pool: PgPool,
    pub database_url: String,
    pub task_queue: String,
    pub temporal_address: String,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub worker: Option<TestWorker>,
    pub chain: TestChain,
    _server: webhook::RunningServer,
}

impl TestApp {
    /// Webhook + worker against the stack's Temporal server.
    pub async fn spawn() -> Self {
        let config = config();
        let address = config.temporal_address.clone();
        let mut app = Self::spawn_without_worker(config, &address).await;
        app.start_worker();
        app
    }

    /// Webhook only, pointed at `temporal_address` (which may be down).
    pub async fn spawn_without_worker(mut config: Config, temporal_address: &str) -> Self {
        // The tests' expected amounts assume 3 %, whatever .env says.
        config.platform_fee = PlatformFee::new(Decimal::from(3)).expect("3 % is a valid fee");
        let api_key = config.changenow_api_key.as_ref().map(|k| k.expose().to_owned()).unwrap_or_else(|| "test-key".into());
        let chain = TestChain::start(&api_key).await;
        config.eth_rpc_url = Some(Secret::new(chain.anvil.url.clone()));
        config.changenow_api_url = Some(Secret::new(chain.changenow_url()));
        config.changenow_api_key = Some(Secret::new(api_key));
        // The sandbox's NOWPayments: every payment is confirmed there before it is routed.
        config.nowpayments_api_url = chain.changenow_url();
        config.nowpayments_api_key = Some(Secret::new(changenow_simulator::config::LOCAL_NOWPAYMENTS_API_KEY));
        config.usdt_contract = Some(chain.usdt.to_checksum(None));
        config.usdc_contract = Some(chain.usdc.to_checksum(None));
        config.host_wallet_private_key = Some(Secret::new(chain::HOT_WALLET_KEY));
        config.admin_token = Some(Secret::new(ADMIN_TOKEN));
        // The sandbox's Telegram: registrations prove channel ownership through it.
        config.telegram.bot_token = Some(Secret::new(changenow_simulator::config::LOCAL_TELEGRAM_BOT_TOKEN));
        config.telegram.api_url = chain.changenow_url().parse().expect("the sandbox's URL");
        config.telegram.bot_username = Some(changenow_simulator::config::LOCAL_TELEGRAM_BOT_USERNAME.to_owned());
        // Stuck transfers are replaced quickly in tests (automine off).
        config.transfer_stuck_after = Duration::from_secs(2);
        let (pool, database_url) = fresh_database(&config).await;
        let task_queue = format!("test-{}", uuid::Uuid::new_v4().simple());
        let gateway = Arc::new(TemporalGateway::new(temporal_address, &config.temporal_namespace, &task_queue, config.platform_fee));
        let state = AppState {
            pool: pool.clone(),
            ipn_secret: config.nowpayments_ipn_secret.clone(),
            temporal: gateway,
            admin_token: config.admin_token.clone(),
            temporal_ui_url: config.temporal_ui_url.clone(),
            telegram: config.telegram.clone(),
        };
        let server =
            webhook::spawn("127.0.0.1:0".parse().unwrap(), state, Duration::from_millis(300)).await.expect("cannot start the webhook");
        Self {
            config,
            pool,
            database_url,
            task_queue,
            temporal_address: temporal_address.to_owned(),
            addr: server.addr,
            http: reqwest::Client::new(),
            worker: None,
            chain,
            _server: server,
        }
    }

    pub fn start_worker(&mut self) {
        self.worker = Some(TestWorker::start(&self.config, &self.temporal_address, &self.task_queue, &self.database_url));
    }

    pub fn webhook_url(&self) -> String {
        format!("http://{}/webhooks/nowpayments", self.addr)
    }

    pub fn secret(&self) -> &Secret {
        &self.config.nowpayments_ipn_secret
    }

    pub async fn temporal(&self) -> Client {
        connect_temporal(&self.temporal_address, &self.config.temporal_namespace, Duration::from_secs(5))
            .await
            .expect("Temporal is not reachable")
    }

    /// Resets a workflow to its first workflow task, as `temporal workflow reset --type
    /// FirstWorkflowTask` does: a new run under the same workflow id, from the start.
    pub async fn reset_to_first_workflow_task(&self, workflow_id: &str) -> String {
        use temporalio_common::protos::temporal::api::{common::v1::WorkflowExecution, workflowservice::v1::ResetWorkflowExecutionRequest};
        let request = ResetWorkflowExecutionRequest {
            namespace: self.config.temporal_namespace.clone(),
            workflow_execution: Some(WorkflowExecution { workflow_id: workflow_id.to_owned(), run_id: String::new() }),
            reason: "test: reset to the first workflow task".into(),
            // 1 started, 2 task scheduled, 3 task started, 4 task completed.
            workflow_task_finish_event_id: 4,
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        };
        let mut service = self.temporal().await.connection().workflow_service();
        let response = service.reset_workflow_execution(temporalio_client::tonic::Request::new(request)).await.expect("reset refused");
        response.into_inner().run_id
    }

    /// ChangeNow and the hot wallet as the worker sees them, for operator commands in tests.
    pub async fn services(&self) -> payout_worker::PayoutServices {
        payout_worker::PayoutServices::connect(&self.config, self.pool.clone()).await.expect("services")
    }

    /// The operator's conversion recovery (`starter conversion resume|return-rows`) on this app.
    pub fn recovery<'a>(&'a self, services: &'a PayoutServices) -> payout_starter::cli::conversions::Recovery<'a> {
        payout_starter::cli::conversions::Recovery {
            pool: &self.pool,
            changenow: &services.changenow,
            hot_wallet: &services.hot_wallet,
            usdt_contract: self.chain.usdt,
            usdc_contract: Some(self.chain.usdc),
            changenow_senders: &services.changenow_senders,
        }
    }

    pub async fn add_client(&self, client_id: &str, strategy: PayoutStrategy) {
        let settings = ClientSettings {
            client_id: client_id.to_owned(),
            wallet_address: XMR_WALLET.to_owned(),
            payout_currency: "xmr".into(),
            payout_network: "xmr".into(),
            payout_strategy: strategy,
            payout_threshold_usd: match strategy {
                PayoutStrategy::Threshold => Decimal::from(100),
                PayoutStrategy::Instant => Decimal::ZERO,
            },
        };
        db::clients::insert(&self.pool, &settings).await.expect("cannot add client");
    }

    /// An instant client paid in `currency` on `network` at `wallet`.
    pub async fn add_instant_client(&self, client_id: &str, currency: &str, network: &str, wallet: &str) {
        let settings = ClientSettings {
            client_id: client_id.to_owned(),
            wallet_address: wallet.to_owned(),
            payout_currency: currency.into(),
            payout_network: network.into(),
            payout_strategy: PayoutStrategy::Instant,
            payout_threshold_usd: Decimal::ZERO,
        };
        db::clients::insert(&self.pool, &settings).await.expect("cannot add client");
    }

    /// Polls until the payment's instant payout reaches `status`; returns the row as JSON.
    pub async fn wait_for_instant_payout(&self, payment_id: i64, status: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        let mut last = Value::Null;
        while start.elapsed() < timeout {
            let row: Option<Value> = sqlx::query_scalar("SELECT to_jsonb(p) FROM instant_payouts p WHERE payment_id = $1")
                .bind(payment_id)
                .fetch_optional(&self.pool)
                .await
                .expect("instant payout query failed");
            if let Some(row) = row {
                if row["status"] == status {
                    return row;
                }
                last = row;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("instant payout of {payment_id} did not reach '{status}' within {timeout:?}; last seen: {last}");
    }

    /// The environment of this app's worker, for running the worker binary as a child process.
    pub fn worker_env(&self) -> Vec<(String, String)> {
        let c = &self.config;
        let secret = |s: &Option<Secret>| s.as_ref().map(|s| s.expose().to_owned()).unwrap_or_default();
        vec![
            ("DATABASE_URL".into(), self.database_url.clone()),
            ("TEMPORAL_ADDRESS".into(), self.temporal_address.clone()),
            ("TEMPORAL_NAMESPACE".into(), c.temporal_namespace.clone()),
            ("TEMPORAL_TASK_QUEUE".into(), self.task_queue.clone()),
            ("ETH_RPC_URL".into(), secret(&c.eth_rpc_url)),
            ("HOST_WALLET_PRIVATE_KEY".into(), secret(&c.host_wallet_private_key)),
            ("USDT_CONTRACT".into(), c.usdt_contract.clone().unwrap_or_default()),
            ("USDC_CONTRACT".into(), c.usdc_contract.clone().unwrap_or_default()),
            ("CHANGENOW_API_URL".into(), secret(&c.changenow_api_url)),
            ("CHANGENOW_API_KEY".into(), secret(&c.changenow_api_key)),
            ("NOWPAYMENTS_IPN_SECRET".into(), c.nowpayments_ipn_secret.expose().to_owned()),
            ("NOWPAYMENTS_API_URL".into(), c.nowpayments_api_url.clone()),
            ("NOWPAYMENTS_API_KEY".into(), secret(&c.nowpayments_api_key)),
            ("TRANSFER_STUCK_AFTER_SECS".into(), c.transfer_stuck_after.as_secs().to_string()),
            // Set empty so .env's values (the stack worker's metrics port, its receiver) do not apply.
            ("METRICS_ADDR".into(), c.metrics_addr.map(|a| a.to_string()).unwrap_or_default()),
            ("ALERT_WEBHOOK_URL".into(), secret(&c.alert_webhook_url)),
        ]
    }

    /// The worker binary on this app's queue, set to SIGKILL itself right after its first
    /// broadcast (`PAYOUT_FAULT_KILL_AFTER_BROADCAST=1`); see [`wait_for_self_kill`].
    pub fn spawn_worker_that_dies_after_broadcast(&self) -> std::process::Child {
        std::process::Command::new(worker_binary())
            .envs(self.worker_env())
            .env("PAYOUT_FAULT_KILL_AFTER_BROADCAST", "1")
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("cannot start the worker binary")
    }

    /// Makes the sandbox's NOWPayments know the payment as the IPN describes it, then sends the
    /// correctly signed IPN; returns the status and the JSON answer.
    pub async fn send_ipn(&self, ipn: &TestIpn) -> (u16, Value) {
        self.nowpayments_knows(&ipn.body()).await;
        self.send_ipn_only(ipn).await
    }

    /// Sends a correctly signed IPN without telling NOWPayments anything (a lying or replayed IPN).
    pub async fn send_ipn_only(&self, ipn: &TestIpn) -> (u16, Value) {
        let (body, signature) = test_ipn::signed(ipn, self.secret().expose());
        self.post(body, Some(signature)).await
    }

    /// `POST /sim/nowpayments/payments`: NOWPayments' own record of a payment, as its API answers.
    pub async fn nowpayments_knows(&self, record: &Value) {
        let response = self
            .http
            .post(format!("{}/sim/nowpayments/payments", self.chain.changenow_url()))
            .json(record)
            .send()
            .await
            .expect("sandbox unreachable");
        assert!(response.status().is_success(), "the sandbox refused the record: {}", response.status());
    }

    /// Sends any body with any signature header.
    pub async fn post(&self, body: String, signature: Option<String>) -> (u16, Value) {
        let mut request = self.http.post(self.webhook_url()).header("content-type", "application/json").body(body);
        if let Some(sig) = signature {
            request = request.header(SIGNATURE_HEADER, sig);
        }
        let response = request.send().await.expect("webhook unreachable");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn count(&self, sql: &str, payment_id: i64) -> i64 {
        sqlx::query_scalar(sql).bind(payment_id).fetch_one(&self.pool).await.expect("count query failed")
    }

    pub async fn accumulation_rows(&self, payment_id: i64) -> i64 {
        self.count("SELECT count(*) FROM payout_accumulation WHERE nowpayments_payment_id = $1", payment_id).await
    }

    pub async fn payment_rows(&self, payment_id: i64) -> i64 {
        self.count("SELECT count(*) FROM payments WHERE payment_id = $1", payment_id).await
    }

    pub async fn payment_status(&self, payment_id: i64) -> Option<String> {
        sqlx::query_scalar("SELECT status FROM payments WHERE payment_id = $1")
            .bind(payment_id)
            .fetch_optional(&self.pool)
            .await
            .expect("status query failed")
    }

    /// Polls until Temporal's acceptance of the payment's workflow is recorded.
    pub async fn wait_for_workflow_start(&self, payment_id: i64, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            let started: Option<bool> = sqlx::query_scalar("SELECT workflow_started_at IS NOT NULL FROM payments WHERE payment_id = $1")
                .bind(payment_id)
                .fetch_optional(&self.pool)
                .await
                .expect("query failed");
            if started == Some(true) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Polls until the payment reaches `status` or `timeout` passes.
    pub async fn wait_for_status(&self, payment_id: i64, status: &str, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.payment_status(payment_id).await.as_deref() == Some(status) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

pub fn test_ipn(payment_id: i64, client_id: &str, price_usd: Decimal, outcome_eth: Decimal) -> TestIpn {
    TestIpn { payment_id, user_id: 6271402111, client_id: client_id.to_owned(), status: "finished".into(), price_usd, outcome_eth }
}

/// The client's latest payout batch once it is `status` (at most 90 s).
pub async fn batch_in(app: &TestApp, client_id: &str, status: &str) -> uuid::Uuid {
    let started = Instant::now();
    loop {
        let found: Option<uuid::Uuid> =
            sqlx::query_scalar("SELECT batch_id FROM payout_batches WHERE client_id = $1 AND status = $2 ORDER BY created_at DESC LIMIT 1")
                .bind(client_id)
                .bind(status)
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        if let Some(id) = found {
            return id;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "no '{status}' payout batch for {client_id} after 90 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Threshold payments of the given USD prices (settled at 3000 USD/ETH), accumulated.
/// (Adds the client, threshold 100 USD, when it does not exist yet.)
pub async fn accumulate(app: &TestApp, client_id: &str, prices: &[Decimal]) {
    if db::clients::find(&app.pool, client_id).await.expect("client query").is_none() {
        app.add_client(client_id, PayoutStrategy::Threshold).await;
    }
    for price in prices {
        let payment_id = fresh_payment_id();
        let eth = (*price / Decimal::from(3000)).round_dp(18);
        let (status, _) = app.send_ipn(&test_ipn(payment_id, client_id, *price, eth)).await;
        assert_eq!(status, 200);
        // Generous: with every test file's workers sharing two cores, 30 s was once too short.
        assert!(
            app.wait_for_status(payment_id, "accumulated", Duration::from_secs(90)).await,
            "payment {payment_id} of {client_id} did not reach accumulated in 90 s"
        );
    }
}

/// `rows` pending threshold payments of 1 USD (0.97 net, 0.000323333333333333 ETH) for a new
/// threshold client, written straight to Postgres: a backlog, without sending thousands of IPNs.
pub async fn fill_pending_pool(pool: &PgPool, client_id: &str, rows: i64) {
    sqlx::query(
        "INSERT INTO clients (client_id, wallet_address, payout_currency, payout_network, payout_strategy, payout_threshold_usd)
         VALUES ($1, $2, 'xmr', 'xmr', 'threshold', 100)",
    )
    .bind(client_id)
    .bind(XMR_WALLET)
    .execute(pool)
    .await
    .expect("backlog client");
    let first_payment_id = fresh_payment_id();
    sqlx::query(
        "INSERT INTO payments (payment_id, order_id, user_id, client_id, payment_status, status, price_amount, price_currency,
             outcome_amount, outcome_currency, raw_ipn, fee_percent, fee_amount_usd, net_amount_usd, fee_amount_eth, net_amount_eth)
         SELECT $1 + g, 'PGP-1|' || $2, 1, $2, 'finished', 'accumulated', 1, 'usd', 0.000333333333333333, 'eth', '{}',
                3, 0.03, 0.97, 0.00001, 0.000323333333333333
         FROM generate_series(1, $3) g",
    )
    .bind(first_payment_id)
    .bind(client_id)
    .bind(rows)
    .execute(pool)
    .await
    .expect("backlog payments");
    sqlx::query(
        "INSERT INTO payout_accumulation (nowpayments_payment_id, client_id, user_id, payment_amount_usd, payment_currency,
             payment_timestamp, fee_amount_usd, net_amount_usd, accumulated_eth, client_wallet_address,
             client_payout_currency, client_payout_network)
         SELECT $1 + g, $2, 1, 1, 'usd', now(), 0.03, 0.97, 0.000323333333333333, $4, 'xmr', 'xmr'
         FROM generate_series(1, $3) g",
    )
    .bind(first_payment_id)
    .bind(client_id)
    .bind(rows)
    .bind(XMR_WALLET)
    .execute(pool)
    .await
    .expect("backlog rows");
}

/// The one batch a conversion run converted (panics otherwise).
pub fn only_batch(outcome: MicroBatchConversionOutcome) -> BatchConverted {
    match outcome {
        MicroBatchConversionOutcome::Converted { mut batches } if batches.len() == 1 => batches.remove(0),
        other => panic!("expected exactly one converted batch, got {other:?}"),
    }
}

/// Starts a conversion run (workflow id `micro-batch-conversion-{name}-{uuid}`); returns its id.
pub async fn start_conversion(app: &TestApp, name: &str, input: MicroBatchConversionInput) -> String {
    let id = format!("{}-{name}-{}", workflows::micro_batch_conversion::SCHEDULE_ID, uuid::Uuid::new_v4().simple());
    app.temporal()
        .await
        .start_workflow(MicroBatchConversionWorkflow::run, input, WorkflowStartOptions::new(app.task_queue.clone(), id.clone()).build())
        .await
        .expect("start the conversion");
    id
}

/// The result of the latest run of conversion `workflow_id`.
pub async fn conversion_result(app: &TestApp, workflow_id: &str) -> Result<MicroBatchConversionOutcome, String> {
    let handle = app.temporal().await.get_workflow_handle::<MicroBatchConversionWorkflow>(workflow_id.to_owned());
    handle.get_result(WorkflowGetResultOptions::default()).await.map_err(|e| format!("{e:?}"))
}

pub async fn run_conversion(app: &TestApp, name: &str) -> Result<MicroBatchConversionOutcome, String> {
    let id = start_conversion(app, name, MicroBatchConversionInput::default()).await;
    conversion_result(app, &id).await
}

/// One run of the threshold payout sweep (what the 5-minute Schedule starts); returns how many
/// payouts it started.
pub async fn run_sweep(app: &TestApp, max_age_days: u32, only_client: Option<&str>) -> usize {
    use workflows::{ThresholdPayoutSweepInput, ThresholdPayoutSweepWorkflow};
    let client = app.temporal().await;
    let input = ThresholdPayoutSweepInput { max_age_days, only_client: only_client.map(str::to_owned) };
    let id = format!("threshold-payout-sweep-test-{}", uuid::Uuid::new_v4().simple());
    let handle = client
        .start_workflow(ThresholdPayoutSweepWorkflow::run, input, WorkflowStartOptions::new(app.task_queue.clone(), id).build())
        .await
        .expect("start the sweep");
    handle.get_result(WorkflowGetResultOptions::default()).await.expect("the sweep completes")
}

/// The worker binary `make test` built (scripts/up.sh builds it before the tests run).
pub fn worker_binary() -> std::path::PathBuf {
    binary("worker")
}

/// A binary of the workspace `make test` built (scripts/up.sh builds the worker, the starter and
/// the simulator before the tests run).
pub fn binary(name: &str) -> std::path::PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let binary = target.join("debug").join(name);
    assert!(binary.exists(), "{} is missing: run `make test` (it builds the binaries first)", binary.display());
    binary
}

/// Waits (at most 60 s) for a worker process started with `PAYOUT_FAULT_KILL_AFTER_BROADCAST=1`
/// to die, and returns how it ended.
pub async fn wait_for_self_kill(mut worker: std::process::Child) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || {
        for _ in 0..600 {
            if let Some(status) = worker.try_wait().expect("worker process") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = worker.kill();
        panic!("the worker never reached the broadcast within 60 s");
    })
    .await
    .expect("waiting for the worker")
}

/// A free local TCP port, never the same one twice in this process (tests run in parallel
/// threads, and two of them must not be handed one port between its check and its use).
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("no free port");
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}
