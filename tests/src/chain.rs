//! A private chain per test: its own anvil on a free port, the test USDT deployed and minted,
//! and the ChangeNow simulator in-process, watching that chain. Tests that switch automine off
//! or count transactions cannot disturb one another.

use alloy::{
    primitives::{Address, U256},
    providers::{Provider, ProviderBuilder},
};
use changenow_simulator::{
    chain_setup::{deploy_test_token, deploy_test_usdt, mint_test_usdt},
    config::SimulatorConfig,
    RunningSimulator,
};
use serde_json::{json, Value};
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// anvil's first dev account: the hot wallet of every local chain.
pub const HOT_WALLET_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
pub const HOT_WALLET: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
pub const HOT_WALLET_USDT_UNITS: u128 = 100_000 * 1_000_000;
pub const TREASURY_USDT_UNITS: u128 = 1_000_000 * 1_000_000;

/// The outbox of a test's own wallet: one confirmation, stuck after 10 minutes (so nothing is
/// replaced unless a test says so), at most 200 gwei per gas.
pub fn test_outbox_settings() -> activities::ethereum::OutboxSettings {
    activities::ethereum::OutboxSettings {
        confirmations: 1,
        stuck_after: Duration::from_secs(600),
        max_fee_per_gas: 200_000_000_000,
        abandon_unsent_after: activities::ethereum::OutboxSettings::ABANDON_UNSENT_AFTER,
    }
}

pub struct Anvil {
    child: Child,
    pub url: String,
}

impl Anvil {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// An anvil that reports `chain_id` (same dev accounts), to stand in for a real network.
    pub async fn start_on_chain(chain_id: u64) -> Self {
        Self::start_with(&["--chain-id", &chain_id.to_string()]).await
    }

    /// Another chain with the same chain id and dev accounts: its genesis block is stamped
    /// `timestamp`, so its hash differs from every other anvil's (two started in one second
    /// would share a genesis block).
    pub async fn start_with_genesis_timestamp(timestamp: u64) -> Self {
        Self::start_with(&["--timestamp", &timestamp.to_string()]).await
    }

    async fn start_with(extra_args: &[&str]) -> Self {
        // A port handed out by `free_port` can still be taken before anvil binds it (by another
        // test's server or an outgoing connection); anvil then exits at once. Try a few.
        for _ in 0..5 {
            let port = crate::free_port();
            let mut child = Command::new("anvil")
                .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--silent"])
                .args(extra_args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("anvil must be on PATH (make test installs it)");
            let url = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(20);
            while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                assert!(Instant::now() < deadline, "anvil did not start");
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Something answers: make sure it is this anvil, not another process on the port.
            tokio::time::sleep(Duration::from_millis(200)).await;
            if child.try_wait().ok().flatten().is_none() {
                return Self { child, url };
            }
        }
        panic!("anvil could not bind a free port in 5 attempts");
    }

    /// A raw JSON-RPC call (`evm_setAutomine`, `evm_mine`, ...).
    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let answer: Value = reqwest::Client::new().post(&self.url).json(&body).send().await.unwrap().json().await.unwrap();
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    pub async fn balance(&self, address: Address) -> U256 {
        ProviderBuilder::new().connect_http(self.url.parse().unwrap()).get_balance(address).await.unwrap()
    }

    pub async fn transaction_count(&self, address: Address) -> u64 {
        ProviderBuilder::new().connect_http(self.url.parse().unwrap()).get_transaction_count(address).await.unwrap()
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct TestChain {
    pub anvil: Anvil,
    pub usdt: Address,
    /// The test USDC (the same token contract, deployed once more).
    pub usdc: Address,
    pub simulator: RunningSimulator,
    pub changenow_api_key: String,
}

impl TestChain {
    pub async fn start(changenow_api_key: &str) -> Self {
        let anvil = Anvil::start().await;
        let (usdt, _) = deploy_test_usdt(&anvil.url).await.expect("cannot deploy the test USDT");
        let hot_wallet: Address = HOT_WALLET.parse().unwrap();
        mint_test_usdt(&anvil.url, usdt, hot_wallet, HOT_WALLET_USDT_UNITS).await.expect("mint");
        let (usdc, _) = deploy_test_token(&anvil.url, None).await.expect("cannot deploy the test USDC");
        mint_test_usdt(&anvil.url, usdc, hot_wallet, HOT_WALLET_USDT_UNITS).await.expect("mint");
        let mut config = SimulatorConfig::local(&anvil.url, Some(usdt), changenow_api_key);
        config.usdc_contract = Some(usdc);
        let treasury = config.treasury_key.parse::<alloy::signers::local::PrivateKeySigner>().expect("key").address();
        mint_test_usdt(&anvil.url, usdt, treasury, TREASURY_USDT_UNITS).await.expect("mint");
        mint_test_usdt(&anvil.url, usdc, treasury, TREASURY_USDT_UNITS).await.expect("mint");
        let simulator = changenow_simulator::spawn(config, "127.0.0.1:0".parse().unwrap()).await.expect("simulator did not start");
        Self { anvil, usdt, usdc, simulator, changenow_api_key: changenow_api_key.to_owned() }
    }

    pub fn changenow_url(&self) -> String {
        self.simulator.base_url()
    }

    /// `POST /sim/...` on the simulator.
    pub async fn control(&self, path: &str, body: Value) {
        let response =
            reqwest::Client::new().post(format!("{}{path}", self.changenow_url())).json(&body).send().await.expect("simulator unreachable");
        assert!(response.status().is_success(), "{path}: {}", response.status());
    }

    /// Back to no injected faults and no address rules.
    pub async fn reset_faults(&self) {
        let response =
            reqwest::Client::new().delete(format!("{}/sim/faults", self.changenow_url())).send().await.expect("simulator unreachable");
        assert!(response.status().is_success());
    }

    /// Every exchange the simulator has created.
    pub async fn exchanges(&self) -> Vec<Value> {
        reqwest::get(format!("{}/sim/exchanges", self.changenow_url())).await.unwrap().json().await.unwrap()
    }

    pub async fn usdt_balance(&self, owner: Address) -> U256 {
        self.token_balance(self.usdt, owner).await
    }

    pub async fn usdc_balance(&self, owner: Address) -> U256 {
        self.token_balance(self.usdc, owner).await
    }

    async fn token_balance(&self, token: Address, owner: Address) -> U256 {
        let provider = alloy::providers::RootProvider::new_http(self.anvil.url.parse().unwrap());
        activities::ethereum::balance_of(&provider, activities::ethereum::Asset::Erc20(token), owner).await.expect("balanceOf")
    }
}

/// Polls the outbox (10 s at most) until `purpose_key` is confirmed; returns the hash that landed.
pub async fn wait_confirmed(wallet: &activities::ethereum::HotWallet, purpose_key: &str) -> String {
    for _ in 0..100 {
        if let activities::ethereum::TransferState::Confirmed { tx_hash, .. } = wallet.check(purpose_key).await.unwrap() {
            return tx_hash;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{purpose_key} was never confirmed");
}
