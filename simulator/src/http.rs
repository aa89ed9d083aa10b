//! The HTTP face: ChangeNow's v2 endpoints (API key checked, faults applied), the `/sim/*`
//! controls for tests and demos, and a small overview page at `/`.

use crate::{
    exchange::{Exchange, NewExchange},
    faults::{AddressRule, Endpoint, Faults, Outcome},
    market::{address_is_valid, MarketError},
    Simulator,
};
use activities::changenow::api::{
    CreateExchangeRequest, CreateExchangeResponse, ErrorResponse, EstimateResponse, ExchangeStatusResponse, Flow, RangeResponse,
    API_KEY_HEADER, ESTIMATE_PATH, EXCHANGE_PATH, RANGE_PATH, STATUS_PATH,
};
use alloy::primitives::Address;
use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tracing::info;
use workflows::domain::ExchangePair;

type Shared = State<Arc<Simulator>>;

pub fn router(simulator: Arc<Simulator>) -> Router {
    Router::new()
        .route(RANGE_PATH, get(range))
        .route(ESTIMATE_PATH, get(estimate))
        .route(EXCHANGE_PATH, post(create_exchange))
        .route(STATUS_PATH, get(exchange_status))
        .route("/sim/exchanges", get(list_exchanges))
        .route("/sim/exchanges/{id}/outcome", post(force_outcome))
        .route("/sim/faults", get(show_faults).post(set_faults).delete(clear_faults))
        .route("/sim/rules", post(add_rule))
        .route("/sim/market", get(show_market).post(set_market))
        .route("/sim/prices", post(set_prices))
        .route("/", get(overview))
        .merge(crate::nowpayments_http::router())
        .merge(crate::telegram_http::router())
        .with_state(simulator)
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(ErrorResponse { error: code.to_owned(), message: Some(message.into()) })).into_response()
}

