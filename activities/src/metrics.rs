//! The worker's own metrics, made through the Temporal SDK's meter so they are served with the
//! SDK's worker metrics by its Prometheus exporter on `METRICS_ADDR`. (The ledger's totals are
//! read from Postgres at each scrape of the webhook server's `/metrics`.)

use rust_decimal::{prelude::ToPrimitive, Decimal};
use std::{sync::Arc, time::Duration};
use temporalio_common::telemetry::metrics::{
    CoreMeter, GaugeF64, HistogramDuration, MetricAttributes, MetricKeyValue, MetricParameters, NewAttributes,
};
use workflows::activity_definitions::HotWalletBalances;

#[derive(Clone)]
pub struct WorkerMetrics {
    hot_wallet_balance: GaugeF64,
    eth: MetricAttributes,
    usdt: MetricAttributes,
    usdc: MetricAttributes,
    over_threshold_query: HistogramDuration,
    no_labels: MetricAttributes,
}

impl WorkerMetrics {
    pub fn new(meter: &Arc<dyn CoreMeter>) -> Self {
        let asset = |name: &str| meter.new_attributes(NewAttributes::from([MetricKeyValue::new("asset", name.to_owned())]));
        Self {
            hot_wallet_balance: meter.gauge_f64(
                MetricParameters::builder()
                    .name("payout_hot_wallet_balance")
                    .description("The hot wallet's balance by asset, in whole coins (ETH, USDT, USDC)")
                    .build(),
            ),
            eth: asset("eth"),
            usdt: asset("usdt"),
            usdc: asset("usdc"),
            over_threshold_query: meter.histogram_duration(
                MetricParameters::builder()
                    .name("payout_over_threshold_query")
                    .description("How long the payout sweep's over-threshold query takes (alert above 500 ms)")
                    .build(),
            ),
            no_labels: meter.new_attributes(NewAttributes::default()),
        }
    }

    pub fn record_hot_wallet(&self, balances: &HotWalletBalances) {
        // float-ok: Prometheus samples are float64; the ledger itself never passes through this.
        let coins = |base_units: Decimal, decimals: u32| (base_units / Decimal::from(10u64.pow(decimals))).to_f64().unwrap_or(0.0);
        self.hot_wallet_balance.record(coins(balances.eth_wei, 18), &self.eth);
        if let Some(usdt) = balances.usdt_base_units {
            self.hot_wallet_balance.record(coins(usdt, 6), &self.usdt);
        }
        if let Some(usdc) = balances.usdc_base_units {
            self.hot_wallet_balance.record(coins(usdc, 6), &self.usdc);
        }
    }

    pub fn record_over_threshold_query(&self, millis: u64) {
        self.over_threshold_query.record(Duration::from_millis(millis), &self.no_labels);
    }
}
