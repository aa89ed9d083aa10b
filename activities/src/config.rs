//! The one typed configuration of the worker and the starter, read from the environment
//! (the binaries load `.env` first). Validated at start-up: a missing or malformed variable
//! is named in the error, and secrets never appear in `Debug` output.

use rust_decimal::Decimal;
use std::{env, fmt, net::SocketAddr, str::FromStr, time::Duration};
use workflows::domain::PlatformFee;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set (see .env.example)")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A value that must never be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: Secret,
    pub temporal_address: String,
    pub temporal_namespace: String,
    pub temporal_task_queue: String,
    /// TLS, mTLS and the API key for a Temporal cluster or Temporal Cloud; none on a dev server.
    pub temporal_security: TemporalSecurity,
    /// Provider URLs often embed an API key.
    pub eth_rpc_url: Option<Secret>,
    pub host_wallet_private_key: Option<Secret>,
    pub usdt_contract: Option<String>,
    /// `USDC_CONTRACT`: the alternative settlement stablecoin's token; unset: USDC is not offered.
    pub usdc_contract: Option<String>,
    pub changenow_api_url: Option<Secret>,
    pub changenow_api_key: Option<Secret>,
    /// `CHANGENOW_SENDER_ADDRESSES` (comma-separated): the addresses ChangeNow pays out and refunds
    /// from. A refund counts only from one of them; empty: no refund is credited automatically.
    pub changenow_sender_addresses: Vec<String>,
    pub nowpayments_ipn_secret: Secret,
    /// `NOWPAYMENTS_API_URL` (default `https://api.nowpayments.io`; locally the sandbox): where a
    /// payment's record is read before it is routed.
    pub nowpayments_api_url: String,
    /// `NOWPAYMENTS_API_KEY`: the worker needs it to verify payments.
    pub nowpayments_api_key: Option<Secret>,
    pub platform_fee: PlatformFee,
    pub http_addr: SocketAddr,
    /// Blocks a transfer needs (its own included) before it counts: `ETH_CONFIRMATIONS`,
    /// default 1 for anvil; use 12 or more on mainnet.
    pub eth_confirmations: u64,
    /// `ETH_CONFIRMATIONS_FORCE=1`: accept fewer than [`MAINNET_MIN_CONFIRMATIONS`] on mainnet.
    pub eth_confirmations_forced: bool,
    /// A transfer not mined this long after its broadcast is replaced with higher fees:
    /// `TRANSFER_STUCK_AFTER_SECS`, default 180.
    pub transfer_stuck_after: Duration,
    /// The ceiling on what a transfer offers per gas, in wei: `MAX_FEE_GWEI` (gwei, fractions
    /// allowed), default 200. A stuck transfer is never bumped past it; reaching it raises an alert.
    pub max_fee_per_gas_wei: u128,
    /// Fault injection for the crash tests: `PAYOUT_FAULT_KILL_AFTER_BROADCAST=1` makes the
    /// worker SIGKILL itself right after a transfer is broadcast, before the activity reports
    /// back: the worst moment to die. Never set it in production.
    pub fault_kill_after_broadcast: bool,
    /// The operators' bearer token (`ADMIN_TOKEN`); the admin surface is off without it.
    pub admin_token: Option<Secret>,
    /// Where operators open the Temporal UI (`TEMPORAL_UI_URL`); the admin console links into it.
    pub temporal_ui_url: String,
    /// `PAYOUT_APPROVAL_ABOVE_USD`: payout batches above it wait for an operator (unset: off).
    /// Stored in `settings` when the worker starts; changed at run time from the settings API.
    pub payout_approval_above_usd: Option<Decimal>,
    /// `CLIENT_DAILY_PAYOUT_LIMIT_USD`: any payout (instant or batch) that would take one client's
    /// payouts of the last 24 h above it waits for an operator's approval (empty: off). Stored in
    /// `settings` when the worker starts, as the approval amount is.
    pub client_daily_payout_limit_usd: Option<Decimal>,
    /// How much one worker process takes on at once (`WORKER_*`); see [`WorkerTuning`].
    pub worker_tuning: WorkerTuning,
    /// `METRICS_ADDR`: where the worker serves `/metrics` (its own and the Temporal SDK's); unset: none.
    pub metrics_addr: Option<SocketAddr>,
    /// `ALERT_WEBHOOK_URL`: where alerts are POSTed as JSON; unset: stored and listed only. A
    /// secret: receivers such as chat webhooks carry their token in the URL.
    pub alert_webhook_url: Option<Secret>,
    /// `TELEGRAM_*`: the bot that proves who owns a channel.
    pub telegram: crate::telegram::TelegramConfig,
}