/// API key, injected delay and injected failure, in that order.
async fn gate(simulator: &Simulator, headers: &HeaderMap, endpoint: Endpoint) -> Result<(), Response> {
    let key = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok());
    if key != Some(simulator.config.api_key.as_str()) {
        return Err(error(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid api key"));
    }
    let (delay, failure) = {
        let mut faults = simulator.faults_lock();
        (faults.delay_ms, faults.take_failure(endpoint))
    };
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    if let Some(status) = failure {
        info!(?endpoint, status, "injected failure");
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return Err(error(status, "internal_error", "injected by the simulator"));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PairQuery {
    from_currency: String,
    to_currency: String,
    from_network: Option<String>,
    to_network: Option<String>,
    from_amount: Option<String>,
    #[serde(default)]
    flow: Option<Flow>,
    #[serde(default)]
    use_rate_id: Option<bool>,
}

impl PairQuery {
    fn pair(&self) -> ExchangePair {
        let from = self.from_currency.to_ascii_lowercase();
        let to = self.to_currency.to_ascii_lowercase();
        let from_network = self.from_network.clone().unwrap_or_else(|| from.clone());
        let to_network = self.to_network.clone().unwrap_or_else(|| to.clone());
        ExchangePair::new((&from, &from_network), (&to, &to_network))
    }
}

fn market_error(e: MarketError) -> Response {
    error(StatusCode::BAD_REQUEST, "pair_is_inactive", e.to_string())
}

async fn range(State(sim): Shared, headers: HeaderMap, Query(q): Query<PairQuery>) -> Response {
    if let Err(r) = gate(&sim, &headers, Endpoint::Range).await {
        return r;
    }
    let pair = q.pair();
    let market = sim.market();
    if let Err(e) = market.price(&pair.to_currency) {
        return market_error(e);
    }
    match market.range(&pair.from_currency) {
        Ok((min_amount, max_amount)) => Json(RangeResponse { min_amount, max_amount }).into_response(),
        Err(e) => market_error(e),
    }
}

async fn estimate(State(sim): Shared, headers: HeaderMap, Query(q): Query<PairQuery>) -> Response {
    if let Err(r) = gate(&sim, &headers, Endpoint::Estimate).await {
        return r;
    }
    let pair = q.pair();
    let Some(from_amount) = q.from_amount.as_deref().and_then(activities::changenow::amount::parse) else {
        return error(StatusCode::BAD_REQUEST, "bad_params", "fromAmount is required and must be a number");
    };
    let to_amount = match sim.market().quote(&pair.from_currency, &pair.to_currency, from_amount) {
        Ok(amount) => amount,
        Err(e) => return market_error(e),
    };
    let fixed = q.flow == Some(Flow::FixedRate) && q.use_rate_id == Some(true);
    Json(EstimateResponse {
        from_amount,
        to_amount,
        rate_id: fixed.then(|| uuid::Uuid::new_v4().simple().to_string()),
        valid_until: fixed.then(|| (chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339()),
    })
    .into_response()
}

async fn create_exchange(State(sim): Shared, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = gate(&sim, &headers, Endpoint::CreateExchange).await {
        return r;
    }
    let order: CreateExchangeRequest = match serde_json::from_slice(&body) {
        Ok(order) => order,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_params", e.to_string()),
    };
    let pair = ExchangePair::new((&order.from_currency, &order.from_network), (&order.to_currency, &order.to_network));
    let rule = sim.faults_lock().rule_for(&order.address);
    if rule == Some(AddressRule::Reject) || !address_is_valid(&pair.to_network, &order.address) {
        return error(StatusCode::BAD_REQUEST, "not_valid_address", format!("Invalid withdrawal address {}", order.address));
    }
    let market = sim.market();
    let (min, max) = match market.range(&pair.from_currency) {
        Ok(range) => range,
        Err(e) => return market_error(e),
    };
    if order.from_amount < min || max.is_some_and(|max| order.from_amount > max) {
        return error(StatusCode::BAD_REQUEST, "out_of_range", format!("Amount is out of range: min {min}"));
    }
    let expected_to = match market.quote(&pair.from_currency, &pair.to_currency, order.from_amount) {
        Ok(amount) => amount,
        Err(e) => return market_error(e),
    };
    let id = uuid::Uuid::new_v4().simple().to_string()[..14].to_owned();
    let payin_address = Address::from_slice(&uuid_bytes20());
    let start = NewExchange {
        id: id.clone(),
        pair: pair.clone(),
        expected_amount_from: order.from_amount,
        expected_amount_to: expected_to,
        payin_address,
        payout_address: order.address.clone(),
        refund_address: order.refund_address.clone(),
        forced_outcome: match rule {
            Some(AddressRule::Outcome(outcome)) => Some(outcome),
            _ => None,
        },
    };
    let exchange = Exchange::new(start, sim.config.step_delay);
    sim.exchanges_lock().insert(id.clone(), exchange);
    info!(exchange_id = %id, %pair, from_amount = %order.from_amount, payin = %payin_address, "exchange created");
    Json(CreateExchangeResponse {
        id,
        payin_address: payin_address.to_checksum(None),
        payout_address: order.address,
        from_amount: order.from_amount,
        to_amount: Some(expected_to),
    })
    .into_response()
}

/// A fresh address nobody holds a key for: deposits to it stay there, as ChangeNow's would
/// from our point of view.
pub(crate) fn uuid_bytes20() -> [u8; 20] {
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let mut out = [0u8; 20];
    out[..16].copy_from_slice(a.as_bytes());
    out[16..].copy_from_slice(&b.as_bytes()[..4]);
    out
}

#[derive(Debug, Deserialize)]
struct IdQuery {
    id: String,
}

async fn exchange_status(State(sim): Shared, headers: HeaderMap, Query(q): Query<IdQuery>) -> Response {
    if let Err(r) = gate(&sim, &headers, Endpoint::Status).await {
        return r;
    }
    match sim.with_exchange(&q.id, |x| x.to_response()) {
        Some(status) => Json::<ExchangeStatusResponse>(status).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", format!("Exchange {} not found", q.id)),
    }
}

async fn list_exchanges(State(sim): Shared) -> Json<Vec<Exchange>> {
    Json(sim.exchanges())
}

/// `{"outcome": "failed" | "refunded" | "stall"}`, or `{"outcome": null}` to let the exchange
/// finish normally again (e.g. a stalled one). With `"refund_hash"`, a forced refund is only
/// reported, naming that transaction, and never sent: a lying ChangeNow.
#[derive(Debug, Deserialize)]
struct OutcomeBody {
    outcome: Option<Outcome>,
    #[serde(default)]
    refund_hash: Option<String>,
}

async fn force_outcome(State(sim): Shared, Path(id): Path<String>, Json(body): Json<OutcomeBody>) -> Response {
    let forced = |x: &mut Exchange| {
        x.forced_outcome = body.outcome;
        x.reported_refund_hash = body.refund_hash.clone();
    };
    match sim.with_exchange(&id, forced) {
        Some(()) => StatusCode::NO_CONTENT.into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", format!("Exchange {id} not found")),
    }
}

async fn show_faults(State(sim): Shared) -> Json<Faults> {
    Json(sim.faults_lock().clone())
}

/// Replaces the global faults (failures, status, delay); address rules are kept.
async fn set_faults(State(sim): Shared, Json(update): Json<Faults>) -> StatusCode {
    let mut faults = sim.faults_lock();
    faults.fail_next = update.fail_next;
    faults.http_status = update.http_status;
    faults.delay_ms = update.delay_ms;
    faults.address_rules.extend(update.address_rules);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(sim): Shared) -> StatusCode {
    *sim.faults_lock() = Faults::default();
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct RuleBody {
    payout_address: String,
    rule: AddressRule,
}

async fn add_rule(State(sim): Shared, Json(body): Json<RuleBody>) -> StatusCode {
    sim.faults_lock().address_rules.insert(body.payout_address.to_ascii_lowercase(), body.rule);
    StatusCode::NO_CONTENT
}

#[derive(Debug, Serialize)]
struct MarketView {
    usd_prices: std::collections::BTreeMap<String, Decimal>,
    fee_percent: Decimal,
    min_usd: Decimal,
    max_usd: Option<Decimal>,
}

async fn show_market(State(sim): Shared) -> Json<MarketView> {
    let m = sim.market();
    Json(MarketView { usd_prices: m.usd_prices, fee_percent: m.fee_percent, min_usd: m.min_usd, max_usd: m.max_usd })
}

/// Changes ChangeNow's range at run time, e.g. a minimum raised while a batch is in flight.
/// Absent fields are kept; `"max_usd": null` is absent too (no way to drop a maximum but a
/// restart, which is fine for a simulator).
#[derive(Debug, Deserialize)]
struct MarketUpdate {
    #[serde(default)]
    min_usd: Option<Decimal>,
    #[serde(default)]
    max_usd: Option<Decimal>,
}

async fn set_market(State(sim): Shared, Json(update): Json<MarketUpdate>) -> Response {
    let mut market = sim.market_lock();
    if update.min_usd.is_some_and(|m| m.is_sign_negative()) || update.max_usd.is_some_and(|m| m <= Decimal::ZERO) {
        return error(StatusCode::BAD_REQUEST, "bad_params", "min_usd must be >= 0 and max_usd > 0");
    }
    if let Some(min) = update.min_usd {
        market.min_usd = min;
    }
    if let Some(max) = update.max_usd {
        market.max_usd = Some(max);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// USD prices by coin, changed at run time: `{"usdt": "0.97"}`.
async fn set_prices(State(sim): Shared, Json(prices): Json<std::collections::BTreeMap<String, Decimal>>) -> Response {
    if prices.values().any(|p| *p <= Decimal::ZERO) {
        return error(StatusCode::BAD_REQUEST, "bad_params", "prices must be above zero");
    }
    let mut market = sim.market_lock();
    for (coin, price) in prices {
        market.usd_prices.insert(coin.to_ascii_lowercase(), price);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn overview(State(sim): Shared) -> Html<String> {
    let mut rows = String::new();
    for x in sim.exchanges().iter().rev() {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            escape(&x.id),
            escape(&x.pair.to_string()),
            escape(x.status.as_str()),
            x.expected_amount_from,
            x.amount_from.map(|a| a.to_string()).unwrap_or_default(),
            x.amount_to.map(|a| a.to_string()).unwrap_or_default(),
            escape(&x.payout_address),
        ));
    }
    Html(format!(
        "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=2><title>ChangeNow simulator</title>\
         <style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.3em .8em;text-align:left}}tr:nth-child(even){{background:#f4f4f4}}</style>\
         <h1>ChangeNow simulator</h1><p>Treasury {} &middot; step delay {:?} &middot; fee {} % &middot; <a href=/sim/exchanges>JSON</a> &middot; <a href=/sim/faults>faults</a></p>\
         <table><tr><th>id</th><th>pair</th><th>status</th><th>expected</th><th>amountFrom</th><th>amountTo</th><th>payout address</th></tr>{rows}</table>",
        sim.chain.treasury_address(),
        sim.config.step_delay,
        sim.market().fee_percent,
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
