//! `GET /metrics` on the webhook server, in Prometheus' text format (OpenMetrics), through the
//! Prometheus project's `prometheus-client`. Intake answers are counted in this process; every
//! ledger figure (payments, unpaid USDT, the pending pool, batch outcomes and their durations,
//! open alerts) is read from Postgres at the scrape ([`ledger_gauges`]), so it is exact and the
//! same whichever process did the work.

use activities::db::ledger_gauges::{self, LedgerGauges, DURATION_BUCKETS};
use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use prometheus_client::{
    collector::Collector,
    encoding::{text::encode, DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{counter::ConstCounter, counter::Counter, family::Family, gauge::ConstGauge, MetricType},
    registry::Registry,
};
use rust_decimal::{prelude::ToPrimitive, Decimal};
use sqlx::PgPool;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: u16,
}

/// This process's own counts; cloned handles share them.
#[derive(Clone, Default)]
pub struct HttpMetrics {
    ipn_requests: Family<CodeLabel, Counter>,
}

impl HttpMetrics {
    pub fn count_ipn_answer(&self, status: StatusCode) {
        self.ipn_requests.get_or_create(&CodeLabel { code: status.as_u16() }).inc();
    }
}

#[derive(Clone)]
pub struct MetricsState {
    pub pool: PgPool,
    pub http: HttpMetrics,
}

pub async fn serve(State(state): State<MetricsState>) -> Response {
    let ledger = match ledger_gauges::read(&state.pool).await {
        Ok(ledger) => ledger,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the ledger could not be read");
            return (StatusCode::SERVICE_UNAVAILABLE, "the ledger could not be read\n").into_response();
        }
    };
    let mut registry = Registry::default();
    registry.register("payout_ipn_requests", "IPNs answered, by HTTP status", state.http.ipn_requests.clone());
    registry.register_collector(Box::new(LedgerCollector(ledger)));
    let mut text = String::new();
    if let Err(e) = encode(&mut text, &registry) {
        tracing::warn!(error = %e, "metrics could not be encoded");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

/// A Prometheus sample from a ledger amount: samples are float64 on the wire; the ledger itself
/// never passes through this.
fn sample(amount: Decimal) -> f64 {
    // float-ok: a metric sample, not money
    amount.to_f64().unwrap_or(f64::NAN) // float-ok: a metric sample, not money
}

#[derive(Debug)]
struct LedgerCollector(LedgerGauges);

impl Collector for LedgerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let l = &self.0;
        let counted = [("threshold", l.threshold_payments), ("instant", l.instant_payments)];
        let mut payments =
            encoder.encode_descriptor("payout_payments", "Payments processed, by payout strategy", None, MetricType::Counter)?;
        for (strategy, n) in counted {
            ConstCounter::new(n.max(0) as u64).encode(payments.encode_family(&[("strategy", strategy)])?)?;
        }
        for (name, help, value) in [
            ("payout_unpaid_usdt", "Converted USDT owed to threshold clients, not paid out yet", Some(l.unpaid_usdt)),
            ("payout_pending_pool_usd", "USD value of threshold payments waiting for a conversion", Some(l.pending_pool_usd)),
            ("payout_micro_batch_threshold_usd", "The pending pool's value that starts a conversion", l.micro_batch_threshold_usd),
        ] {
            if let Some(value) = value {
                ConstGauge::new(sample(value)).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
            }
        }
        let mut open =
            encoder.encode_descriptor("payout_open_alerts", "Alerts no operator has closed, by severity", None, MetricType::Gauge)?;
        for (severity, n) in &l.open_alerts {
            ConstGauge::new(*n).encode(open.encode_family(&[("severity", severity.as_str())])?)?;
        }
        for (kind, name, help) in [
            ("conversion", "payout_conversions", "Micro-batch conversions ended, by outcome"),
            ("payout", "payout_batches", "Payout batches ended, by outcome"),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for o in l.outcomes.iter().filter(|o| o.batch_kind == kind) {
                ConstCounter::new(o.count.max(0) as u64).encode(family.encode_family(&[("outcome", o.outcome.as_str())])?)?;
            }
        }
        let mut durations = encoder.encode_descriptor(
            "payout_batch_duration_seconds",
            "How long batches took from the start of processing to their outcome",
            None,
            MetricType::Histogram,
        )?;
        for o in &l.outcomes {
            // The encoder adds the buckets up: give each its own share, +Inf last.
            let mut buckets: Vec<(f64, u64)> = Vec::with_capacity(DURATION_BUCKETS.len() + 1); // float-ok: seconds
            let mut below = 0i64;
            for (bound, at_or_below) in DURATION_BUCKETS.iter().zip(&o.at_or_below) {
                buckets.push((sample(*bound), (at_or_below - below).max(0) as u64));
                below = *at_or_below;
            }
            buckets.push((f64::MAX, (o.count - below).max(0) as u64)); // float-ok: the +Inf bucket bound
            let labels = [("kind", o.batch_kind.as_str()), ("outcome", o.outcome.as_str())];
            durations.encode_family(&labels)?.encode_histogram::<Vec<(String, String)>>(
                sample(o.seconds_sum),
                o.count.max(0) as u64,
                &buckets,
                None,
            )?;
        }
        Ok(())
    }
}