/// How the worker and the starter prove themselves to Temporal. A dev server: nothing. A
/// self-hosted cluster: TLS, with a client certificate for mTLS. Temporal Cloud: TLS with a
/// client certificate or an API key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemporalSecurity {
    /// `None`: plain text.
    pub tls: Option<TemporalTls>,
    /// `TEMPORAL_API_KEY`: sent as `Authorization: Bearer ...` on every call; turns TLS on.
    pub api_key: Option<Secret>,
}

/// TLS to Temporal. On when `TEMPORAL_TLS=true`, or when any `TEMPORAL_TLS_*` or
/// `TEMPORAL_API_KEY` is set (`TEMPORAL_TLS=false` with them is refused as a contradiction).
/// The files are read at start-up, so a wrong path stops the binary with its name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemporalTls {
    /// `TEMPORAL_TLS_CA`: a PEM file of the CA that signed the server's certificate; unset: the
    /// system's roots (Temporal Cloud).
    pub server_ca_pem: Option<Vec<u8>>,
    /// `TEMPORAL_TLS_CERT` and `TEMPORAL_TLS_KEY` (PEM files, both or neither): the client's
    /// certificate for mTLS.
    pub client_identity: Option<ClientIdentity>,
    /// `TEMPORAL_TLS_SERVER_NAME`: the name the server's certificate is checked against when it
    /// is not the host of `TEMPORAL_ADDRESS`.
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Secret,
}

/// One worker process's concurrency. More processes on the same task queue scale out; these
/// size each one (each in-flight activity holds a Postgres connection at most).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerTuning {
    /// `WORKER_MAX_WORKFLOW_TASKS` (default 100): workflow tasks processed at once.
    pub max_workflow_tasks: usize,
    /// `WORKER_MAX_ACTIVITIES` (default 100): activities run at once.
    pub max_activities: usize,
    /// `WORKER_MAX_LOCAL_ACTIVITIES` (default 100).
    pub max_local_activities: usize,
    /// `WORKER_WORKFLOW_POLLERS` (at least 2) and `WORKER_ACTIVITY_POLLERS`: concurrent long
    /// polls; unset: the SDK's default (5, with autoscaling where the server offers it).
    pub workflow_pollers: Option<usize>,
    pub activity_pollers: Option<usize>,
}

