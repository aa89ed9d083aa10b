//! `make soak` (`SEED`, `PAYMENTS`, `CLIENTS`): the seeded chaos soak; see
//! `integration_tests::soak`. Prints the fault plan, then the table; exits 1 on any violation.

use clap::Parser;
use integration_tests::soak::{self, SoakOptions};

#[derive(Parser)]
#[command(about = "Seeded chaos soak: two workers, restarts of everything, every invariant checked")]
struct Args {
    #[arg(long, env = "SEED", default_value_t = 1)]
    seed: u64,
    #[arg(long, env = "PAYMENTS", default_value_t = 1000)]
    payments: usize,
    #[arg(long, env = "CLIENTS", default_value_t = 50)]
    clients: usize,
    /// The short variant's fault budget and timings (what `make test` runs).
    #[arg(long)]
    short: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let args = Args::parse();
    let options = match args.short {
        true => SoakOptions::short(args.seed, args.payments, args.clients),
        false => SoakOptions::full(args.seed, args.payments, args.clients),
    };
    match soak::run(options).await {
        Ok(report) => {
            println!("{}", report.table);
            if report.violations.is_empty() {
                println!("soak passed: no violations in {:.0}s", report.elapsed.as_secs_f64());
                std::process::ExitCode::SUCCESS
            } else {
                println!("soak FAILED: {} violations", report.violations.len());
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("soak could not run: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
