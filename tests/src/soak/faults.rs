//! Carrying out the fault plan against the running stack, the exchange faults (they wait for the
//! next exchange created), and the operator's retries of failed payout batches over the HTTP API.

use super::{
    plan::{ExchangeTarget, Fault, FaultKind, FaultPlan},
    Stack, ADMIN_TOKEN,
};
use serde_json::json;
use std::{
    collections::{BTreeMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tracing::{info, warn};
use workflows::domain::ExchangeStatus;

/// 20 gwei: far above anvil's idle base fee, well below `MAX_FEE_GWEI` (200), so replacements
/// are possible.
const STUCK_BASE_FEE_WEI: u64 = 20_000_000_000;

/// Faults carried out, per kind, and what each hit.
#[derive(Default)]
pub struct FaultLog {
    inner: Mutex<BTreeMap<FaultKind, (u32, u32)>>,
    pub notes: Mutex<Vec<String>>,
}

impl FaultLog {
    pub fn planned(&self, kind: FaultKind) {
        self.inner.lock().unwrap().entry(kind).or_default().0 += 1;
    }

    pub fn applied(&self, kind: FaultKind, note: impl Into<String>) {
        self.inner.lock().unwrap().entry(kind).or_default().1 += 1;
        let note = note.into();
        info!(fault = kind.name(), %note, "fault applied");
        self.notes.lock().unwrap().push(format!("{}: {note}", kind.name()));
    }

    /// (planned, applied) per kind.
    pub fn counts(&self) -> BTreeMap<FaultKind, (u32, u32)> {
        self.inner.lock().unwrap().clone()
    }
}

/// Exchange outcomes waiting for the next exchange created.
#[derive(Default)]
pub struct ExchangeFaults {
    pending: Mutex<VecDeque<Fault>>,
    /// Exchanges the soak stalled and has not released yet.
    stalled: Mutex<HashSet<String>>,
}

/// The ChangeNow faults in force (the simulator's `POST /sim/faults` replaces them all at once).
#[derive(Default)]
struct ChangeNowState {
    delay_ms: u64,
}

async fn set_changenow_faults(stack: &Stack, body: serde_json::Value) {
    let url = format!("{}/sim/faults", stack.chain.changenow_url());
    if let Err(e) = reqwest::Client::new().post(url).json(&body).send().await {
        warn!(error = %e, "cannot set the simulator's faults");
    }
}

async fn anvil_rpc(stack: &Stack, method: &str, params: serde_json::Value) -> anyhow::Result<()> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let answer: serde_json::Value = reqwest::Client::new().post(&stack.chain.anvil.url).json(&body).send().await?.json().await?;
    anyhow::ensure!(answer.get("error").is_none(), "{method}: {answer}");
    Ok(())
}

/// Runs the plan in time order; windows (slow answers, automine off) and restarts run in tasks
/// of their own so the timeline is not shifted by them.
pub async fn carry_out(
    stack: Arc<Stack>,
    plan: FaultPlan,
    start: Instant,
    log: Arc<FaultLog>,
    exchange_faults: Arc<ExchangeFaults>,
) -> anyhow::Result<()> {
    let changenow = Arc::new(tokio::sync::Mutex::new(ChangeNowState::default()));
    let mut running = Vec::new();
    for (at, fault) in plan.events {
        log.planned(fault.kind());
        tokio::time::sleep_until((start + at).into()).await;
        let kind = fault.kind();
        match fault {
            Fault::KillWorker { index, down } => {
                // Down already (its last kill, or it gave up while a dependency was away): kill
                // it once it is back, so every planned kill hits a running worker.
                let (stack, log) = (stack.clone(), log.clone());
                running.push(tokio::spawn(async move {
                    for _ in 0..200 {
                        if stack.workers[index].kill(down) {
                            log.applied(kind, format!("worker {index} at t+{:.1}s", start.elapsed().as_secs_f64()));
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    anyhow::Ok(())
                }));
            }
            Fault::KillWebhook { down } => {
                if stack.webhook.kill(down) {
                    log.applied(kind, format!("at t+{:.1}s", at.as_secs_f64()));
                }
            }
            Fault::RestartTemporal { down } => {
                let (stack, log) = (stack.clone(), log.clone());
                running.push(tokio::spawn(async move {
                    let mut temporal = stack.temporal.lock().await;
                    temporal.kill();
                    tokio::time::sleep(down).await;
                    let restarted = Instant::now();
                    temporal.start().await?;
                    log.applied(
                        kind,
                        format!("at t+{:.1}s, serving again {:.1}s after its start", at.as_secs_f64(), restarted.elapsed().as_secs_f64()),
                    );
                    anyhow::Ok(())
                }));
            }
            Fault::RestartPostgres { down } => {
                let (stack, log) = (stack.clone(), log.clone());
                running.push(tokio::spawn(async move {
                    let postgres = stack.postgres.clone();
                    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                        postgres.stop("immediate")?;
                        std::thread::sleep(down);
                        postgres.start()
                    })
                    .await??;
                    log.applied(kind, format!("at t+{:.1}s", at.as_secs_f64()));
                    anyhow::Ok(())
                }));
            }
            Fault::ChangeNow5xx { requests, status } => {
                let delay_ms = changenow.lock().await.delay_ms;
                let fail_next: BTreeMap<&str, u32> =
                    ["range", "estimate", "create_exchange", "status"].into_iter().map(|e| (e, requests)).collect();
                set_changenow_faults(&stack, json!({"fail_next": fail_next, "http_status": status, "delay_ms": delay_ms})).await;
                log.applied(kind, format!("{requests} x {status} at t+{:.1}s", at.as_secs_f64()));
            }
            Fault::ChangeNowSlow { delay, window } => {
                changenow.lock().await.delay_ms = delay.as_millis() as u64;
                set_changenow_faults(&stack, json!({"delay_ms": delay.as_millis() as u64})).await;
                log.applied(kind, format!("{delay:?} for {window:?} at t+{:.1}s", at.as_secs_f64()));
                let (stack, changenow) = (stack.clone(), changenow.clone());
                running.push(tokio::spawn(async move {
                    tokio::time::sleep(window).await;
                    changenow.lock().await.delay_ms = 0;
                    set_changenow_faults(&stack, json!({"delay_ms": 0})).await;
                    anyhow::Ok(())
                }));
            }
            Fault::FailNextExchange { .. } | Fault::RefundNextExchange { .. } | Fault::StallNextExchange { .. } => {
                exchange_faults.pending.lock().unwrap().push_back(fault);
            }
            Fault::AutomineOff { window } => {
                anvil_rpc(&stack, "evm_setAutomine", json!([false])).await?;
                // A base fee above what the waiting transfers offer: only then does the outbox
                // replace them (one that pays the base fee is merely slow).
                anvil_rpc(&stack, "anvil_setNextBlockBaseFeePerGas", json!([format!("{:#x}", STUCK_BASE_FEE_WEI)])).await?;
                log.applied(kind, format!("{window:?} at t+{:.1}s", at.as_secs_f64()));
                let stack = stack.clone();
                running.push(tokio::spawn(async move {
                    tokio::time::sleep(window).await;
                    anvil_rpc(&stack, "evm_setAutomine", json!([true])).await?;
                    // Automine only mines transactions sent from now on: mine what waited, then
                    // let the base fee fall back (12.5 % a block) so transfers signed meanwhile
                    // with today's low estimate (the simulator's payouts) get in too.
                    for _ in 0..30 {
                        anvil_rpc(&stack, "evm_mine", json!([])).await?;
                    }
                    anyhow::Ok(())
                }));
            }
        }
    }
    for task in running {
        task.await??;
    }
    Ok(())
}

/// Gives each queued exchange fault to the next exchange created after it was queued.
pub async fn apply_exchange_faults(stack: Arc<Stack>, faults: Arc<ExchangeFaults>, log: Arc<FaultLog>) {
    let mut seen: HashSet<String> = HashSet::new();
    let http = reqwest::Client::new();
    loop {
        for x in stack.chain.simulator.simulator.exchanges() {
            if !seen.insert(x.id.clone()) {
                continue;
            }
            let stable = |c: &str| matches!(c, "usdt" | "usdc");
            let kind = match (stable(&x.pair.from_currency), stable(&x.pair.to_currency)) {
                (true, _) => ExchangeTarget::Payout,
                (false, true) => ExchangeTarget::Conversion,
                (false, false) => ExchangeTarget::Instant,
            };
            // Its outcome is decided when it leaves `exchanging`: until then a forced one applies.
            if !matches!(x.status, ExchangeStatus::New | ExchangeStatus::Waiting | ExchangeStatus::Confirming | ExchangeStatus::Exchanging)
            {
                continue;
            }
            let fault = {
                let mut pending = faults.pending.lock().unwrap();
                let position = pending.iter().position(|f| match f {
                    Fault::FailNextExchange { target } | Fault::RefundNextExchange { target } | Fault::StallNextExchange { target, .. } => {
                        *target == kind
                    }
                    _ => false,
                });
                position.and_then(|p| pending.remove(p))
            };
            let Some(fault) = fault else { continue };
            let outcome = match &fault {
                Fault::FailNextExchange { .. } => "failed",
                Fault::RefundNextExchange { .. } => "refunded",
                _ => "stall",
            };
            let url = format!("{}/sim/exchanges/{}/outcome", stack.chain.changenow_url(), x.id);
            if http.post(&url).json(&json!({"outcome": outcome})).send().await.is_err() {
                continue;
            }
            log.applied(fault.kind(), format!("exchange {} ({})", x.id, x.pair));
            if let Fault::StallNextExchange { stall, .. } = fault {
                faults.stalled.lock().unwrap().insert(x.id.clone());
                let (http, faults, id) = (http.clone(), faults.clone(), x.id.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(stall).await;
                    release_stall(&http, &url, &faults, &id).await;
                });
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn release_stall(http: &reqwest::Client, url: &str, faults: &ExchangeFaults, id: &str) {
    if http.post(url).json(&json!({"outcome": null})).send().await.is_ok() {
        faults.stalled.lock().unwrap().remove(id);
    }
}

/// Retries asked per failed batch.
#[derive(Default)]
pub struct OperatorRetries {
    pub asked: Mutex<BTreeMap<uuid::Uuid, u32>>,
    last: Mutex<BTreeMap<uuid::Uuid, Instant>>,
}

/// An operator who looks every 5 s and retries each failed payout batch over the HTTP API (at
/// most 3 times per batch, 15 s apart), as the admin console would.
pub async fn operator_retries(stack: Arc<Stack>, retries: Arc<OperatorRetries>, log: Arc<FaultLog>) {
    let http = reqwest::Client::new();
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let failed: Vec<uuid::Uuid> =
            match sqlx::query_scalar("SELECT batch_id FROM payout_batches WHERE status = 'failed'").fetch_all(&stack.pool).await {
                Ok(ids) => ids,
                // Postgres may be restarting.
                Err(_) => continue,
            };
        for batch_id in failed {
            let (asked, last) = retries
                .asked
                .lock()
                .unwrap()
                .get(&batch_id)
                .copied()
                .map_or((0, None), |n| (n, retries.last.lock().unwrap().get(&batch_id).copied()));
            if asked >= 3 || last.is_some_and(|t: Instant| t.elapsed() < Duration::from_secs(15)) {
                continue;
            }
            let url = format!("{}/payout-batches/{batch_id}/retry", stack.api_url);
            match http.post(&url).bearer_auth(ADMIN_TOKEN).send().await {
                Ok(answer) => {
                    let status = answer.status();
                    let text = answer.text().await.unwrap_or_default();
                    *retries.asked.lock().unwrap().entry(batch_id).or_default() += 1;
                    retries.last.lock().unwrap().insert(batch_id, Instant::now());
                    log.applied(
                        FaultKind::OperatorRetry,
                        format!("batch {batch_id}: {status} {}", text.chars().take(160).collect::<String>()),
                    );
                }
                Err(e) => warn!(error = %e, %batch_id, "retry not delivered (webhook down?)"),
            }
        }
    }
}

/// The end of the fault phase: no ChangeNow errors or delays, stalled exchanges released,
/// automine on. Exchange faults still waiting for their kind of exchange (payouts come late) stay
/// queued into the settling.
pub async fn calm(stack: &Stack, faults: &ExchangeFaults) -> anyhow::Result<()> {
    set_changenow_faults(stack, json!({"delay_ms": 0})).await;
    let http = reqwest::Client::new();
    let stalled: Vec<String> = faults.stalled.lock().unwrap().iter().cloned().collect();
    for id in stalled {
        let url = format!("{}/sim/exchanges/{id}/outcome", stack.chain.changenow_url());
        release_stall(&http, &url, faults, &id).await;
    }
    anvil_rpc(stack, "evm_setAutomine", json!([true])).await?;
    anvil_rpc(stack, "evm_mine", json!([])).await?;
    Ok(())
}
