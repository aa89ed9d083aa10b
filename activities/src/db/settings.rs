//! The `settings` table: operator-tunable values read at run time (no restart needed).

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
