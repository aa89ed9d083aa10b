//! `starter`: the NOWPayments webhook server and the operator CLI.

use activities::{
    db::{self, clients, payments},
    Config,
};
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use payout_starter::{
    cli::{self, clients::ClientInput, test_ipn::TestIpn},
    temporal_gateway::TemporalGateway,
    webhook::{self, AppState},
};
use rust_decimal::Decimal;
use std::{sync::Arc, time::Duration};

#[derive(Parser)]
#[command(name = "starter", about = "Payout engine: webhook server and operator commands")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve POST /webhooks/nowpayments and GET /health on HTTP_ADDR, with the re-driver.
    Serve,
    /// Apply the database migrations.
    Migrate,
    /// Manage clients (channel owners).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Inspect payments.
    #[command(subcommand)]
    Payment(PaymentCommand),
    /// Send IPNs to a webhook.
    #[command(subcommand)]
    Ipn(IpnCommand),
    /// The micro-batch conversion threshold (read by every run; no restart needed).
    #[command(subcommand)]
    Threshold(ThresholdCommand),
    /// The project's Temporal Schedules.
    #[command(subcommand)]
    Schedules(SchedulesCommand),
    /// Micro-batch conversions.
    #[command(subcommand)]
    Conversion(ConversionCommand),
    /// Threshold payouts.
    #[command(subcommand)]
    Payout(PayoutCommand),
    /// Payout batches: inspect, retry, cancel (the same as the Temporal UI's `retry` signal and
    /// cancel on the batch's ClientPayoutWorkflow).
    #[command(subcommand)]
    Batch(BatchCommand),
    /// Instant payouts: approve or reject one awaiting approval (the `approve` and `reject`
    /// signals to its InstantPayoutWorkflow, as the Temporal UI sends them).
    #[command(subcommand)]
    InstantPayout(InstantPayoutCommand),
    /// Alerts raised for an operator (failed batches, stopped payouts).
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// The settlement stablecoin new conversions convert into (USDT, or USDC when USDT depegs).
    #[command(subcommand)]
    Stablecoin(StablecoinCommand),
    /// Hold the ledger against the chain and ChangeNow: every outbox intent against its
    /// transaction, every exchange against its deposit, every completed batch against what left
    /// the wallet, the wallet's balances against what it owes. Prints the differences, raises an
    /// alert for each, and exits 1 when there is any.
    Reconcile {
        /// Check intents, exchanges and batches of this many days back (balances: always all).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
        /// Use ChangeNow's statuses as last polled instead of asking it again.
        #[arg(long)]
        offline: bool,
    },
}

#[derive(Subcommand)]
enum StablecoinCommand {
    /// Which stablecoin new conversions settle in.
    Show,
    /// Switch new conversions to `usdt` or `usdc`; what was converted before keeps its coin.
    Set { coin: String },
}

