//! `starter payment show <id>`.

use activities::db::{payments::PaymentView, unroutable_ipns::UnroutableIpn};
use workflows::payment_workflow_id;

pub fn describe(p: &PaymentView) -> String {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    let amount = |v: Option<rust_decimal::Decimal>| opt(v.map(|d| d.normalize().to_string()));
    format!(
        "payment {id}\n  order:        {order} (user {user}, client {client})\n  NOWPayments:  {np_status}, {ipns} IPN(s)\n  \
         processing:   {status}\n  price:        {price} {price_cur}\n  outcome:      {outcome} {outcome_cur}\n  \
         fee:          {fee_pct}% = {fee_usd} USD\n  net:          {net_usd} USD / {net_eth} ETH\n  \
         accumulation: {acc} ({conv})\n  workflow:     {wf} (started {started})\n  received:     {received}\n  \
         verified:     {verified}{unverified}",
        id = p.payment_id,
        order = p.order_id,
        user = p.user_id,
        client = p.client_id,
        np_status = p.payment_status,
        ipns = p.ipn_count,
        status = p.status,
        price = p.price_amount.normalize(),
        price_cur = p.price_currency,
        outcome = amount(p.outcome_amount),
        outcome_cur = opt(p.outcome_currency.clone()),
        fee_pct = amount(p.fee_percent),
        fee_usd = amount(p.fee_amount_usd),
        net_usd = amount(p.net_amount_usd),
        net_eth = amount(p.net_amount_eth),
        acc = opt(p.accumulation_id.map(|d| d.to_string())),
        conv = opt(p.conversion_status.clone()),
        wf = payment_workflow_id(p.payment_id),
        started = opt(p.workflow_started_at.map(|t| t.to_string())),
        received = p.received_at,
        verified = opt(p.verified_at.map(|t| format!("with NOWPayments at {t}"))),
        unverified = p.unverified_reason.as_ref().map(|r| format!("\n  not paid:     {r}")).unwrap_or_default(),
    )
}

/// A payment whose IPN named an unknown client: what it is waiting for.
pub fn describe_unroutable(kept: &UnroutableIpn) -> String {
    let state = match kept.routed_at {
        Some(at) => format!("routed at {at}"),
        None => format!(
            "waiting: once the owner of {} registers it through Telegram, `starter payment route {} --operator <you>`",
            kept.client_id, kept.payment_id
        ),
    };
    format!(
        "payment {id} (unroutable)\n  client:       {client} (did not exist when the IPN came)\n  \
         NOWPayments:  {status}, {ipns} IPN(s)\n  received:     {received}\n  state:        {state}",
        id = kept.payment_id,
        client = kept.client_id,
        status = kept.payment_status,
        ipns = kept.ipn_count,
        received = kept.received_at,
    )
}
