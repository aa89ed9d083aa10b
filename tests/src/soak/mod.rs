//! The chaos soak (`make soak`, and its short variant in `make test`): the whole engine on parts
//! the soak owns, two worker processes on one task queue, a stream of signed IPNs, and faults
//! injected by a seeded plan; then every invariant of DESIGN.md is checked against Postgres,
//! the chain and the simulated ChangeNow, and a table is printed.
//!
//! - [`parts`]: the processes it kills (Postgres, Temporal, workers, webhook);
//! - [`plan`]: the seeded fault plan; [`faults`]: carrying it out;
//! - [`traffic`]: clients, payments and the IPN sender;
//! - [`checks`]: the invariants ([`split_check`]: each conversion's shares by ETH); [`report`]: the table.

pub mod checks;
pub mod faults;
pub mod parts;
pub mod plan;
pub mod report;
pub mod rng;
pub mod split_check;
pub mod traffic;

use crate::{
    chain::{self, TestChain},
    free_port,
};
use activities::db;
use anyhow::Context;
use faults::{ExchangeFaults, FaultLog, OperatorRetries};
use parts::{OwnPostgres, OwnTemporal, Supervised};
use plan::{FaultBudget, FaultPlan};
use rng::Rng;
use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::Mutex as AsyncMutex;
use tracing::info;

pub const TASK_QUEUE: &str = "soak";
pub const IPN_SECRET: &str = "soak-ipn-secret";
pub const ADMIN_TOKEN: &str = "soak-admin-token-of-32-characters";
const CHANGENOW_API_KEY: &str = "soak-changenow-key";

#[derive(Debug, Clone)]
pub struct SoakOptions {
    pub seed: u64,
    pub payments: usize,
    pub clients: usize,
    pub budget: FaultBudget,
    /// IPNs are spread over this; faults fall within it too.
    pub traffic: Duration,
    /// How long the end waits for every payment to settle.
    pub settle_timeout: Duration,
    pub micro_batch_every: Duration,
    pub sweep_every: Duration,
    /// A transfer not mined after this is replaced with higher fees (automine off).
    pub transfer_stuck_after_secs: u64,
}

impl SoakOptions {
    /// `make soak`: the full fault budget, traffic spread so both workers stay busy.
    pub fn full(seed: u64, payments: usize, clients: usize) -> Self {
        Self {
            seed,
            payments,
            clients,
            budget: FaultBudget::full(),
            traffic: Duration::from_secs((payments as u64 * 3 / 10).max(60)),
            settle_timeout: Duration::from_secs(15 * 60),
            micro_batch_every: Duration::from_secs(10),
            sweep_every: Duration::from_secs(20),
            transfer_stuck_after_secs: 5,
        }
    }

    /// The short variant in `make test`: every fault kind, well under 3 minutes.
    pub fn short(seed: u64, payments: usize, clients: usize) -> Self {
        Self {
            budget: FaultBudget::short(),
            traffic: Duration::from_secs(45),
            // Generous: CI's machine may be busier than the one the soak was tuned on.
            settle_timeout: Duration::from_secs(180),
            micro_batch_every: Duration::from_secs(5),
            sweep_every: Duration::from_secs(10),
            ..Self::full(seed, payments, clients)
        }
    }
}

/// What the run found.
pub struct SoakReport {
    pub table: String,
    pub violations: Vec<checks::Violation>,
    pub elapsed: Duration,
}

/// A temporary directory removed when dropped (the soak's cluster, Temporal's file, the logs),
/// unless `SOAK_KEEP_DIR` is set.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("SOAK_KEEP_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            eprintln!("soak: kept {}", self.0.display());
        }
    }
}

/// The soak's parts that must be up for anything to happen, shared with the fault tasks.
pub struct Stack {
    pub postgres: Arc<OwnPostgres>,
    pub temporal: AsyncMutex<OwnTemporal>,
    pub workers: [Supervised; 2],
    pub webhook: Supervised,
    pub chain: TestChain,
    pub webhook_url: String,
    pub api_url: String,
    pub pool: sqlx::PgPool,
}

