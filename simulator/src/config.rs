//! The simulator's configuration, from the environment (and `.env`): the project's own
//! variables (`ETH_RPC_URL`, `USDT_CONTRACT`, `CHANGENOW_API_URL`, `CHANGENOW_API_KEY`) and a few
//! of its own, all optional, for demos that want other prices or a slower exchange.

use crate::market::Market;
use alloy::primitives::Address;
use rust_decimal::Decimal;
use std::{net::SocketAddr, str::FromStr, time::Duration};

/// anvil's second dev account (public knowledge; local chains only): the simulator's treasury.
pub const ANVIL_TREASURY_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

/// The sandbox's NOWPayments API key when `NOWPAYMENTS_API_KEY` is not set (as in .env.example).
pub const LOCAL_NOWPAYMENTS_API_KEY: &str = "local-nowpayments-key";

/// The IPN secret when `NOWPAYMENTS_IPN_SECRET` is not set (as in .env.example).
pub const LOCAL_IPN_SECRET: &str = "local-ipn-secret";

/// The sandbox's bot token when `TELEGRAM_BOT_TOKEN` is not set (as in .env.example; local only).
pub const LOCAL_TELEGRAM_BOT_TOKEN: &str = "7000000001:sandbox-local-bot-token";

/// The sandbox bot's username when `TELEGRAM_BOT_USERNAME` is not set.
pub const LOCAL_TELEGRAM_BOT_USERNAME: &str = "payout_sandbox_bot";

/// anvil's first dev account: the hot wallet of a local chain, where NOWPayments' outcomes go
/// unless told otherwise.
pub const ANVIL_HOT_WALLET: Address = alloy::primitives::address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266");

#[derive(Debug, thiserror::Error)]
pub enum SimulatorConfigError {
    #[error("environment variable {0} is required but not set (see .env.example)")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

#[derive(Clone)]
pub struct SimulatorConfig {
    pub rpc_url: String,
    pub treasury_key: String,
    pub usdt_contract: Option<Address>,
    /// The test USDC, the alternative settlement stablecoin (`USDC_CONTRACT`).
    pub usdc_contract: Option<Address>,
    pub api_key: String,
    /// `NOWPAYMENTS_API_KEY`: what the NOWPayments face expects in `x-api-key`.
    pub nowpayments_api_key: String,
    /// `NOWPAYMENTS_IPN_SECRET`: what the IPNs are signed with.
    pub nowpayments_ipn_secret: String,
    /// `NOWPAYMENTS_OUTCOME_ADDRESS` (default: the address of `HOST_WALLET_PRIVATE_KEY`): where
    /// a finished payment's outcome is forwarded, as NOWPayments pays out to the merchant.
    pub nowpayments_outcome_address: Address,
    /// `SIMULATOR_STATE_FILE`: where NOWPayments' records are kept across restarts (none: in
    /// memory only).
    pub state_file: Option<std::path::PathBuf>,
    /// `TELEGRAM_BOT_TOKEN`: the token the Bot API answers to and signs logins with.
    pub telegram_bot_token: String,
    /// `TELEGRAM_BOT_USERNAME`: the bot's `getMe` username.
    pub telegram_bot_username: String,
    /// Time between two statuses of an exchange.
    pub step_delay: Duration,
    pub market: Market,
}

impl std::fmt::Debug for SimulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorConfig")
            .field("usdt_contract", &self.usdt_contract)
            .field("usdc_contract", &self.usdc_contract)
            .field("nowpayments_outcome_address", &self.nowpayments_outcome_address)
            .field("step_delay", &self.step_delay)
            .field("market", &self.market)
            .finish_non_exhaustive()
    }
}

impl SimulatorConfig {
    /// For tests and embedding: the local defaults against `rpc_url`.
    pub fn local(rpc_url: &str, usdt_contract: Option<Address>, api_key: &str) -> Self {
        Self {
            rpc_url: rpc_url.to_owned(),
            treasury_key: ANVIL_TREASURY_KEY.to_owned(),
            usdt_contract,
            usdc_contract: None,
            api_key: api_key.to_owned(),
            nowpayments_api_key: LOCAL_NOWPAYMENTS_API_KEY.to_owned(),
            nowpayments_ipn_secret: LOCAL_IPN_SECRET.to_owned(),
            nowpayments_outcome_address: ANVIL_HOT_WALLET,
            state_file: None,
            telegram_bot_token: LOCAL_TELEGRAM_BOT_TOKEN.to_owned(),
            telegram_bot_username: LOCAL_TELEGRAM_BOT_USERNAME.to_owned(),
            step_delay: Duration::from_millis(200),
            market: Market::default(),
        }
    }

