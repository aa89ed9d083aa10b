//! `changenow-simulator`: ChangeNow's v2 API over the local chain, for development and demos.
//!
//!   changenow-simulator serve          serve at CHANGENOW_API_URL (the default command)
//!   changenow-simulator setup-chain    deploy the test USDT and USDC, fund the wallets, write USDT_CONTRACT and USDC_CONTRACT

use anyhow::Context;
use changenow_simulator::{
    chain_setup::{deploy_test_token, deploy_test_usdt, env_value, mint_test_usdt, set_env_var},
    config::SimulatorConfig,
};
use clap::{Parser, Subcommand};
use std::{path::PathBuf, str::FromStr};
use tracing::info;

#[derive(Parser)]
#[command(about = "ChangeNow API v2 simulator over a local chain")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API at CHANGENOW_API_URL.
    Serve,
    /// Deploy the test USDT on the local chain (once), mint it to the hot wallet and the
    /// simulator's treasury, and write its address to the env file as USDT_CONTRACT.
    SetupChain {
        #[arg(long, default_value = ".env")]
        env_file: PathBuf,
    },
}

/// Minted on first deployment: 1,000,000 USDT to the hot wallet, 10,000,000 to the treasury.
const HOT_WALLET_USDT_UNITS: u128 = 1_000_000 * 1_000_000;
const TREASURY_USDT_UNITS: u128 = 10_000_000 * 1_000_000;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    dotenvy::dotenv().ok();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::SetupChain { env_file } => setup_chain(env_file).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    let (config, listen) = SimulatorConfig::from_env(|name| std::env::var(name).ok())?;
    let running = changenow_simulator::spawn(config, listen).await.context("cannot start the simulator")?;
    info!("ChangeNow simulator listening on {} (overview at /)", running.base_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}

async fn setup_chain(env_file: PathBuf) -> anyhow::Result<()> {
    let rpc_url = std::env::var("ETH_RPC_URL").context("ETH_RPC_URL is required")?;
    let hot_wallet_key = std::env::var("HOST_WALLET_PRIVATE_KEY").context("HOST_WALLET_PRIVATE_KEY is required")?;
    let treasury_key =
        std::env::var("SIMULATOR_TREASURY_KEY").unwrap_or_else(|_| changenow_simulator::config::ANVIL_TREASURY_KEY.to_owned());
    let hot_wallet = alloy::signers::local::PrivateKeySigner::from_str(hot_wallet_key.trim())
        .context("HOST_WALLET_PRIVATE_KEY is not a valid key")?
        .address();
    let treasury = alloy::signers::local::PrivateKeySigner::from_str(treasury_key.trim())
        .context("SIMULATOR_TREASURY_KEY is not a valid key")?
        .address();

    let (usdt, deployed_now) = deploy_test_usdt(&rpc_url).await.context("cannot deploy the test USDT")?;
    if deployed_now {
        mint_test_usdt(&rpc_url, usdt, hot_wallet, HOT_WALLET_USDT_UNITS).await?;
        mint_test_usdt(&rpc_url, usdt, treasury, TREASURY_USDT_UNITS).await?;
        info!(%usdt, %hot_wallet, %treasury, "test USDT deployed and minted");
    } else {
        info!(%usdt, "test USDT already deployed");
    }
    let contents = std::fs::read_to_string(&env_file).unwrap_or_default();
    let contents = set_env_var(&contents, "USDT_CONTRACT", &usdt.to_checksum(None));

    // The alternative settlement stablecoin: one more instance of the same token.
    let known_usdc = env_value(&contents, "USDC_CONTRACT").and_then(|text| alloy::primitives::Address::from_str(&text).ok());
    let (usdc, deployed_now) = deploy_test_token(&rpc_url, known_usdc).await.context("cannot deploy the test USDC")?;
    if deployed_now {
        mint_test_usdt(&rpc_url, usdc, hot_wallet, HOT_WALLET_USDT_UNITS).await?;
        mint_test_usdt(&rpc_url, usdc, treasury, TREASURY_USDT_UNITS).await?;
        info!(%usdc, %hot_wallet, %treasury, "test USDC deployed and minted");
    }
    let contents = set_env_var(&contents, "USDC_CONTRACT", &usdc.to_checksum(None));
    std::fs::write(&env_file, contents).with_context(|| format!("cannot write {}", env_file.display()))?;
    println!("USDT_CONTRACT={}", usdt.to_checksum(None));
    println!("USDC_CONTRACT={}", usdc.to_checksum(None));
    Ok(())
}
