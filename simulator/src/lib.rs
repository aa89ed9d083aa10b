//! The sandbox of the outside services. NOWPayments: the payment records its API confirms
//! payments with ([`nowpayments`]). ChangeNow: its v2 HTTP API (range, estimated amount, create exchange,
//! status by id) over a real local chain. Each exchange gets a fresh pay-in address; the
//! simulator watches the chain for the deposit, walks the documented statuses, and pays out of
//! its own funded treasury (ETH and the local USDT on chain; other coins with a simulated hash).
//! Failures can be injected (see [`faults`]) so every unhappy path can be driven on purpose.
//!
//! It is part of the product for local development and demos (`make up` starts it), and the
//! integration tests run it in-process. NOWPayments' payments made with `POST /v1/payment` are
//! paid on the same chain ([`nowpayments_flow`]). Exchanges live in memory: restarting the simulator
//! forgets them, as a fresh ChangeNow account would. Telegram: the Bot API a bot sees and the Login
//! Widget's signed logins ([`telegram`]), also in memory.

pub mod chain;
pub mod chain_setup;
pub mod config;
pub mod exchange;
pub mod faults;
mod http;
mod ipn;
pub mod market;
pub mod nowpayments;
pub mod nowpayments_flow;
mod nowpayments_http;
mod nowpayments_lifecycle;
pub mod service_faults;
pub mod state_file;
pub mod telegram;
mod telegram_http;
pub mod treasury_fees;

