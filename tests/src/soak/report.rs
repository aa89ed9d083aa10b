//! The table the soak prints at the end: payments, faults, transfers and exchanges, violations.

use super::{
    checks::{Facts, Violation, INVARIANTS},
    faults::FaultLog,
    plan::FaultKind,
    traffic::{SendCounts, SoakClient, SoakPayment},
    SoakOptions, Stack,
};
use std::{fmt::Write, sync::atomic::Ordering, time::Duration};
use workflows::domain::PayoutStrategy;

pub struct ReportInput<'a> {
    pub options: &'a SoakOptions,
    pub payments: &'a [SoakPayment],
    pub clients: &'a [SoakClient],
    pub counts: &'a SendCounts,
    pub log: &'a FaultLog,
    pub stack: &'a Stack,
    pub facts: &'a Facts,
    pub violations: &'a [Violation],
    pub elapsed: Duration,
}

pub async fn table(r: &ReportInput<'_>) -> anyhow::Result<String> {
    let mut t = String::new();
    let o = r.options;
    writeln!(t, "== soak: seed {}, {} payments, {} clients, {:.0}s ==", o.seed, o.payments, r.clients.len(), r.elapsed.as_secs_f64())?;

    writeln!(t, "\npayments                          instant  threshold")?;
    let by = |strategy: PayoutStrategy, f: &dyn Fn(&SoakPayment) -> bool| {
        r.payments.iter().filter(|p| r.clients[p.client].strategy == strategy && f(p)).count()
    };
    let routed: std::collections::HashMap<i64, String> =
        sqlx::query_as::<_, (i64, String)>("SELECT payment_id, status FROM payments").fetch_all(&r.stack.pool).await?.into_iter().collect();
    let rows: [(&str, &dyn Fn(&SoakPayment) -> bool); 5] = [
        ("sent", &|_| true),
        ("  finished (to be paid)", &|p| p.finished()),
        ("  never finished", &|p| !p.finished()),
        ("  below ChangeNow's minimum", &|p| p.below_minimum),
        ("accepted and routed", &|p| routed.get(&p.payment_id).is_some_and(|s| s == "accumulated" || s == "awaiting_instant_payout")),
    ];
    for (name, f) in rows {
        writeln!(t, "{name:<34}{:>7}  {:>9}", by(PayoutStrategy::Instant, f), by(PayoutStrategy::Threshold, f))?;
    }
    writeln!(
        t,
        "IPNs sent {} (accepted {}, refused {}), resent after no answer {}",
        r.counts.ipns_sent.load(Ordering::Relaxed),
        r.counts.ipns_accepted.load(Ordering::Relaxed),
        r.counts.ipns_refused.load(Ordering::Relaxed),
        r.counts.resends.load(Ordering::Relaxed)
    )?;

    writeln!(t, "\nfaults                            planned  applied")?;
    let counts = r.log.counts();
    for kind in FaultKind::ALL {
        let (planned, applied) = counts.get(&kind).copied().unwrap_or_default();
        let planned = if kind == FaultKind::OperatorRetry { "-".to_owned() } else { planned.to_string() };
        writeln!(t, "{:<34}{planned:>7}  {applied:>7}", kind.name())?;
    }
    for (i, worker) in r.stack.workers.iter().enumerate() {
        let (starts, kills, own) = worker.counts();
        writeln!(t, "worker {i}: started {starts}, SIGKILLed {kills}, exited on its own {own}")?;
    }
    let (starts, kills, own) = r.stack.webhook.counts();
    writeln!(t, "webhook: started {starts}, SIGKILLed {kills}, exited on its own {own}")?;

    writeln!(t, "\nledger, transfers and exchanges")?;
    for (name, n) in &r.facts.counters {
        writeln!(t, "  {name:<44}{n:>8}")?;
    }
    for (name, n) in &r.facts.exchanges {
        writeln!(t, "  exchanges {name:<34}{n:>8}")?;
    }

    writeln!(t, "\nviolations per invariant")?;
    for name in INVARIANTS {
        let n = r.violations.iter().filter(|v| v.invariant == *name).count();
        writeln!(t, "  {name:<44}{n:>8}")?;
    }
    let total = r.violations.len();
    writeln!(t, "  {:<44}{total:>8}", "TOTAL")?;
    for v in r.violations.iter().take(40) {
        writeln!(t, "  ! {}: {}", v.invariant, v.detail)?;
    }
    if total > 40 {
        writeln!(t, "  ... and {} more", total - 40)?;
    }
    Ok(t)
}