/// Each client registers as a channel owner would: its owner logs in with Telegram (the
/// sandbox's), and `POST /api/v1/clients` carries the signed login. Owners register from
/// addresses of their own (127.0.1.x), as owners do, so the per-address limit holds.
async fn register_clients(stack: &Stack, clients: &[traffic::SoakClient]) -> anyhow::Result<()> {
    let sandbox = stack.chain.changenow_url();
    for (i, client) in clients.iter().enumerate() {
        let owner = 500_000_000 + i as u64;
        crate::telegram::channel_at(&sandbox, &client.client_id, &[(owner, "creator")]).await;
        let login = crate::telegram::login_at(&sandbox, owner, 0).await;
        let settings = traffic::client_settings(client);
        let mut body = serde_json::json!({
            "client_id": settings.client_id, "wallet_address": settings.wallet_address, "payout_currency": settings.payout_currency,
            "payout_network": settings.payout_network, "payout_strategy": settings.payout_strategy.as_str(),
            "payout_threshold_usd": settings.payout_threshold_usd.to_string(), "telegram_auth": login,
        });
        if settings.payout_strategy == workflows::domain::PayoutStrategy::Instant {
            body["payout_threshold_usd"] = serde_json::Value::Null;
        }
        let from = std::net::IpAddr::from([127, 0, 1, ((i / 5) % 250) as u8 + 1]);
        let http = reqwest::Client::builder().local_address(from).build()?;
        let response = http.post(format!("{}/clients", stack.api_url)).json(&body).send().await.context("register a client")?;
        let status = response.status();
        anyhow::ensure!(
            status == reqwest::StatusCode::CREATED,
            "registering {} answered {status}: {}",
            client.client_id,
            response.text().await?
        );
    }
    println!("soak: {} clients registered with Telegram proof", clients.len());
    Ok(())
}

