//! The `settings` table: operator-tunable values read at run time (no restart needed).

use rust_decimal::Decimal;
use sqlx::PgPool;

/// Creates or replaces one setting. The table's triggers validate the values they guard.
pub async fn put(pool: &PgPool, key: &str, value: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, now())
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
    )
    .bind(key)
    .bind(value)
    .execute(pool)
    .await?;
    Ok(())
}

/// At worker start: applies an amount the environment sets (`None`: off, the setting removed) to
/// the setting `key`, only when it differs from what the environment gave last time (kept in
/// `{key}_configured`), so a value an operator changed at run time survives restarts while a
/// changed environment still takes effect. Returns whether it applied.
pub async fn apply_configured_amount(pool: &PgPool, key: &str, configured: Option<Decimal>) -> Result<bool, sqlx::Error> {
    let configured_key = format!("{key}_configured");
    let text = configured.map_or_else(|| "off".to_owned(), |usd| format!("{usd:.2}"));
    let mut tx = pool.begin().await?;
    // Several workers starting at once apply it once.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(&configured_key).execute(&mut *tx).await?;
    let last: Option<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(&configured_key).fetch_optional(&mut *tx).await?;
    // Never set by the environment and still unset: leave what operators chose alone.
    let applies = last.as_deref() != Some(text.as_str()) && !(last.is_none() && configured.is_none());
    if applies {
        match configured {
            Some(usd) => {
                sqlx::query(
                    "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, now())
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
                )
                .bind(key)
                .bind(format!("{usd:.2}"))
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM settings WHERE key = $1").bind(key).execute(&mut *tx).await?;
            }
        }
    }
    sqlx::query(
        "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, now())
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
    )
    .bind(&configured_key)
    .bind(&text)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(applies)
}