impl Default for WorkerTuning {
    fn default() -> Self {
        Self { max_workflow_tasks: 100, max_activities: 100, max_local_activities: 100, workflow_pollers: None, activity_pollers: None }
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| env::var(name).ok())
    }

    /// Reads from any lookup (the environment in production, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let parsed =
            |name: &'static str, default: &str| -> Result<String, ConfigError> { Ok(get(name).unwrap_or_else(|| default.to_owned())) };

        let fee_text = parsed("PLATFORM_FEE_PERCENT", "3")?;
        let platform_fee = Decimal::from_str(fee_text.trim())
            .map_err(|e| invalid("PLATFORM_FEE_PERCENT", e))
            .and_then(|pct| PlatformFee::new(pct).map_err(|e| invalid("PLATFORM_FEE_PERCENT", e)))?;
        let http_addr = parsed("HTTP_ADDR", "127.0.0.1:8080")?.parse().map_err(|e| invalid("HTTP_ADDR", e))?;
        let temporal_address = parsed("TEMPORAL_ADDRESS", "127.0.0.1:7233")?;
        if temporal_address.contains("://") {
            return Err(invalid("TEMPORAL_ADDRESS", "expected host:port, without a scheme"));
        }

        let eth_confirmations: u64 = parsed("ETH_CONFIRMATIONS", "1")?.trim().parse().map_err(|e| invalid("ETH_CONFIRMATIONS", e))?;
        if eth_confirmations == 0 {
            return Err(invalid("ETH_CONFIRMATIONS", "must be at least 1"));
        }
        let stuck_secs: u64 =
            parsed("TRANSFER_STUCK_AFTER_SECS", "180")?.trim().parse().map_err(|e| invalid("TRANSFER_STUCK_AFTER_SECS", e))?;

        let max_fee_per_gas_wei = gwei_to_wei(&parsed("MAX_FEE_GWEI", "200")?).map_err(|e| invalid("MAX_FEE_GWEI", e))?;

        Ok(Self {
            database_url: Secret::new(required("DATABASE_URL")?),
            temporal_address,
            temporal_namespace: parsed("TEMPORAL_NAMESPACE", "default")?,
            temporal_task_queue: parsed("TEMPORAL_TASK_QUEUE", "payouts")?,
            temporal_security: temporal_security(&get)?,
            eth_rpc_url: get("ETH_RPC_URL").map(Secret::new),
            host_wallet_private_key: get("HOST_WALLET_PRIVATE_KEY").map(Secret::new),
            usdt_contract: get("USDT_CONTRACT"),
            usdc_contract: get("USDC_CONTRACT"),
            changenow_api_url: get("CHANGENOW_API_URL").map(Secret::new),
            changenow_api_key: get("CHANGENOW_API_KEY").map(Secret::new),
            changenow_sender_addresses: ethereum_addresses("CHANGENOW_SENDER_ADDRESSES", get("CHANGENOW_SENDER_ADDRESSES"))?,
            nowpayments_ipn_secret: Secret::new(required("NOWPAYMENTS_IPN_SECRET")?),
            nowpayments_api_url: {
                let url = parsed("NOWPAYMENTS_API_URL", "https://api.nowpayments.io")?;
                url::Url::parse(url.trim())
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| invalid("NOWPAYMENTS_API_URL", format!("'{url}' is not an http(s) URL")))?;
                url.trim().trim_end_matches('/').to_owned()
            },
            nowpayments_api_key: get("NOWPAYMENTS_API_KEY").map(Secret::new),
            platform_fee,
            http_addr,
            eth_confirmations,
            eth_confirmations_forced: get("ETH_CONFIRMATIONS_FORCE").is_some_and(|v| v.trim() == "1"),
            transfer_stuck_after: Duration::from_secs(stuck_secs.max(1)),
            max_fee_per_gas_wei,
            fault_kill_after_broadcast: get("PAYOUT_FAULT_KILL_AFTER_BROADCAST").is_some_and(|v| v.trim() == "1"),
            admin_token: match get("ADMIN_TOKEN").filter(|t| !t.trim().is_empty()) {
                Some(token) if token.trim().chars().count() < MIN_ADMIN_TOKEN_CHARS => {
                    return Err(invalid(
                        "ADMIN_TOKEN",
                        format!(
                            "is {} characters; use at least {MIN_ADMIN_TOKEN_CHARS} random ones (e.g. `openssl rand -hex 32`)",
                            token.trim().chars().count()
                        ),
                    ))
                }
                token => token.map(Secret::new),
            },
            temporal_ui_url: parsed("TEMPORAL_UI_URL", "http://localhost:8233")?,
            worker_tuning: {
                let count = |name: &'static str, minimum: usize| -> Result<Option<usize>, ConfigError> {
                    match get(name) {
                        None => Ok(None),
                        Some(text) => text
                            .trim()
                            .parse::<usize>()
                            .ok()
                            .filter(|n| (minimum..=10_000).contains(n))
                            .map(Some)
                            .ok_or_else(|| invalid(name, format!("'{text}' is not a whole number between {minimum} and 10000"))),
                    }
                };
                let defaults = WorkerTuning::default();
                WorkerTuning {
                    max_workflow_tasks: count("WORKER_MAX_WORKFLOW_TASKS", 2)?.unwrap_or(defaults.max_workflow_tasks),
                    max_activities: count("WORKER_MAX_ACTIVITIES", 1)?.unwrap_or(defaults.max_activities),
                    max_local_activities: count("WORKER_MAX_LOCAL_ACTIVITIES", 1)?.unwrap_or(defaults.max_local_activities),
                    workflow_pollers: count("WORKER_WORKFLOW_POLLERS", 2)?,
                    activity_pollers: count("WORKER_ACTIVITY_POLLERS", 1)?,
                }
            },
            metrics_addr: match get("METRICS_ADDR") {
                None => None,
                Some(text) => Some(text.trim().parse().map_err(|e| invalid("METRICS_ADDR", format!("'{text}' is not host:port: {e}")))?),
            },
            alert_webhook_url: match get("ALERT_WEBHOOK_URL") {
                None => None,
                Some(text) => Some(
                    url::Url::parse(text.trim())
                        .ok()
                        .filter(|u| matches!(u.scheme(), "http" | "https"))
                        .map(|_| Secret::new(text.trim()))
                        .ok_or_else(|| invalid("ALERT_WEBHOOK_URL", format!("'{text}' is not an http(s) URL")))?,
                ),
            },
            payout_approval_above_usd: positive_usd(&get, "PAYOUT_APPROVAL_ABOVE_USD")?,
            client_daily_payout_limit_usd: positive_usd(&get, "CLIENT_DAILY_PAYOUT_LIMIT_USD")?,
            telegram: crate::telegram::TelegramConfig::from_lookup(&get)?,
        })
    }

    /// A setting only some binaries need (the worker needs the chain and ChangeNow; the
    /// webhook does not), with an error that names it.
    pub fn required<'a>(value: &'a Option<Secret>, name: &'static str) -> Result<&'a str, ConfigError> {
        value.as_ref().map(Secret::expose).ok_or(ConfigError::Missing(name))
    }
}