#[derive(Subcommand)]
enum BatchCommand {
    /// Show a payout batch: status, amounts, failure, its workflow.
    Show { batch_id: uuid::Uuid },
    /// Pay a failed (or orphaned) payout batch; pays once however often it is called.
    Retry { batch_id: uuid::Uuid },
    /// Stop a payout batch's run: the batch fails, its rows are released if no USDT was sent.
    Cancel {
        batch_id: uuid::Uuid,
        #[arg(long, default_value = "cancelled with `starter batch cancel`")]
        reason: String,
    },
    /// Approve a payout batch awaiting approval: it is paid.
    Approve { batch_id: uuid::Uuid },
    /// Reject a payout batch awaiting approval: it ends `rejected`, its rows are released.
    Reject {
        batch_id: uuid::Uuid,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum InstantPayoutCommand {
    /// Approve an instant payout awaiting approval: it is sent.
    Approve { payment_id: i64 },
    /// Reject an instant payout awaiting approval: it ends `rejected`; nothing is sent.
    Reject {
        payment_id: i64,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum AlertsCommand {
    /// List the alerts no one has acknowledged.
    List,
    /// Acknowledge an alert.
    Ack { alert_id: i64 },
}

#[derive(Subcommand)]
enum PayoutCommand {
    /// Pay a client's converted USDT now, below its threshold (one payout per wallet group).
    Now {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

#[derive(Subcommand)]
enum ConversionCommand {
    /// Poll the exchange of a batch that failed with its rows kept; complete the batch if the
    /// exchange finished late and its USDT is on chain.
    Resume { batch_id: uuid::Uuid },
    /// Return a failed batch's rows to the pending pool, once the refund of its full amount is
    /// seen on chain.
    ReturnRows {
        batch_id: uuid::Uuid,
        /// Return them even without a full refund on chain (the ETH was recovered another way);
        /// prints what was found.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum ThresholdCommand {
    /// Set the pool value (USD) at which a micro-batch converts ETH to USDT.
    Set {
        #[arg(allow_hyphen_values = true)]
        usd: String,
    },
    /// Set the largest threshold a client may choose (USD; default 2000).
    SetClientMax {
        #[arg(allow_hyphen_values = true)]
        usd: String,
    },
    /// Set the threshold from volume at each conversion run: the last 7 days' average daily
    /// volume divided by the runs wanted per day, rounded to 10 USD, within --min and --max.
    Auto {
        /// Hours wanted between conversions (1-168).
        #[arg(long, default_value_t = 6)]
        target_hours: u32,
        #[arg(long, default_value = "20", allow_hyphen_values = true)]
        min: String,
        #[arg(long, default_value = "1000", allow_hyphen_values = true)]
        max: String,
    },
    /// Show the micro-batch threshold, whether it is automatic, its recent changes, and the
    /// client maximum in force.
    Show,
}

#[derive(Subcommand)]
enum SchedulesCommand {
    /// Create every schedule, or update it when it exists.
    Apply {
        /// How often the micro-batch conversion runs.
        #[arg(long, env = "MICRO_BATCH_INTERVAL_SECS", default_value_t = 900)]
        micro_batch_interval_secs: u64,
        /// How often the threshold payout sweep runs.
        #[arg(long, env = "PAYOUT_SWEEP_INTERVAL_SECS", default_value_t = 300)]
        payout_sweep_interval_secs: u64,
        /// Unpaid rows older than this are paid out whatever the client's total.
        #[arg(long, env = "PAYOUT_MAX_AGE_DAYS", default_value_t = 90)]
        payout_max_age_days: u32,
    },
    /// Run a schedule's action now, e.g. `micro-batch-conversion`.
    Trigger { schedule_id: String },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Add a client.
    Add(ClientArgs),
    /// Change some of a client's settings; the rest stay.
    Update(ClientArgs),
    /// Show a client.
    Show {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Issue a new client key (for a client added here, or one that lost its key); the old key
    /// stops working. Prints the key and the private status link once.
    Key {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

#[derive(Args)]
struct ClientArgs {
    /// The channel id (the `client_id` in order ids `PGP-{user}|{client}`), e.g. -1001234567890.
    #[arg(allow_hyphen_values = true)]
    client_id: String,
    /// Where payouts go; checked for the network (EIP-55 for eth, checksums for xmr and btc).
    #[arg(long)]
    wallet: Option<String>,
    /// The coin the client is paid in, e.g. xmr, btc, eth, usdt.
    #[arg(long)]
    currency: Option<String>,
    /// The network of the wallet (defaults to the currency): eth, xmr or btc.
    #[arg(long)]
    network: Option<String>,
    /// instant | threshold
    #[arg(long)]
    strategy: Option<String>,
    /// Threshold in USD for threshold clients (at least 50; 100 recommended).
    #[arg(long = "threshold-usd")]
    threshold_usd: Option<String>,
}

#[derive(Subcommand)]
enum PaymentCommand {
    /// Show a payment, its fee split and where its money is.
    Show { payment_id: i64 },
    /// Process a signed IPN that was kept as unroutable (its client did not exist), once the
    /// client exists and its owner registered through Telegram: store it as a payment and start
    /// its workflow, as the webhook would. The operator's name is recorded on the kept IPN.
    Route {
        payment_id: i64,
        /// Who routes it (recorded).
        #[arg(long, env = "PAYOUT_OPERATOR")]
        operator: String,
    },
    /// Ask NOWPayments again about a payment left unverified (it did not know the payment yet,
    /// its record was not finished in time, or it named a client registered since): a new run of
    /// its workflow verifies it from the start.
    Verify { payment_id: i64 },
}

#[derive(Subcommand)]
enum IpnCommand {
    /// Make the sandbox's NOWPayments know a test payment, then send its correctly signed IPN to
    /// the local webhook (the engine confirms every payment with NOWPayments before paying it).
    SendTest {
        #[arg(long, allow_hyphen_values = true)]
        client_id: String,
        /// The subscription price in USD.
        #[arg(long, default_value = "25.00")]
        amount_usd: Decimal,
        /// The ETH NOWPayments settled to the hot wallet.
        #[arg(long, default_value = "0.01")]
        outcome_eth: Decimal,
        /// Defaults to a fresh id derived from the clock.
        #[arg(long)]
        payment_id: Option<i64>,
        #[arg(long, default_value = "6271402111")]
        user_id: i64,
        #[arg(long, default_value = "finished")]
        status: String,
        /// Defaults to http://HTTP_ADDR/webhooks/nowpayments.
        #[arg(long)]
        url: Option<String>,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The chain of causes, without a backtrace: operators read this.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    dotenvy::dotenv().ok();
    payout_worker::init_logging()?;
    let cli = Cli::parse();
    let config = Config::from_env()?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let pool = pool(&config).await?;
            db::MIGRATOR.run(&pool).await.context("cannot apply migrations")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Client(command) => client_command(&config, command).await,
        Command::Threshold(ThresholdCommand::Set { usd }) => {
            let value = cli::threshold::parse_threshold(&usd)?;
            cli::threshold::set(&pool(&config).await?, value).await?;
            println!("micro-batch threshold set to {value:.2} USD (automatic threshold off); it applies from the next conversion run");
            Ok(())
        }
        Command::Threshold(ThresholdCommand::Auto { target_hours, min, max }) => {
            let (min, max) = (cli::threshold::parse_threshold(&min)?, cli::threshold::parse_threshold(&max)?);
            let policy = db::auto_threshold::AutoThresholdPolicy::new(target_hours, min, max)?;
            db::auto_threshold::enable(&pool(&config).await?, &policy).await?;
            println!(
                "automatic threshold on: a conversion every {target_hours} h from the last 7 days' volume, between {min:.2} and {max:.2} USD; \
                 it applies from the next conversion run (`threshold set` turns it off)"
            );
            Ok(())
        }
        Command::Threshold(ThresholdCommand::SetClientMax { usd }) => {
            let value = cli::threshold::parse_threshold(&usd)?;
            clients::set_max_threshold(&pool(&config).await?, value).await?;
            println!("client thresholds may now be at most {value:.2} USD");
            Ok(())
        }
        Command::Threshold(ThresholdCommand::Show) => {
            let pool = pool(&config).await?;
            let value = db::conversion_ledger::read_threshold(&pool).await?;
            println!("micro-batch threshold: {value} USD");
            match db::auto_threshold::policy(&pool).await? {
                Some(p) => {
                    println!("automatic: on (a conversion every {} h, between {:.2} and {:.2} USD)", p.target_hours, p.min_usd, p.max_usd)
                }
                None => println!("automatic: off"),
            }
            println!("largest client threshold: {} USD", clients::max_threshold(&pool).await?);
            let changes = db::auto_threshold::recent_changes(&pool, 10).await?;
            if !changes.is_empty() {
                println!("recent changes:");
            }
            for c in changes {
                let old = c.old_usd.map_or("-".to_owned(), |o| format!("{o:.2}"));
                let inputs = match (c.volume_7d_usd, c.target_hours, c.min_usd, c.max_usd) {
                    (Some(v), Some(h), Some(lo), Some(hi)) => {
                        format!(" (7-day volume {:.2} USD, every {h} h, bounds {lo:.2}-{hi:.2})", v)
                    }
                    _ => String::new(),
                };
                println!("  {} {} {old} -> {:.2} USD{inputs}", c.changed_at.format("%Y-%m-%d %H:%M:%S"), c.source, c.new_usd);
            }
            Ok(())
        }
        Command::Batch(command) => batch_command(&config, command).await,
        Command::InstantPayout(command) => instant_payout_command(&config, command).await,
        Command::Stablecoin(StablecoinCommand::Show) => {
            let pool = pool(&config).await?;
            let coin = db::conversion_ledger::settlement_coin(&pool).await?;
            println!("new conversions settle in {}", coin.as_str().to_uppercase());
            Ok(())
        }
        Command::Stablecoin(StablecoinCommand::Set { coin }) => {
            let Some(coin) = workflows::domain::Stablecoin::parse(&coin) else {
                bail!("'{coin}' is not a settlement stablecoin (usdt or usdc)");
            };
            let contract = match coin {
                workflows::domain::Stablecoin::Usdt => &config.usdt_contract,
                workflows::domain::Stablecoin::Usdc => &config.usdc_contract,
            };
            if contract.is_none() {
                bail!(
                    "{}_CONTRACT is not set: the worker could not receive or send {}",
                    coin.as_str().to_uppercase(),
                    coin.as_str().to_uppercase()
                );
            }
            db::conversion_ledger::set_settlement_coin(&pool(&config).await?, coin).await?;
            println!(
                "new conversions settle in {} from the next run; rows already converted keep their coin and are paid out in it",
                coin.as_str().to_uppercase()
            );
            Ok(())
        }
        Command::Alerts(AlertsCommand::List) => {
            let open = db::alerts::open(&pool(&config).await?).await?;
            if open.is_empty() {
                println!("no open alerts");
            }
            for a in open {
                let (when, severity) = (a.raised_at.format("%Y-%m-%d %H:%M:%S"), a.severity.to_uppercase());
                println!("#{} {when} {severity} [{}] {}: {}", a.alert_id, a.kind, a.subject, a.message);
            }
            Ok(())
        }
        Command::Alerts(AlertsCommand::Ack { alert_id }) => {
            match db::alerts::acknowledge(&pool(&config).await?, alert_id).await? {
                true => println!("alert #{alert_id} acknowledged"),
                false => bail!("alert #{alert_id} is not open"),
            }
            Ok(())
        }
        Command::Reconcile { days, offline } => {
            let pool = pool(&config).await?;
            let services =
                payout_worker::PayoutServices::connect(&config, pool.clone()).await.context("cannot reach ChangeNow and the chain")?;
            let sources = activities::reconciliation::Sources {
                wallet: &services.hot_wallet,
                changenow: (!offline).then_some(&services.changenow),
                usdt_contract: services.usdt_contract,
                usdc_contract: services.usdc_contract,
            };
            let window = std::time::Duration::from_secs(u64::from(days) * 24 * 60 * 60);
            let report = activities::reconciliation::reconcile(&pool, &sources, window).await?;
            let raised = activities::reconciliation::raise_alerts(&pool, &report).await?;
            print!("{report}");
            if !report.differences.is_empty() {
                println!("{raised} new alert(s) raised (a difference already alerted and still open raises none)");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Conversion(command) => {
            let pool = pool(&config).await?;
            let services =
                payout_worker::PayoutServices::connect(&config, pool.clone()).await.context("cannot reach ChangeNow and the chain")?;
            let usdt_contract = services.usdt_contract.context("USDT_CONTRACT is not set")?;
            let recovery = cli::conversions::Recovery {
                pool: &pool,
                changenow: &services.changenow,
                hot_wallet: &services.hot_wallet,
                usdt_contract,
                usdc_contract: services.usdc_contract,
                changenow_senders: &services.changenow_senders,
            };
            match command {
                ConversionCommand::Resume { batch_id } => match recovery.resume(batch_id).await? {
                    cli::conversions::ResumeOutcome::Completed { usdt_received, usdt_tx_hash } => {
                        println!("batch {batch_id} completed: {usdt_received} USDT received in {usdt_tx_hash}, split over its rows")
                    }
                    cli::conversions::ResumeOutcome::NotFinished { status } => {
                        println!("batch {batch_id}: its exchange is {status}; nothing changed, try again later")
                    }
                },
                ConversionCommand::ReturnRows { batch_id, force } => {
                    let (returned, found) = recovery.return_rows(batch_id, force).await?;
                    println!("{found}");
                    println!("{returned} rows of batch {batch_id} are pending again; the next conversion run takes them");
                }
            }
            Ok(())
        }
        Command::Payout(PayoutCommand::Now { client_id }) => {
            let client = payout_worker::connect_temporal_as_configured(&config, Duration::from_secs(10)).await?;
            let pool = pool(&config).await?;
            let id = cli::early_payout::payout_now(&pool, &client, &config.temporal_task_queue, &client_id).await?;
            println!("started {id}: one payout per wallet group of {client_id} with converted, unpaid USDT");
            Ok(())
        }
        Command::Schedules(command) => {
            let client = payout_worker::connect_temporal_as_configured(&config, Duration::from_secs(10)).await?;
            match command {
                SchedulesCommand::Apply { micro_batch_interval_secs, payout_sweep_interval_secs, payout_max_age_days } => {
                    if micro_batch_interval_secs == 0 || payout_sweep_interval_secs == 0 || payout_max_age_days == 0 {
                        bail!("MICRO_BATCH_INTERVAL_SECS, PAYOUT_SWEEP_INTERVAL_SECS and PAYOUT_MAX_AGE_DAYS must be at least 1");
                    }
                    let settings = cli::schedules::ScheduleSettings {
                        task_queue: config.temporal_task_queue.clone(),
                        micro_batch_every: Duration::from_secs(micro_batch_interval_secs),
                        payout_sweep_every: Duration::from_secs(payout_sweep_interval_secs),
                        payout_max_age_days,
                    };
                    cli::schedules::apply(&client, &settings).await?;
                    println!("schedules applied: {}", cli::schedules::ALL.join(", "));
                }
                SchedulesCommand::Trigger { schedule_id } => {
                    cli::schedules::trigger(&client, &schedule_id).await?;
                    println!("triggered {schedule_id}");
                }
            }
            Ok(())
        }
        Command::Payment(PaymentCommand::Show { payment_id }) => {
            let pool = pool(&config).await?;
            match payments::find(&pool, payment_id).await? {
                Some(p) => println!("{}", cli::payments::describe(&p)),
                None => match db::unroutable_ipns::find(&pool, payment_id).await? {
                    Some(kept) => println!("{}", cli::payments::describe_unroutable(&kept)),
                    None => bail!("payment {payment_id} is not stored"),
                },
            }
            Ok(())
        }
        Command::Payment(PaymentCommand::Verify { payment_id }) => {
            let pool = pool(&config).await?;
            let temporal = TemporalGateway::new(
                &config.temporal_address,
                &config.temporal_namespace,
                &config.temporal_task_queue,
                config.platform_fee,
            )
            .with_security(config.temporal_security.clone());
            let started = cli::verify_payment::verify_again(&pool, &temporal, payment_id).await?;
            let id = workflows::payment_workflow_id(payment_id);
            match started {
                payout_starter::temporal_gateway::Started::Now => {
                    println!("payment {payment_id}: verifying with NOWPayments again in a new run of {id}")
                }
                payout_starter::temporal_gateway::Started::AlreadyExisted => println!("payment {payment_id}: {id} is already running"),
            }
            Ok(())
        }
        Command::Payment(PaymentCommand::Route { payment_id, operator }) => {
            use cli::route_payment::WorkflowStart;
            let pool = pool(&config).await?;
            let temporal = TemporalGateway::new(
                &config.temporal_address,
                &config.temporal_namespace,
                &config.temporal_task_queue,
                config.platform_fee,
            )
            .with_security(config.temporal_security.clone());
            let routed = cli::route_payment::route(&pool, &temporal, payment_id, &operator).await?;
            let how = if routed.already_routed { "was already routed" } else { "routed" };
            println!("payment {payment_id} {how}; NOWPayments status {}", routed.payment_status);
            match routed.workflow {
                WorkflowStart::Started => println!("started {}", workflows::payment_workflow_id(payment_id)),
                WorkflowStart::AlreadyStarted => println!("{} was already started", workflows::payment_workflow_id(payment_id)),
                WorkflowStart::NotPayable => println!("not paid out: only finished payments are"),
                WorkflowStart::LeftToRedriver(reason) => {
                    println!("workflow not started now ({reason}); `starter serve` starts it when Temporal answers")
                }
            }
            Ok(())
        }
        Command::Ipn(IpnCommand::SendTest { client_id, amount_usd, outcome_eth, payment_id, user_id, status, url }) => {
            let payment_id = payment_id.unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
            let ipn = TestIpn { payment_id, user_id, client_id, status, price_usd: amount_usd, outcome_eth };
            let url = url.unwrap_or_else(|| format!("http://{}/webhooks/nowpayments", config.http_addr));
            // The engine pays only what NOWPayments confirms: the sandbox must know the payment.
            cli::test_ipn::make_known(&config.nowpayments_api_url, &ipn).await.map_err(|e| {
                anyhow::anyhow!(
                    "the sandbox's NOWPayments at NOWPAYMENTS_API_URL did not take the test payment ({e}); \
                     only the sandbox confirms test payments (is `make up` running?)"
                )
            })?;
            let (code, answer) = cli::test_ipn::send(&url, &ipn, config.nowpayments_ipn_secret.expose())
                .await
                .with_context(|| format!("cannot reach the webhook at {url} (is `make up` running?)"))?;
            println!("payment {payment_id}: HTTP {code} {answer}");
            println!("watch it: http://localhost:8233/namespaces/{}/workflows/payment-{payment_id}", config.temporal_namespace);
            if code != 200 {
                bail!("the webhook refused the IPN");
            }
            Ok(())
        }
    }
}

async fn pool(config: &Config) -> anyhow::Result<sqlx::PgPool> {
    db::connect(config.database_url.expose()).await.context("cannot connect to Postgres (DATABASE_URL)")
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let pool = pool(&config).await?;
    db::MIGRATOR.run(&pool).await.context("cannot apply migrations")?;
    let temporal = Arc::new(
        TemporalGateway::new(&config.temporal_address, &config.temporal_namespace, &config.temporal_task_queue, config.platform_fee)
            .with_security(config.temporal_security.clone()),
    );
    let state = AppState {
        pool,
        ipn_secret: config.nowpayments_ipn_secret.clone(),
        temporal,
        admin_token: config.admin_token.clone(),
        temporal_ui_url: config.temporal_ui_url.clone(),
        telegram: config.telegram.clone(),
    };
    if config.telegram.bot_token.is_none() {
        tracing::warn!("TELEGRAM_BOT_TOKEN is not set: public registration is off (no one can prove a channel is theirs)");
    }
    let server = webhook::spawn(config.http_addr, state, Duration::from_secs(5))
        .await
        .with_context(|| format!("cannot listen on HTTP_ADDR {}", config.http_addr))?;
    tracing::info!(addr = %server.addr, "webhook listening: POST /webhooks/nowpayments, GET /health, GET /ready, GET /metrics");
    let mut server = server;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
        _ = &mut server.task => bail!("the webhook server stopped"),
    }
    tracing::info!(grace_secs = DRAIN_GRACE.as_secs(), "stopping: no new connections; requests in flight may finish");
    if !server.shut_down(DRAIN_GRACE).await {
        bail!("requests still running {}s after the stop request", DRAIN_GRACE.as_secs());
    }
    tracing::info!("webhook server stopped");
    Ok(())
}

/// How long requests in flight get to finish after SIGTERM or Ctrl-C.
const DRAIN_GRACE: Duration = Duration::from_secs(10);

async fn batch_command(config: &Config, command: BatchCommand) -> anyhow::Result<()> {
    use cli::payout_batches::{self, CancelOutcome, RetryOutcome};
    let pool = pool(config).await?;
    if let BatchCommand::Show { batch_id } = command {
        println!("{}", payout_batches::show(&pool, batch_id).await?);
        return Ok(());
    }
    let temporal = payout_worker::connect_temporal_as_configured(&config, Duration::from_secs(10)).await?;
    match command {
        BatchCommand::Show { .. } => {}
        BatchCommand::Retry { batch_id } => match payout_batches::retry(&pool, &temporal, &config.temporal_task_queue, batch_id).await? {
            RetryOutcome::AlreadyPaid => println!("batch {batch_id} is already completed; nothing is sent again"),
            RetryOutcome::Signalled { workflow_id } => println!("sent `retry` to {workflow_id}, which pays batch {batch_id}"),
            RetryOutcome::Started { workflow_id } => println!("started {workflow_id} to pay batch {batch_id}"),
            RetryOutcome::InProgress { workflow_id } => println!("{workflow_id} is paying batch {batch_id} now; nothing to do"),
            RetryOutcome::Busy { workflow_id, other_batch } => bail!(
                "{workflow_id} is busy with batch {}; retry {batch_id} once it has ended",
                other_batch.unwrap_or_else(|| "(starting)".into())
            ),
        },
        BatchCommand::Approve { batch_id } => {
            let workflow_id =
                payout_batches::decide(&pool, &temporal, &config.temporal_task_queue, batch_id, payout_batches::Approval::Approve).await?;
            println!("sent `approve` to {workflow_id}: batch {batch_id} is paid");
        }
        BatchCommand::Reject { batch_id, reason } => {
            let workflow_id = payout_batches::decide(
                &pool,
                &temporal,
                &config.temporal_task_queue,
                batch_id,
                payout_batches::Approval::Reject { reason },
            )
            .await?;
            println!("sent `reject` to {workflow_id}: batch {batch_id} ends rejected and its rows are released");
        }
        BatchCommand::Cancel { batch_id, reason } => match payout_batches::cancel(&pool, &temporal, batch_id, &reason).await? {
            CancelOutcome::Requested { workflow_id } => {
                println!("cancellation of {workflow_id} requested; batch {batch_id} becomes failed (`batch retry` pays it later)")
            }
            CancelOutcome::NotRunning { workflow_id } => println!("{workflow_id} is not running; nothing to cancel"),
        },
    }
    Ok(())
}

async fn instant_payout_command(config: &Config, command: InstantPayoutCommand) -> anyhow::Result<()> {
    use cli::{instant_payouts, payout_batches::Approval};
    let pool = pool(config).await?;
    let temporal = payout_worker::connect_temporal_as_configured(config, Duration::from_secs(10)).await?;
    let (payment_id, approval) = match command {
        InstantPayoutCommand::Approve { payment_id } => (payment_id, Approval::Approve),
        InstantPayoutCommand::Reject { reason, .. } if reason.trim().is_empty() => bail!("a rejection needs a reason (--reason)"),
        InstantPayoutCommand::Reject { payment_id, reason } => (payment_id, Approval::Reject { reason: reason.trim().to_owned() }),
    };
    let approved = approval == Approval::Approve;
    let workflow_id = instant_payouts::decide(&pool, &temporal, &config.temporal_task_queue, payment_id, approval).await?;
    if approved {
        println!("sent `approve` to {workflow_id}: the instant payout of payment {payment_id} is sent");
    } else {
        println!("sent `reject` to {workflow_id}: the instant payout of payment {payment_id} ends rejected; nothing is sent");
    }
    Ok(())
}

async fn client_command(config: &Config, command: ClientCommand) -> anyhow::Result<()> {
    let pool = pool(config).await?;
    let (args, is_add) = match command {
        ClientCommand::Show { client_id } => {
            match clients::find(&pool, &client_id).await? {
                Some(c) => println!("{}", cli::clients::describe(&c)),
                None => bail!("client {client_id} does not exist"),
            }
            return Ok(());
        }
        ClientCommand::Key { client_id } => {
            let key = payout_starter::api::new_client_key();
            if !clients::set_key_hash(&pool, &client_id, &payout_starter::api::key_hash(&key)).await? {
                bail!("client {client_id} does not exist");
            }
            println!("client key (shown once; the old one no longer works): {key}");
            println!("private status page: /clients/{client_id}?key={key}");
            return Ok(());
        }
        ClientCommand::Add(args) => (args, true),
        ClientCommand::Update(args) => (args, false),
    };
    let input = ClientInput {
        client_id: args.client_id,
        wallet_address: args.wallet,
        payout_currency: args.currency,
        payout_network: args.network,
        payout_strategy: args.strategy,
        payout_threshold_usd: args.threshold_usd,
    };
    let existing = if is_add {
        None
    } else {
        Some(clients::find(&pool, &input.client_id).await?.with_context(|| format!("client {} does not exist", input.client_id))?)
    };
    let settings = cli::clients::validate(&input, existing.as_ref())?;
    cli::clients::check_max(&settings, clients::max_threshold(&pool).await?)?;
    if settings.payout_strategy == workflows::domain::PayoutStrategy::Threshold
        && settings.payout_threshold_usd < cli::clients::RECOMMENDED_THRESHOLD_USD
    {
        eprintln!("note: a threshold below {} USD loses more to network fees", cli::clients::RECOMMENDED_THRESHOLD_USD);
    }
    let stored = if is_add { clients::insert(&pool, &settings).await? } else { clients::update(&pool, &settings).await? };
    println!("{}", cli::clients::describe(&stored));
    Ok(())
}