    /// Reads the configuration and the address to listen on (the host:port of `CHANGENOW_API_URL`).
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<(Self, SocketAddr), SimulatorConfigError> {
        use SimulatorConfigError::{Invalid, Missing};
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(Missing(name));
        let decimal = |name: &'static str, default: &str| -> Result<Decimal, SimulatorConfigError> {
            let text = get(name).unwrap_or_else(|| default.to_owned());
            Decimal::from_str(text.trim()).map_err(|e| Invalid { name, reason: e.to_string() })
        };

        let api_url = required("CHANGENOW_API_URL")?;
        let listen = api_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse::<SocketAddr>()
            .map_err(|_| Invalid { name: "CHANGENOW_API_URL", reason: format!("'{api_url}' is not http://ip:port") })?;
        let usdt_contract = get("USDT_CONTRACT")
            .map(|text| Address::from_str(text.trim()).map_err(|_| Invalid { name: "USDT_CONTRACT", reason: text }))
            .transpose()?;
        let usdc_contract = get("USDC_CONTRACT")
            .map(|text| Address::from_str(text.trim()).map_err(|_| Invalid { name: "USDC_CONTRACT", reason: text }))
            .transpose()?;
        let step_ms: u64 = get("SIMULATOR_STEP_DELAY_MS")
            .unwrap_or_else(|| "1000".into())
            .trim()
            .parse()
            .map_err(|e| Invalid { name: "SIMULATOR_STEP_DELAY_MS", reason: format!("{e}") })?;

        let outcome_address = match (get("NOWPAYMENTS_OUTCOME_ADDRESS"), get("HOST_WALLET_PRIVATE_KEY")) {
            (Some(text), _) => Address::from_str(text.trim())
                .map_err(|_| Invalid { name: "NOWPAYMENTS_OUTCOME_ADDRESS", reason: format!("'{text}' is not an address") })?,
            (None, Some(key)) => alloy::signers::local::PrivateKeySigner::from_str(key.trim())
                .map_err(|_| Invalid { name: "HOST_WALLET_PRIVATE_KEY", reason: "not a valid secp256k1 key".into() })?
                .address(),
            (None, None) => ANVIL_HOT_WALLET,
        };

        let mut market = Market::default();
        market.fee_percent = decimal("SIMULATOR_FEE_PERCENT", "0.5")?;
        market.min_usd = decimal("SIMULATOR_MIN_USD", "5")?;
        market.max_usd = get("SIMULATOR_MAX_USD").map(|_| decimal("SIMULATOR_MAX_USD", "0")).transpose()?;
        if let Some(prices) = get("SIMULATOR_PRICES_USD") {
            for entry in prices.split(',') {
                let (coin, price) = entry
                    .split_once('=')
                    .ok_or_else(|| Invalid { name: "SIMULATOR_PRICES_USD", reason: format!("'{entry}' is not coin=price") })?;
                let price = Decimal::from_str(price.trim()).map_err(|e| Invalid { name: "SIMULATOR_PRICES_USD", reason: e.to_string() })?;
                market.usd_prices.insert(coin.trim().to_ascii_lowercase(), price);
            }
        }
        if market.fee_percent.is_sign_negative() || market.fee_percent >= Decimal::ONE_HUNDRED {
            return Err(Invalid { name: "SIMULATOR_FEE_PERCENT", reason: "must be in [0, 100)".into() });
        }

        let config = Self {
            rpc_url: required("ETH_RPC_URL")?,
            treasury_key: get("SIMULATOR_TREASURY_KEY").unwrap_or_else(|| ANVIL_TREASURY_KEY.to_owned()),
            usdt_contract,
            usdc_contract,
            api_key: required("CHANGENOW_API_KEY")?,
            nowpayments_api_key: get("NOWPAYMENTS_API_KEY").unwrap_or_else(|| LOCAL_NOWPAYMENTS_API_KEY.to_owned()),
            nowpayments_ipn_secret: get("NOWPAYMENTS_IPN_SECRET").unwrap_or_else(|| LOCAL_IPN_SECRET.to_owned()),
            nowpayments_outcome_address: outcome_address,
            state_file: get("SIMULATOR_STATE_FILE").map(|p| std::path::PathBuf::from(p.trim())),
            telegram_bot_token: get("TELEGRAM_BOT_TOKEN").unwrap_or_else(|| LOCAL_TELEGRAM_BOT_TOKEN.to_owned()),
            telegram_bot_username: get("TELEGRAM_BOT_USERNAME").unwrap_or_else(|| LOCAL_TELEGRAM_BOT_USERNAME.to_owned()),
            step_delay: Duration::from_millis(step_ms),
            market,
        };
        Ok((config, listen))
    }
}