/// An optional positive USD amount; unset or empty: `None` (off).
fn positive_usd(get: &impl Fn(&'static str) -> Option<String>, name: &'static str) -> Result<Option<Decimal>, ConfigError> {
    match get(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(text) => Decimal::from_str(text.trim())
            .ok()
            .filter(|usd| *usd > Decimal::ZERO)
            .map(Some)
            .ok_or_else(|| invalid(name, format!("'{text}' is not a positive USD amount"))),
    }
}

fn temporal_security(get: &impl Fn(&'static str) -> Option<String>) -> Result<TemporalSecurity, ConfigError> {
    let pem = |name: &'static str| -> Result<Option<Vec<u8>>, ConfigError> {
        let Some(path) = get(name) else { return Ok(None) };
        let contents = std::fs::read(path.trim()).map_err(|e| invalid(name, format!("cannot read '{}': {e}", path.trim())))?;
        if !String::from_utf8_lossy(&contents).contains("-----BEGIN ") {
            return Err(invalid(name, format!("'{}' is not a PEM file", path.trim())));
        }
        Ok(Some(contents))
    };
    let server_ca_pem = pem("TEMPORAL_TLS_CA")?;
    let client_identity = match (pem("TEMPORAL_TLS_CERT")?, pem("TEMPORAL_TLS_KEY")?) {
        (Some(cert_pem), Some(key)) => {
            let key_pem = String::from_utf8(key).map_err(|_| invalid("TEMPORAL_TLS_KEY", "is not a text PEM file"))?;
            Some(ClientIdentity { cert_pem, key_pem: Secret::new(key_pem) })
        }
        (None, None) => None,
        (Some(_), None) => return Err(invalid("TEMPORAL_TLS_KEY", "must be set with TEMPORAL_TLS_CERT (the client certificate's key)")),
        (None, Some(_)) => return Err(invalid("TEMPORAL_TLS_CERT", "must be set with TEMPORAL_TLS_KEY (the key's certificate)")),
    };
    let server_name = get("TEMPORAL_TLS_SERVER_NAME").map(|name| name.trim().to_owned());
    let api_key = get("TEMPORAL_API_KEY").map(|key| Secret::new(key.trim()));
    let implied = server_ca_pem.is_some() || client_identity.is_some() || server_name.is_some() || api_key.is_some();
    let tls_on = match get("TEMPORAL_TLS").map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None => implied,
        Some("true" | "1") => true,
        Some("false" | "0") if implied => {
            return Err(invalid("TEMPORAL_TLS", "is false, but TEMPORAL_TLS_* or TEMPORAL_API_KEY is set (an API key needs TLS)"))
        }
        Some("false" | "0") => false,
        Some(other) => return Err(invalid("TEMPORAL_TLS", format!("'{other}' is neither true nor false"))),
    };
    let tls = tls_on.then_some(TemporalTls { server_ca_pem, client_identity, server_name });
    Ok(TemporalSecurity { tls, api_key })
}

