//! `make bench-conversion`: what micro-batching saves, and how fast the pool query is.
//!
//! 1. For pools of 1, 10 and 100 threshold payments (each on its own anvil, simulator and
//!    database, against the stack's Temporal server), runs one `MicroBatchConversionWorkflow` and
//!    prints the gas the hot wallet paid per converted payment, against one swap per payment
//!    (each payment its own ETH transfer, as the pool of 1 measures).
//! 2. Converts a backlog of 40,000 pending rows in one run (bounded batches, one after the
//!    other) and prints the time it took; every batch's split is checked exact.
//! 3. Fills a fresh database with 1,000,000 `payout_accumulation` rows and times the pending-pool
//!    query the conversion runs (the same SQL), with 1,000 rows pending and with all pending.

use alloy::providers::{Provider, ProviderBuilder};
use integration_tests::{conversion_result, fresh_database, fresh_payment_id, start_conversion, test_ipn, TestApp};
use rust_decimal::Decimal;
use std::time::{Duration, Instant};
use workflows::{domain::PayoutStrategy, MicroBatchConversionInput, MicroBatchConversionOutcome};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    println!("gas per converted payment (anvil; an ETH transfer to the exchange's pay-in address)");
    println!("{:>6} {:>6} {:>12} {:>16} {:>16} {:>8}", "pool", "txs", "gas units", "gas/payment", "one swap each", "saving");
    let mut single_payment_gas = None;
    for pool in [1usize, 10, 100] {
        let (transactions, gas) = convert_pool(pool).await?;
        let per_payment = gas as f64 / pool as f64; // a printed ratio, not money
        let single = *single_payment_gas.get_or_insert(gas);
        println!("{pool:>6} {transactions:>6} {gas:>12} {per_payment:>16.1} {single:>16} {:>7.1}x", single as f64 / per_payment);
    }

    println!();
    println!("backlog: {BACKLOG_ROWS} pending rows (a ChangeNow outage's worth of intake), converted by one run");
    convert_backlog().await?;

    println!();
    println!("pending-pool query over 1,000,000 payout_accumulation rows (20 runs each)");
    pool_query_timings().await?;
    Ok(())
}

const BACKLOG_ROWS: i64 = 40_000;

/// One conversion run over a backlog: bounded batches one after the other, each split exactly.
async fn convert_backlog() -> anyhow::Result<()> {
    let app = TestApp::spawn().await;
    integration_tests::fill_pending_pool(&app.pool, "bench-backlog", BACKLOG_ROWS).await;
    let started = Instant::now();
    let id = start_conversion(&app, "bench-backlog", MicroBatchConversionInput::default()).await;
    let outcome = conversion_result(&app, &id).await.map_err(anyhow::Error::msg)?;
    let elapsed = started.elapsed();
    let MicroBatchConversionOutcome::Converted { batches } = outcome else { anyhow::bail!("{outcome:?}") };
    let mut exact = 0;
    for batch in &batches {
        let split: Decimal =
            sqlx::query_scalar("SELECT sum(accumulated_amount_usdt) FROM payout_accumulation WHERE batch_conversion_id = $1::uuid")
                .bind(&batch.batch_id)
                .fetch_one(&app.pool)
                .await?;
        anyhow::ensure!(split == batch.usdt_received, "batch {} split {split} of {}", batch.batch_id, batch.usdt_received);
        exact += 1;
    }
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM payout_accumulation WHERE conversion_status <> 'completed'").fetch_one(&app.pool).await?;
    anyhow::ensure!(left == 0, "{left} rows not converted");
    println!(
        "  {} rows in {} batches ({exact} split exactly) in {:.1} s",
        batches.iter().map(|b| b.rows).sum::<i64>(),
        batches.len(),
        elapsed.as_secs_f64()
    );
    Ok(())
}