use alloy::primitives::Address;
use chain::Chain;
use config::SimulatorConfig;
use exchange::{ChainAction, Exchange};
use faults::Faults;
use std::{
    collections::{BTreeMap, HashSet},
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// How often the lifecycle and the chain are looked at.
const TICK: Duration = Duration::from_millis(100);

pub struct Simulator {
    config: SimulatorConfig,
    chain: Chain,
    exchanges: Mutex<BTreeMap<String, Exchange>>,
    faults: Mutex<Faults>,
    /// Starts as the configured market; `POST /sim/market` and `/sim/prices` change it at run
    /// time (a minimum raised mid-batch, a stablecoin off its peg).
    market: Mutex<market::Market>,
    /// The NOWPayments face: the payment records it answers with, and its faults.
    nowpayments: Mutex<nowpayments::NowPayments>,
    /// Delivers NOWPayments' IPNs of the payments created here.
    ipns: ipn::IpnSender,
    /// The Telegram face: the bot's chats, updates and sent messages.
    telegram: Mutex<telegram::Telegram>,
    /// Wakes the long polls of `getUpdates` when an update arrives.
    telegram_updates: tokio::sync::Notify,
}

impl Simulator {
    /// The exchanges, even if a panicking thread poisoned the lock: each update is a single
    /// field assignment, so what is there is still whole.
    fn exchanges_lock(&self) -> MutexGuard<'_, BTreeMap<String, Exchange>> {
        self.exchanges.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn nowpayments_lock(&self) -> MutexGuard<'_, nowpayments::NowPayments> {
        self.nowpayments.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn telegram_lock(&self) -> MutexGuard<'_, telegram::Telegram> {
        self.telegram.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn faults_lock(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The market as it is now (a copy: quotes never hold the lock).
    pub fn market(&self) -> market::Market {
        self.market.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn market_lock(&self) -> MutexGuard<'_, market::Market> {
        self.market.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges_lock().values().cloned().collect()
    }

    fn watched_addresses(&self) -> HashSet<Address> {
        let mut watched: HashSet<Address> =
            self.exchanges_lock().values().filter(|x| x.amount_from.is_none()).map(|x| x.payin_address).collect();
        watched.extend(self.nowpayments_watched());
        watched
    }

    /// Moves every exchange whose step is due; returns the chain actions to carry out.
    fn advance_all(&self) -> Vec<ChainAction> {
        let now = Instant::now();
        let market = self.market();
        let mut exchanges = self.exchanges_lock();
        exchanges
            .values_mut()
            .filter_map(|x| {
                let (from, to) = (x.pair.from_currency.clone(), x.pair.to_currency.clone());
                x.advance(now, self.config.step_delay, |amount| market.quote(&from, &to, amount).ok())
            })
            .collect()
    }

    fn with_exchange<T>(&self, id: &str, f: impl FnOnce(&mut Exchange) -> T) -> Option<T> {
        self.exchanges_lock().get_mut(id).map(f)
    }
}

pub struct RunningSimulator {
    pub addr: SocketAddr,
    pub simulator: Arc<Simulator>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningSimulator {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Connects to the chain, binds `listen` (port 0 for any) and serves until dropped.
pub async fn spawn(config: SimulatorConfig, listen: SocketAddr) -> anyhow::Result<RunningSimulator> {
    let chain = Chain::connect(&config.rpc_url, &config.treasury_key, config.usdt_contract).await?.with_usdc(config.usdc_contract);
    let first_block = chain.latest_block().await?;
    let nowpayments = match &config.state_file {
        Some(path) => state_file::load(path)?.map(state_file::SavedState::into_nowpayments).unwrap_or_default(),
        None => nowpayments::NowPayments::default(),
    };
    info!(records = nowpayments.records.len(), state_file = ?config.state_file, "NOWPayments records loaded");
    info!(treasury = %chain.treasury_address(), first_block, "ChangeNow simulator connected to the chain");
    let simulator = Arc::new(Simulator {
        chain,
        exchanges: Mutex::new(BTreeMap::new()),
        faults: Mutex::new(Faults::default()),
        market: Mutex::new(config.market.clone()),
        nowpayments: Mutex::new(nowpayments),
        ipns: ipn::IpnSender::new(&config.nowpayments_ipn_secret),
        telegram: Mutex::new(telegram::Telegram::new(&config.telegram_bot_token, &config.telegram_bot_username)),
        telegram_updates: tokio::sync::Notify::new(),
        config,
    });
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let router = http::router(simulator.clone());
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            warn!(error = %e, "simulator HTTP server stopped");
        }
    });
    let lifecycle = tokio::spawn(run_lifecycle(simulator.clone()));
    let watcher = tokio::spawn(watch_chain(simulator.clone(), first_block));
    Ok(RunningSimulator { addr, simulator, tasks: vec![server, lifecycle, watcher] })
}

/// Advances the exchanges and carries out their payouts and refunds, one at a time so the
/// treasury's nonces stay in order.
async fn run_lifecycle(simulator: Arc<Simulator>) {
    loop {
        for action in simulator.advance_all() {
            let (id, coin, to, amount, what) = match &action {
                ChainAction::Payout { exchange_id, coin, to, amount } => (exchange_id, coin, to, amount, "payout"),
                ChainAction::Refund { exchange_id, coin, to, amount } => (exchange_id, coin, to, amount, "refund"),
            };
            match simulator.chain.pay(coin, to, *amount).await {
                Ok(tx_hash) => {
                    info!(exchange_id = %id, %coin, %amount, %to, %tx_hash, what, "treasury paid");
                    simulator.with_exchange(id, |x| x.chain_action_done(tx_hash, simulator.config.step_delay));
                }
                Err(e) => {
                    // Left pending: retried on a later tick (e.g. once the treasury is funded).
                    warn!(exchange_id = %id, error = %e, what, "treasury payment failed; will retry");
                    simulator.with_exchange(id, |x| x.chain_action_pending = false);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        simulator.forward_nowpayments().await;
        tokio::time::sleep(TICK).await;
    }
}

/// Follows new blocks and records deposits to the pay-in addresses.
async fn watch_chain(simulator: Arc<Simulator>, first_block: u64) {
    let mut next = first_block;
    loop {
        match simulator.chain.latest_block().await {
            Ok(head) => {
                while next <= head {
                    let watched = simulator.watched_addresses();
                    if !watched.is_empty() {
                        match simulator.chain.deposits_in(next, &watched).await {
                            Ok(deposits) => record_deposits(&simulator, deposits),
                            Err(e) => {
                                warn!(block = next, error = %e, "cannot read block; retrying");
                                break;
                            }
                        }
                    }
                    next += 1;
                }
            }
            Err(e) => warn!(error = %e, "cannot reach the chain; retrying"),
        }
        tokio::time::sleep(TICK).await;
    }
}

fn record_deposits(simulator: &Simulator, deposits: Vec<chain::Deposit>) {
    // NOWPayments' pay addresses first, so the two locks are never held together.
    let deposits: Vec<_> = deposits.into_iter().filter(|d| !simulator.nowpayments_deposit(d)).collect();
    let mut exchanges = simulator.exchanges_lock();
    for deposit in deposits {
        let Some(x) = exchanges.values_mut().find(|x| x.payin_address == deposit.to && x.amount_from.is_none()) else {
            continue;
        };
        if x.pair.from_currency != deposit.coin {
            warn!(exchange_id = %x.id, expected = %x.pair.from_currency, got = deposit.coin, "deposit of the wrong coin ignored");
            continue;
        }
        info!(exchange_id = %x.id, amount = %deposit.amount, coin = deposit.coin, tx_hash = %deposit.tx_hash, "deposit received");
        x.record_deposit(deposit.amount, deposit.tx_hash, simulator.config.step_delay);
    }
}