pub async fn run(options: SoakOptions) -> anyhow::Result<SoakReport> {
    let started = Instant::now();
    let rng = Rng::new(options.seed);
    let dir = std::env::temp_dir().join(format!("payout-soak-{}-{}", options.seed, uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let _dir = TempDir(dir.clone());
    println!("soak: seed {}, {} payments, {} clients, directory {}", options.seed, options.payments, options.clients, dir.display());

    let clients = traffic::clients(&rng, options.clients);
    let payments = traffic::payments(&rng, &clients, options.payments);
    let plan = FaultPlan::draw(&rng, &options.budget, Duration::from_secs(5), options.traffic);
    plan.print();

    // Postgres of its own, the schema, the clients.
    let postgres = Arc::new(OwnPostgres::init(&dir, free_port())?);
    postgres.start()?;
    let database_url = postgres.url("postgres");
    let pool = db::connect(&database_url).await.context("cannot reach the soak's Postgres")?;
    db::MIGRATOR.run(&pool).await.context("migrations")?;
    // Smaller conversions, more of them: more exchanges for the faults to hit.
    payout_starter::cli::threshold::set(&pool, rust_decimal::Decimal::from(10)).await.context("micro-batch threshold")?;

    // Temporal of its own, on a file.
    let mut temporal = OwnTemporal::new(&dir, free_port(), free_port(), free_port());
    temporal.start().await?;
    let temporal_address = temporal.address();
    let client = payout_worker::connect_temporal(&temporal_address, "default", Duration::from_secs(10)).await?;
    let settings = payout_starter::cli::schedules::ScheduleSettings {
        task_queue: TASK_QUEUE.into(),
        micro_batch_every: options.micro_batch_every,
        payout_sweep_every: options.sweep_every,
        payout_max_age_days: 90,
    };
    payout_starter::cli::schedules::apply(&client, &settings).await?;

    // anvil with the test tokens, and the simulator in-process (the soak drives its faults).
    let chain = TestChain::start(CHANGENOW_API_KEY).await;
    let before = checks::ChainStart::read(&chain).await?;

    let http_port = free_port();
    let (rpc_url, usdt, usdc, changenow_url) =
        (chain.anvil.url.clone(), chain.usdt.to_checksum(None), chain.usdc.to_checksum(None), chain.changenow_url());
    let env = |extra: &[(&str, String)]| -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), database_url.clone()),
            ("TEMPORAL_ADDRESS".into(), temporal_address.clone()),
            ("TEMPORAL_NAMESPACE".into(), "default".into()),
            ("TEMPORAL_TASK_QUEUE".into(), TASK_QUEUE.into()),
            ("ETH_RPC_URL".into(), rpc_url.clone()),
            ("HOST_WALLET_PRIVATE_KEY".into(), chain::HOT_WALLET_KEY.into()),
            ("USDT_CONTRACT".into(), usdt.clone()),
            ("USDC_CONTRACT".into(), usdc.clone()),
            ("CHANGENOW_API_URL".into(), changenow_url.clone()),
            ("CHANGENOW_API_KEY".into(), CHANGENOW_API_KEY.into()),
            ("NOWPAYMENTS_IPN_SECRET".into(), IPN_SECRET.into()),
            ("NOWPAYMENTS_API_URL".into(), changenow_url.clone()),
            ("NOWPAYMENTS_API_KEY".into(), changenow_simulator::config::LOCAL_NOWPAYMENTS_API_KEY.into()),
            ("PLATFORM_FEE_PERCENT".into(), "3".into()),
            ("ETH_CONFIRMATIONS".into(), "1".into()),
            ("TRANSFER_STUCK_AFTER_SECS".into(), options.transfer_stuck_after_secs.to_string()),
            ("ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
            ("TELEGRAM_API_URL".into(), changenow_url.clone()),
            ("TELEGRAM_BOT_TOKEN".into(), changenow_simulator::config::LOCAL_TELEGRAM_BOT_TOKEN.into()),
            ("RUST_LOG".into(), "warn".into()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env
    };
    let workers = [0, 1].map(|i| Supervised::new(&format!("worker-{i}"), crate::binary("worker"), &[], env(&[]), &dir));
    let webhook =
        Supervised::new("webhook", crate::binary("starter"), &["serve"], env(&[("HTTP_ADDR", format!("127.0.0.1:{http_port}"))]), &dir);
    let stack = Arc::new(Stack {
        postgres,
        temporal: AsyncMutex::new(temporal),
        workers,
        webhook,
        webhook_url: format!("http://127.0.0.1:{http_port}/webhooks/nowpayments"),
        api_url: format!("http://127.0.0.1:{http_port}/api/v1"),
        chain,
        pool: pool.clone(),
    });
    for part in stack.workers.iter().chain([&stack.webhook]) {
        part.ensure_running()?;
    }
    let watchdog = {
        let stack = stack.clone();
        tokio::spawn(async move {
            loop {
                for part in stack.workers.iter().chain([&stack.webhook]) {
                    if let Err(e) = part.ensure_running() {
                        tracing::warn!(error = %e, "cannot restart a part");
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    wait_for_webhook(&stack).await?;
    register_clients(&stack, &clients).await?;
    println!("soak: parts up after {:.1}s; traffic for {:?}", started.elapsed().as_secs_f64(), options.traffic);

    // Traffic, faults, the exchange faults and the operator's retries, side by side.
    let log = Arc::new(FaultLog::default());
    let exchange_faults = Arc::new(ExchangeFaults::default());
    let retries = Arc::new(OperatorRetries::default());
    let traffic_start = Instant::now();
    let counts = Arc::new(traffic::SendCounts::default());
    let sender = {
        let (stack, counts, clients) = (stack.clone(), counts.clone(), clients.clone());
        let payments = payments.clone();
        let spread = options.traffic.mul_f64(0.85);
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let count = payments.len().max(1) as u32;
            let mut tasks = Vec::new();
            for (i, payment) in payments.into_iter().enumerate() {
                let at = traffic_start + spread * i as u32 / count;
                let (http, stack, counts) = (http.clone(), stack.clone(), counts.clone());
                let client_id = clients[payment.client].client_id.clone();
                tasks.push(tokio::spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    let sandbox = stack.chain.changenow_url();
                    let to = traffic::Destination { webhook_url: &stack.webhook_url, sandbox_url: &sandbox, secret: IPN_SECRET };
                    traffic::deliver(&http, &to, &payment, &client_id, &counts, Duration::from_secs(180)).await
                }));
            }
            let mut undelivered = 0;
            for task in tasks {
                if !task.await.unwrap_or(false) {
                    undelivered += 1;
                }
            }
            undelivered
        })
    };
    let injector = tokio::spawn(faults::carry_out(stack.clone(), plan.clone(), traffic_start, log.clone(), exchange_faults.clone()));
    let exchange_task = tokio::spawn(faults::apply_exchange_faults(stack.clone(), exchange_faults.clone(), log.clone()));
    let retry_task = tokio::spawn(faults::operator_retries(stack.clone(), retries.clone(), log.clone()));

    let undelivered = sender.await.unwrap_or(usize::MAX);
    injector.await.context("the fault injector panicked")??;
    println!(
        "soak: traffic and faults done after {:.1}s ({} payments never answered 200); settling",
        started.elapsed().as_secs_f64(),
        undelivered
    );
    faults::calm(&stack, &exchange_faults).await?;

    let settle_started = Instant::now();
    let settled = checks::wait_until_settled(&stack.pool, options.settle_timeout, &retries).await?;
    println!("soak: settled={} after {:.1}s more", settled.is_empty(), settle_started.elapsed().as_secs_f64());
    exchange_task.abort();
    retry_task.abort();
    watchdog.abort();
    for part in stack.workers.iter().chain([&stack.webhook]) {
        part.stop();
    }

    let mut violations = Vec::new();
    if !settled.is_empty() {
        diagnose(&stack).await;
        violations.push(checks::Violation::new(
            "settled_in_time",
            format!("not settled after {:?}: {}", options.settle_timeout, settled.join(", ")),
        ));
    }
    if undelivered > 0 {
        violations.push(checks::Violation::new("ipn_answered", format!("{undelivered} payments had an IPN never answered 200")));
    }
    let expectations = checks::Expectations { payments: &payments, clients: &clients };
    let found = checks::run_all(&stack.pool, &stack.chain, &before, &expectations).await?;
    violations.extend(found.violations);
    violations.extend(reconcile(&env(&[])).await);

    let elapsed = started.elapsed();
    let table = report::table(&report::ReportInput {
        options: &options,
        payments: &payments,
        clients: &clients,
        counts: &counts,
        log: &log,
        stack: &stack,
        facts: &found.facts,
        violations: &violations,
        elapsed,
    })
    .await?;
    drop(stack);
    Ok(SoakReport { table, violations, elapsed })
}

/// What was still open when the soak gave up waiting: the conversions and payouts, and the
/// workflows Temporal still runs, for the report's reader.
async fn diagnose(stack: &Stack) {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT format('conversion %s %s rows=%s eth=%s cn=%s reason=%s created=%s', batch_conversion_id, conversion_status, row_count,
                       total_eth, cn_api_id, failure_reason, created_at) FROM batch_conversions
         UNION ALL SELECT format('pool rows=%s usd=%s eth=%s', pending_rows, pending_usd, pending_eth) FROM conversion_pool_totals
         UNION ALL SELECT format('payout batch %s %s %s reason=%s', batch_id, status, total_amount_usdt, failure_reason) FROM payout_batches
         UNION ALL SELECT format('instant %s %s %s', payment_id, status, reason) FROM instant_payouts WHERE status NOT IN ('completed')
         UNION ALL SELECT format('intent %s %s', purpose_key, status) FROM transfer_intents WHERE status <> 'confirmed'",
    )
    .fetch_all(&stack.pool)
    .await
    .unwrap_or_default();
    for (line,) in rows {
        println!("  open: {line}");
    }
    let address = stack.temporal.lock().await.address();
    if let Ok(out) = tokio::process::Command::new("temporal")
        .args(["workflow", "list", "--address", &address, "--query", "ExecutionStatus='Running'"])
        .output()
        .await
    {
        println!("  running workflows:\n{}", String::from_utf8_lossy(&out.stdout));
    }
}

async fn wait_for_webhook(stack: &Stack) -> anyhow::Result<()> {
    let health = stack.webhook_url.replace("/webhooks/nowpayments", "/health");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if reqwest::get(&health).await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("the webhook did not answer /health within 60 s")
}

/// The reconciliation (`starter reconcile`) against the soak's stack: the ledger held against
/// the chain and ChangeNow by the engine's own check; any difference (exit 1) is a violation.
async fn reconcile(env: &[(String, String)]) -> Vec<checks::Violation> {
    let output = tokio::process::Command::new(crate::binary("starter"))
        .args(["reconcile", "--days", "1"])
        .env_clear()
        .envs(env.iter().cloned())
        .current_dir(std::env::temp_dir())
        .output()
        .await;
    match output {
        Ok(out) if out.status.success() => {
            info!("starter reconcile: no differences");
            Vec::new()
        }
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
            vec![checks::Violation::new("reconcile", format!("starter reconcile exited {}: {}", out.status, text.trim()))]
        }
        Err(e) => vec![checks::Violation::new("reconcile", format!("cannot run starter reconcile: {e}"))],
    }
}