/// One conversion of `size` accumulated payments; returns (hot wallet transactions, gas units).
async fn convert_pool(size: usize) -> anyhow::Result<(u64, u64)> {
    let app = TestApp::spawn().await;
    let client_id = format!("bench-pool-{size}");
    app.add_client(&client_id, PayoutStrategy::Threshold).await;
    sqlx::query("UPDATE settings SET value = '1.00' WHERE key = 'micro_batch_threshold_usd'").execute(&app.pool).await?;
    let mut ids = Vec::with_capacity(size);
    for _ in 0..size {
        let payment_id = fresh_payment_id();
        let (status, body) = app.send_ipn(&test_ipn(payment_id, &client_id, Decimal::from(30), Decimal::new(1, 2))).await;
        anyhow::ensure!(status == 200, "IPN refused: {body}");
        ids.push(payment_id);
    }
    for id in &ids {
        anyhow::ensure!(app.wait_for_status(*id, "accumulated", Duration::from_secs(120)).await, "payment {id} not accumulated");
    }
    let id = start_conversion(&app, &format!("bench-{size}"), MicroBatchConversionInput::default()).await;
    let outcome = conversion_result(&app, &id).await.map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        matches!(&outcome, MicroBatchConversionOutcome::Converted { batches } if batches.iter().map(|b| b.rows).sum::<i64>() == size as i64),
        "{outcome:?}"
    );

    let provider = ProviderBuilder::new().connect_http(app.chain.anvil.url.parse()?);
    let hashes: Vec<String> =
        sqlx::query_scalar("SELECT confirmed_tx_hash FROM transfer_intents WHERE status = 'confirmed'").fetch_all(&app.pool).await?;
    let mut gas = 0;
    for hash in &hashes {
        let receipt = provider.get_transaction_receipt(hash.parse()?).await?.ok_or_else(|| anyhow::anyhow!("no receipt"))?;
        gas += receipt.gas_used;
    }
    Ok((hashes.len() as u64, gas))
}

async fn pool_query_timings() -> anyhow::Result<()> {
    let (pool, _) = fresh_database(&integration_tests::config()).await;
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO clients (client_id, wallet_address, payout_currency, payout_network, payout_strategy, payout_threshold_usd)
         VALUES ('bench', '0x90F79bf6EB2c4f870365E785982E1f101E93b906', 'usdt', 'eth', 'threshold', 100)",
    )
    .execute(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO payments (payment_id, order_id, user_id, client_id, payment_status, status, price_amount, price_currency,
             outcome_amount, outcome_currency, raw_ipn, fee_percent, fee_amount_usd, net_amount_usd, fee_amount_eth, net_amount_eth)
         SELECT g, 'PGP-1|bench', 1, 'bench', 'finished', 'accumulated', 10, 'usd', 0.0033, 'eth', '{}',
                3, 0.30, 9.70, 0.000099, 0.003201
         FROM generate_series(1, 1000000) g",
    )
    .execute(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO payout_accumulation (nowpayments_payment_id, client_id, user_id, payment_amount_usd, payment_currency,
             payment_timestamp, fee_amount_usd, net_amount_usd, accumulated_eth, client_wallet_address,
             client_payout_currency, client_payout_network, conversion_status, batch_conversion_id, accumulated_amount_usdt)
         SELECT g, 'bench', 1, 10, 'usd', now(), 0.30, 9.70, 0.003201, '0x90F79bf6EB2c4f870365E785982E1f101E93b906',
                'usdt', 'eth', 'pending', NULL, NULL
         FROM generate_series(1, 1000000) g",
    )
    .execute(&pool)
    .await?;
    sqlx::query("ANALYZE payout_accumulation").execute(&pool).await?;
    println!("  (filled in {:.1} s)", started.elapsed().as_secs_f64());

    time_pool_query(&pool, "1,000,000 rows, all pending").await?;
    // Realistic: all but the latest 1,000 already converted.
    sqlx::query(
        "INSERT INTO batch_conversions (batch_conversion_id, total_eth_usd, total_eth, threshold_at_creation, conversion_status,
             actual_usdt_received)
         VALUES ('00000000-0000-0000-0000-000000000001', 0, 0, 20, 'completed', 1)",
    )
    .execute(&pool)
    .await?;
    sqlx::query(
        "UPDATE payout_accumulation SET conversion_status = 'completed', accumulated_amount_usdt = 9.55,
                batch_conversion_id = '00000000-0000-0000-0000-000000000001'
         WHERE id <= 999000",
    )
    .execute(&pool)
    .await?;
    sqlx::query("VACUUM ANALYZE payout_accumulation").execute(&pool).await?;
    time_pool_query(&pool, "1,000,000 rows, 1,000 pending").await?;
    Ok(())
}

async fn time_pool_query(pool: &sqlx::PgPool, label: &str) -> anyhow::Result<()> {
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        sqlx::query(activities::db::conversion_ledger::PENDING_POOL_SQL).fetch_one(pool).await?;
        times.push(started.elapsed());
    }
    times.sort();
    println!("  {label:<32} median {:>8.2} ms   max {:>8.2} ms", ms(times[10]), ms(times[19]));
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
