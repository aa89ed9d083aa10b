//! Issue 12, item 5: the micro-batch threshold set from volume at each conversion run, every
//! change recorded with its inputs, and turned off by a manual `threshold set`.

use activities::db::{auto_threshold, conversion_ledger};
use integration_tests::{fill_pending_pool, run_conversion, TestApp};
use payout_starter::cli::threshold;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

async fn changes(app: &TestApp) -> Vec<(String, Option<Decimal>, Decimal, Option<Decimal>)> {
    sqlx::query_as("SELECT source, old_usd, new_usd, volume_7d_usd FROM threshold_changes ORDER BY change_id")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_conversion_run_sets_the_threshold_from_the_weeks_volume_until_an_operator_sets_one() {
    let app = TestApp::spawn().await;
    // 3,000 payments of 0.97 USD net this week: 415.71 a day, 4 runs a day -> 103.93 -> 100.
    fill_pending_pool(&app.pool, "-101300", 3000).await;
    // Older than a week: not counted.
    sqlx::query(
        "UPDATE payout_accumulation SET created_at = now() - interval '8 days' WHERE id IN (SELECT id FROM payout_accumulation LIMIT 1000)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let before = conversion_ledger::read_threshold(&app.pool).await.unwrap();
    auto_threshold::enable(&app.pool, &auto_threshold::AutoThresholdPolicy::new(6, dec!(20), dec!(1000)).unwrap()).await.unwrap();

    run_conversion(&app, "auto-threshold").await.expect("the conversion completes");
    // 2,000 counted rows x 0.97 = 1,940 a week: 277.14 a day / 4 = 69.29 -> 70.
    assert_eq!(conversion_ledger::read_threshold(&app.pool).await.unwrap(), dec!(70));
    assert_eq!(changes(&app).await, vec![("auto".to_owned(), Some(before), dec!(70), Some(dec!(1940)))]);
    let threshold_at_creation: Decimal =
        sqlx::query_scalar("SELECT threshold_at_creation FROM batch_conversions").fetch_one(&app.pool).await.unwrap();
    assert_eq!(threshold_at_creation, dec!(70), "the run claimed against the threshold it had just set");

    // Same volume: nothing changes, nothing is recorded.
    assert_eq!(auto_threshold::adjust(&app.pool).await.unwrap(), None);
    assert_eq!(changes(&app).await.len(), 1);

    threshold::set(&app.pool, dec!(50)).await.unwrap();
    assert_eq!(auto_threshold::policy(&app.pool).await.unwrap(), None, "a manual threshold turns auto off");
    assert_eq!(auto_threshold::adjust(&app.pool).await.unwrap(), None);
    assert_eq!(conversion_ledger::read_threshold(&app.pool).await.unwrap(), dec!(50));
    assert_eq!(changes(&app).await[1], ("manual".to_owned(), Some(dec!(70)), dec!(50), None));
}
