//! The fault plan: which fault happens when, drawn from the seed before anything runs, so a
//! `SEED` gives the same plan every time (what a fault hits, e.g. which exchange is the next one
//! created, still depends on timing).

use super::rng::Rng;
use std::{fmt, time::Duration};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    WorkerKill,
    WebhookKill,
    TemporalRestart,
    PostgresRestart,
    ChangeNow5xxBurst,
    ChangeNowSlow,
    ExchangeFailed,
    ExchangeRefunded,
    ExchangeStalled,
    AutomineOff,
    OperatorRetry,
}

impl FaultKind {
    pub const ALL: [FaultKind; 11] = [
        Self::WorkerKill,
        Self::WebhookKill,
        Self::TemporalRestart,
        Self::PostgresRestart,
        Self::ChangeNow5xxBurst,
        Self::ChangeNowSlow,
        Self::ExchangeFailed,
        Self::ExchangeRefunded,
        Self::ExchangeStalled,
        Self::AutomineOff,
        Self::OperatorRetry,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::WorkerKill => "worker SIGKILL",
            Self::WebhookKill => "webhook SIGKILL",
            Self::TemporalRestart => "Temporal restart",
            Self::PostgresRestart => "PostgreSQL restart",
            Self::ChangeNow5xxBurst => "ChangeNow 5xx burst",
            Self::ChangeNowSlow => "ChangeNow slow answers",
            Self::ExchangeFailed => "exchange failed",
            Self::ExchangeRefunded => "exchange refunded",
            Self::ExchangeStalled => "exchange stalled",
            Self::AutomineOff => "anvil automine off",
            Self::OperatorRetry => "operator batch retry",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL worker `index` (0 or 1); it is restarted after `down`.
    KillWorker {
        index: usize,
        down: Duration,
    },
    KillWebhook {
        down: Duration,
    },
    /// SIGKILL the dev server, start it again on its file after `down`.
    RestartTemporal {
        down: Duration,
    },
    /// `pg_ctl stop -m immediate` (every backend killed, crash recovery), start after `down`.
    RestartPostgres {
        down: Duration,
    },
    /// The next `requests` calls of each ChangeNow endpoint answer `status`.
    ChangeNow5xx {
        requests: u32,
        status: u16,
    },
    /// Every ChangeNow answer waits `delay` for `window`.
    ChangeNowSlow {
        delay: Duration,
        window: Duration,
    },
    /// The next exchange of `target` created ends `failed` (never a conversion's: a conversion
    /// whose ETH ChangeNow kept is a loss only ChangeNow's support can settle).
    FailNextExchange {
        target: ExchangeTarget,
    },
    /// The next exchange of `target` created is refunded on chain.
    RefundNextExchange {
        target: ExchangeTarget,
    },
    /// The next exchange of `target` created stays `exchanging` for `stall`, then finishes.
    StallNextExchange {
        target: ExchangeTarget,
        stall: Duration,
    },
    /// Nothing is mined for `window`; transfers stuck meanwhile are replaced with higher fees.
    AutomineOff {
        window: Duration,
    },
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Self::KillWorker { .. } => FaultKind::WorkerKill,
            Self::KillWebhook { .. } => FaultKind::WebhookKill,
            Self::RestartTemporal { .. } => FaultKind::TemporalRestart,
            Self::RestartPostgres { .. } => FaultKind::PostgresRestart,
            Self::ChangeNow5xx { .. } => FaultKind::ChangeNow5xxBurst,
            Self::ChangeNowSlow { .. } => FaultKind::ChangeNowSlow,
            Self::FailNextExchange { .. } => FaultKind::ExchangeFailed,
            Self::RefundNextExchange { .. } => FaultKind::ExchangeRefunded,
            Self::StallNextExchange { .. } => FaultKind::ExchangeStalled,
            Self::AutomineOff { .. } => FaultKind::AutomineOff,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KillWorker { index, down } => write!(f, "SIGKILL worker {index}, down {down:?}"),
            Self::KillWebhook { down } => write!(f, "SIGKILL webhook, down {down:?}"),
            Self::RestartTemporal { down } => write!(f, "restart Temporal, down {down:?}"),
            Self::RestartPostgres { down } => write!(f, "restart PostgreSQL (immediate), down {down:?}"),
            Self::ChangeNow5xx { requests, status } => write!(f, "ChangeNow answers {status} to the next {requests} calls per endpoint"),
            Self::ChangeNowSlow { delay, window } => write!(f, "ChangeNow answers after {delay:?} for {window:?}"),
            Self::FailNextExchange { target } => write!(f, "next {target:?} exchange ends failed"),
            Self::RefundNextExchange { target } => write!(f, "next {target:?} exchange is refunded"),
            Self::StallNextExchange { target, stall } => write!(f, "next {target:?} exchange stalls for {stall:?}"),
            Self::AutomineOff { window } => write!(f, "anvil automine off for {window:?}"),
        }
    }
}

/// Which exchanges an exchange fault may hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeTarget {
    /// An instant payout's ETH -> client coin.
    Instant,
    /// A micro-batch conversion's ETH -> USDT.
    Conversion,
    /// A threshold payout's USDT -> client coin.
    Payout,
}

/// How many of each fault a run gets.
#[derive(Debug, Clone)]
pub struct FaultBudget {
    pub worker_kills: u32,
    pub webhook_kills: u32,
    pub temporal_restarts: u32,
    pub postgres_restarts: u32,
    pub bursts_5xx: u32,
    pub slow_windows: u32,
    pub failed_exchanges: u32,
    pub refunded_exchanges: u32,
    pub stalled_exchanges: u32,
    pub automine_off: u32,
    pub automine_off_window: Duration,
    pub stall: Duration,
}