/// `"1.5"` gwei -> 1,500,000,000 wei; positive and a whole number of wei.
fn gwei_to_wei(text: &str) -> Result<u128, String> {
    let gwei = Decimal::from_str(text.trim()).map_err(|e| format!("'{text}' is not a number of gwei: {e}"))?;
    let wei = gwei.checked_mul(Decimal::from(1_000_000_000u64)).ok_or_else(|| format!("{gwei} gwei is too large"))?;
    if wei <= Decimal::ZERO || !wei.fract().is_zero() {
        return Err(format!("{gwei} gwei must be above zero and a whole number of wei"));
    }
    rust_decimal::prelude::ToPrimitive::to_u128(&wei).ok_or_else(|| format!("{gwei} gwei is too large"))
}

/// The shortest `ADMIN_TOKEN` accepted: it opens every operator route, so it must not be guessable.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;
/// Ethereum mainnet (chain id 1) reorganises a block or two now and then: fewer confirmations than
/// this could credit or complete what a reorg takes back.
pub const MAINNET_MIN_CONFIRMATIONS: u64 = 12;

impl Config {
    /// Refuses `ETH_CONFIRMATIONS` below [`MAINNET_MIN_CONFIRMATIONS`] on mainnet unless forced;
    /// the worker checks it once it knows the chain id.
    pub fn check_confirmations_for_chain(&self, chain_id: u64) -> Result<(), ConfigError> {
        if chain_id == 1 && self.eth_confirmations < MAINNET_MIN_CONFIRMATIONS && !self.eth_confirmations_forced {
            return Err(invalid(
                "ETH_CONFIRMATIONS",
                format!(
                    "is {} on Ethereum mainnet (chain id 1); use at least {MAINNET_MIN_CONFIRMATIONS}, or set ETH_CONFIRMATIONS_FORCE=1",
                    self.eth_confirmations
                ),
            ));
        }
        Ok(())
    }
}

/// A comma-separated list of `0x` addresses; empty or absent: none.
fn ethereum_addresses(name: &'static str, text: Option<String>) -> Result<Vec<String>, ConfigError> {
    let text = text.unwrap_or_default();
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let hex = item.strip_prefix("0x").filter(|h| h.len() == 40 && h.chars().all(|c| c.is_ascii_hexdigit()));
            hex.map(|_| item.to_owned()).ok_or_else(|| invalid(name, format!("'{item}' is not an Ethereum address")))
        })
        .collect()
}

fn invalid(name: &'static str, reason: impl fmt::Display) -> ConfigError {
    ConfigError::Invalid { name, reason: reason.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporal_tls_and_api_key_come_from_files_named_in_the_environment() {
        let dir = std::env::temp_dir().join(format!("payout-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path.to_string_lossy().into_owned()
        };
        let (ca, cert, key) = (
            file("ca.pem", "-----BEGIN CERTIFICATE-----\nca\n"),
            file("client.pem", "-----BEGIN CERTIFICATE-----\nclient\n"),
            file("client.key", "-----BEGIN PRIVATE KEY-----\nkey\n"),
        );
        let not_pem = file("notes.txt", "hello");
        let config = |extra: &[(&str, &str)]| {
            let mut pairs: Vec<(&str, &str)> = MINIMAL.to_vec();
            pairs.extend_from_slice(extra);
            Config::from_lookup(lookup(&pairs))
        };

        assert_eq!(config(&[]).unwrap().temporal_security, TemporalSecurity::default(), "a dev server needs nothing");
        let mtls = config(&[("TEMPORAL_TLS_CA", &ca), ("TEMPORAL_TLS_CERT", &cert), ("TEMPORAL_TLS_KEY", &key)]).unwrap();
        let tls = mtls.temporal_security.tls.clone().expect("TLS is on with its files");
        assert_eq!(tls.server_ca_pem.as_deref(), Some(b"-----BEGIN CERTIFICATE-----\nca\n".as_slice()));
        assert_eq!(tls.client_identity.unwrap().key_pem.expose(), "-----BEGIN PRIVATE KEY-----\nkey\n");
        assert!(format!("{:?}", mtls.temporal_security).contains("Secret(***)"), "the key never reaches Debug output");

        let cloud = config(&[("TEMPORAL_API_KEY", "k-123")]).unwrap().temporal_security;
        assert_eq!((cloud.tls.is_some(), cloud.api_key.as_ref().map(Secret::expose)), (true, Some("k-123")), "an API key turns TLS on");
        assert!(config(&[("TEMPORAL_TLS", "true")]).unwrap().temporal_security.tls.is_some(), "TLS with the system's roots");

        for (extra, named) in [
            (vec![("TEMPORAL_TLS_CERT", cert.as_str())], "TEMPORAL_TLS_KEY"),
            (vec![("TEMPORAL_TLS_KEY", key.as_str())], "TEMPORAL_TLS_CERT"),
            (vec![("TEMPORAL_TLS_CA", "/no/such/ca.pem")], "TEMPORAL_TLS_CA"),
            (vec![("TEMPORAL_TLS_CA", not_pem.as_str())], "TEMPORAL_TLS_CA"),
            (vec![("TEMPORAL_TLS", "false"), ("TEMPORAL_API_KEY", "k")], "TEMPORAL_TLS"),
            (vec![("TEMPORAL_TLS", "maybe")], "TEMPORAL_TLS"),
        ] {
            let error = config(&extra).unwrap_err().to_string();
            assert!(error.contains(named), "{extra:?}: {error}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn worker_tuning_comes_from_the_environment_within_bounds() {
        let mut pairs = MINIMAL.to_vec();
        assert_eq!(Config::from_lookup(lookup(&pairs)).unwrap().worker_tuning, WorkerTuning::default());
        pairs.extend([("WORKER_MAX_ACTIVITIES", "8"), ("WORKER_WORKFLOW_POLLERS", "3")]);
        let tuning = Config::from_lookup(lookup(&pairs)).unwrap().worker_tuning;
        assert_eq!((tuning.max_activities, tuning.workflow_pollers, tuning.activity_pollers), (8, Some(3), None));
        for (name, bad) in [("WORKER_MAX_ACTIVITIES", "0"), ("WORKER_WORKFLOW_POLLERS", "1"), ("WORKER_MAX_WORKFLOW_TASKS", "lots")] {
            let mut pairs = MINIMAL.to_vec();
            pairs.push((name, bad));
            let error = Config::from_lookup(lookup(&pairs)).unwrap_err().to_string();
            assert!(error.contains(name), "{error}");
        }
    }
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    const MINIMAL: &[(&str, &str)] = &[("DATABASE_URL", "postgres://postgres@127.0.0.1/payouts"), ("NOWPAYMENTS_IPN_SECRET", "s3cret")];

    #[test]
    fn local_defaults_fill_the_rest() {
        let config = Config::from_lookup(lookup(MINIMAL)).unwrap();
        assert_eq!(config.temporal_task_queue, "payouts");
        assert_eq!(config.temporal_address, "127.0.0.1:7233");
        assert_eq!(config.platform_fee.percent(), Decimal::from(3));
    }

    #[test]
    fn names_the_missing_variable() {
        let err = Config::from_lookup(lookup(&[("DATABASE_URL", "postgres://x")])).unwrap_err();
        assert!(err.to_string().contains("NOWPAYMENTS_IPN_SECRET"), "{err}");
    }

    #[test]
    fn refuses_an_out_of_range_fee() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("PLATFORM_FEE_PERCENT", "100"));
        let err = Config::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(err.to_string().contains("PLATFORM_FEE_PERCENT"), "{err}");
        pairs.pop();
        pairs.push(("PLATFORM_FEE_PERCENT", "three"));
        assert!(Config::from_lookup(lookup(&pairs)).is_err());
    }

    #[test]
    fn the_daily_payout_limit_is_off_when_empty_and_refused_when_not_a_positive_amount() {
        let with = |value: &'static str| {
            let mut pairs = MINIMAL.to_vec();
            pairs.push(("CLIENT_DAILY_PAYOUT_LIMIT_USD", value));
            Config::from_lookup(lookup(&pairs))
        };
        assert_eq!(Config::from_lookup(lookup(MINIMAL)).unwrap().client_daily_payout_limit_usd, None);
        assert_eq!(with("").unwrap().client_daily_payout_limit_usd, None);
        assert_eq!(with(" 2500.50 ").unwrap().client_daily_payout_limit_usd, Some(Decimal::new(250050, 2)));
        for bad in ["0", "-10", "lots"] {
            let err = with(bad).unwrap_err().to_string();
            assert!(err.contains("CLIENT_DAILY_PAYOUT_LIMIT_USD"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_fee_ceiling_is_read_in_gwei_with_a_sane_default() {
        assert_eq!(Config::from_lookup(lookup(MINIMAL)).unwrap().max_fee_per_gas_wei, 200_000_000_000);
        let with = |value: &'static str| {
            let mut pairs = MINIMAL.to_vec();
            pairs.push(("MAX_FEE_GWEI", value));
            Config::from_lookup(lookup(&pairs))
        };
        assert_eq!(with("0.5").unwrap().max_fee_per_gas_wei, 500_000_000);
        for bad in ["0", "-3", "lots", "0.0000000001"] {
            let err = with(bad).unwrap_err();
            assert!(err.to_string().contains("MAX_FEE_GWEI"), "{bad}: {err}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("NOWPAYMENTS_API_KEY", "np-k3y"));
        let config = Config::from_lookup(lookup(&pairs)).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret") && !printed.contains("postgres://") && !printed.contains("np-k3y"), "{printed}");
        let client = crate::nowpayments::NowPaymentsClient::new(&config.nowpayments_api_url, "np-k3y", Duration::from_secs(1)).unwrap();
        assert!(!format!("{client:?}").contains("np-k3y"));
    }

    #[test]
    fn a_short_admin_token_is_refused_naming_the_variable() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("ADMIN_TOKEN", "letmein"));
        let err = Config::from_lookup(lookup(&pairs)).unwrap_err().to_string();
        assert!(err.contains("ADMIN_TOKEN") && err.contains("7 characters") && !err.contains("letmein"), "{err}");
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("ADMIN_TOKEN", "0123456789abcdef0123456789abcdef"));
        assert!(Config::from_lookup(lookup(&pairs)).unwrap().admin_token.is_some());
    }

    #[test]
    fn mainnet_needs_twelve_confirmations_unless_forced() {
        let mut config = Config::from_lookup(lookup(MINIMAL)).unwrap();
        assert!(config.check_confirmations_for_chain(31337).is_ok(), "one suits anvil");
        let err = config.check_confirmations_for_chain(1).unwrap_err().to_string();
        assert!(err.contains("ETH_CONFIRMATIONS") && err.contains("ETH_CONFIRMATIONS_FORCE"), "{err}");
        config.eth_confirmations = 12;
        assert!(config.check_confirmations_for_chain(1).is_ok());
        config.eth_confirmations = 3;
        config.eth_confirmations_forced = true;
        assert!(config.check_confirmations_for_chain(1).is_ok());
    }

    #[test]
    fn changenow_senders_are_a_list_of_addresses() {
        assert!(Config::from_lookup(lookup(MINIMAL)).unwrap().changenow_sender_addresses.is_empty());
        let mut pairs = MINIMAL.to_vec();
        pairs
            .push(("CHANGENOW_SENDER_ADDRESSES", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8, 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"));
        assert_eq!(Config::from_lookup(lookup(&pairs)).unwrap().changenow_sender_addresses.len(), 2);
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("CHANGENOW_SENDER_ADDRESSES", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8,changenow"));
        let err = Config::from_lookup(lookup(&pairs)).unwrap_err().to_string();
        assert!(err.contains("CHANGENOW_SENDER_ADDRESSES") && err.contains("'changenow'"), "{err}");
    }

    #[test]
    fn nowpayments_defaults_to_its_api_and_refuses_a_non_url() {
        assert_eq!(Config::from_lookup(lookup(MINIMAL)).unwrap().nowpayments_api_url, "https://api.nowpayments.io");
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("NOWPAYMENTS_API_URL", "api.nowpayments.io"));
        let err = Config::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(err.to_string().contains("NOWPAYMENTS_API_URL"), "{err}");
    }
}