impl FaultBudget {
    /// The full soak's faults (`make soak`).
    pub fn full() -> Self {
        Self {
            worker_kills: 24,
            webhook_kills: 3,
            temporal_restarts: 1,
            postgres_restarts: 1,
            bursts_5xx: 4,
            slow_windows: 3,
            failed_exchanges: 4,
            refunded_exchanges: 5,
            stalled_exchanges: 4,
            automine_off: 2,
            automine_off_window: Duration::from_secs(120),
            stall: Duration::from_secs(40),
        }
    }

    /// Every kind at least once, in a run short enough for `make test`.
    pub fn short() -> Self {
        Self {
            worker_kills: 4,
            webhook_kills: 1,
            temporal_restarts: 1,
            postgres_restarts: 1,
            bursts_5xx: 2,
            slow_windows: 1,
            failed_exchanges: 1,
            refunded_exchanges: 2,
            stalled_exchanges: 1,
            automine_off: 1,
            automine_off_window: Duration::from_secs(15),
            stall: Duration::from_secs(10),
        }
    }
}

/// Faults at their offsets from the start of the traffic, in time order.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    pub events: Vec<(Duration, Fault)>,
}

impl FaultPlan {
    /// Spreads the budget over `[start, window)`. The heavy restarts (Temporal, Postgres) and the
    /// automine windows are kept apart from one another so each one's effect can be told apart;
    /// worker kills fall anywhere, also during the others.
    pub fn draw(rng: &Rng, budget: &FaultBudget, start: Duration, window: Duration) -> Self {
        let mut rng = rng.fork(1);
        let (lo, hi) = (start.as_millis() as u64, window.as_millis() as u64);
        let at = |rng: &mut Rng| Duration::from_millis(rng.range(lo, hi));
        let mut events = Vec::new();
        for _ in 0..budget.worker_kills {
            let index = rng.range(0, 2) as usize;
            events.push((at(&mut rng), Fault::KillWorker { index, down: Duration::from_millis(rng.range(500, 4000)) }));
        }
        for _ in 0..budget.webhook_kills {
            events.push((at(&mut rng), Fault::KillWebhook { down: Duration::from_millis(rng.range(1000, 5000)) }));
        }
        // Heavy faults in separate slots of the window.
        let heavy = budget.temporal_restarts + budget.postgres_restarts + budget.automine_off;
        let slot = (hi - lo) / u64::from(heavy.max(1));
        let mut slots: Vec<u64> = (0..u64::from(heavy)).collect();
        rng.shuffle(&mut slots);
        let mut slots = slots.into_iter();
        let in_slot = |rng: &mut Rng, slots: &mut std::vec::IntoIter<u64>, length: u64| {
            let s = slots.next().unwrap_or(0);
            let free = slot.saturating_sub(length).max(1);
            Duration::from_millis(lo + s * slot + rng.range(0, free))
        };
        for _ in 0..budget.temporal_restarts {
            let t = in_slot(&mut rng, &mut slots, 5_000);
            events.push((t, Fault::RestartTemporal { down: Duration::from_millis(rng.range(1000, 5000)) }));
        }
        for _ in 0..budget.postgres_restarts {
            let t = in_slot(&mut rng, &mut slots, 5_000);
            events.push((t, Fault::RestartPostgres { down: Duration::from_millis(rng.range(1000, 5000)) }));
        }
        for _ in 0..budget.automine_off {
            let window = budget.automine_off_window;
            let t = in_slot(&mut rng, &mut slots, window.as_millis() as u64);
            events.push((t, Fault::AutomineOff { window }));
        }
        for _ in 0..budget.bursts_5xx {
            let status = *rng.pick(&[500u16, 502, 503]);
            events.push((at(&mut rng), Fault::ChangeNow5xx { requests: rng.range(3, 12) as u32, status }));
        }
        for _ in 0..budget.slow_windows {
            let delay = Duration::from_millis(rng.range(1500, 4000));
            events.push((at(&mut rng), Fault::ChangeNowSlow { delay, window: Duration::from_secs(rng.range(10, 30)) }));
        }
        // Targets in turn, so a short run hits each kind of exchange too.
        use ExchangeTarget::{Conversion, Instant, Payout};
        for i in 0..budget.failed_exchanges {
            let target = [Instant, Payout][i as usize % 2];
            events.push((at(&mut rng), Fault::FailNextExchange { target }));
        }
        for i in 0..budget.refunded_exchanges {
            let target = [Payout, Conversion, Instant][i as usize % 3];
            events.push((at(&mut rng), Fault::RefundNextExchange { target }));
        }
        for i in 0..budget.stalled_exchanges {
            let target = [Conversion, Payout, Instant][i as usize % 3];
            events.push((at(&mut rng), Fault::StallNextExchange { target, stall: budget.stall }));
        }
        events.sort_by_key(|(t, _)| *t);
        Self { events }
    }

    pub fn print(&self) {
        println!("fault plan ({} events):", self.events.len());
        for (t, fault) in &self.events {
            println!("  t+{:>6.1}s  {fault}", t.as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_plan_with_every_fault_of_the_budget() {
        let budget = FaultBudget::full();
        let plan = FaultPlan::draw(&Rng::new(1), &budget, Duration::from_secs(5), Duration::from_secs(300));
        let again = FaultPlan::draw(&Rng::new(1), &budget, Duration::from_secs(5), Duration::from_secs(300));
        assert_eq!(plan.events, again.events);
        let kills = plan.events.iter().filter(|(_, f)| f.kind() == FaultKind::WorkerKill).count();
        assert_eq!(kills, 24);
        assert!(plan.events.iter().all(|(t, _)| *t >= Duration::from_secs(5) && *t < Duration::from_secs(300)));
        assert!(plan.events.windows(2).all(|w| w[0].0 <= w[1].0));
    }
}
