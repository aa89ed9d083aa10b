//! Telegram's HTTP face in the sandbox: the Bot API at `/bot{token}/{method}` (parameters as JSON,
//! a form or the query string, as Telegram takes them) and the `/sim/telegram/*` controls (see
//! [`crate::telegram`]).

use crate::{
    service_faults::{FaultRequest, Faults},
    telegram::{BotApiError, NewChannel, UserAction, UserRef},
    Simulator,
};
use axum::{
    body::Bytes,
    extract::{Path, Query, RawQuery, State},
    http::{header, HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{any, get, post},
    Json, Router,
};
use chrono::Utc;
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{json, Map, Value};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use teloxide_core::types::InlineKeyboardMarkup;
use tracing::info;

type Shared = State<Arc<Simulator>>;

/// Telegram holds a long poll at most this long.
const MAX_POLL: Duration = Duration::from_secs(50);

pub fn router() -> Router<Arc<Simulator>> {
    Router::new()
        .route("/bot{token}/{method}", any(bot_api))
        .route("/sim/telegram/chats", post(add_chat))
        .route("/sim/telegram/updates", post(deliver_update))
        .route("/sim/telegram/messages", get(messages))
        .route("/sim/telegram/faults", post(set_faults))
        .route("/sim/telegram/login", get(login))
}

fn answer(result: Result<Value, BotApiError>) -> Response {
    match result {
        Ok(result) => Json(json!({"ok": true, "result": result})).into_response(),
        Err(e) => {
            let status = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut body = json!({"ok": false, "error_code": e.code, "description": e.description});
            if let Some(secs) = e.retry_after {
                body["parameters"] = json!({"retry_after": secs});
            }
            (status, Json(body)).into_response()
        }
    }
}

/// The request's parameters as one JSON object: a JSON body, or form and query values (each read
/// as JSON when it is JSON, as Telegram reads `reply_markup` or `chat_id` sent as text).
fn parameters(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Result<Map<String, Value>, BotApiError> {
    let is_json = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("application/json"));
    let mut params = Map::new();
    if is_json && !body.is_empty() {
        match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => params = map,
            _ => return Err(BotApiError::bad_request("can't parse JSON object")),
        }
    } else if !body.is_empty() {
        params.extend(text_pairs(body));
    }
    params.extend(text_pairs(query.unwrap_or_default().as_bytes()));
    Ok(params)
}

fn text_pairs(encoded: &[u8]) -> impl Iterator<Item = (String, Value)> + '_ {
    url::form_urlencoded::parse(encoded).map(|(k, v)| {
        let value = serde_json::from_str(&v).unwrap_or_else(|_| Value::String(v.clone().into_owned()));
        (k.into_owned(), value)
    })
}

fn read<T: DeserializeOwned>(params: Map<String, Value>) -> Result<T, BotApiError> {
    serde_json::from_value(Value::Object(params)).map_err(|e| BotApiError::bad_request(&format!("invalid parameters: {e}")))
}

fn to_value<T: serde::Serialize>(value: T) -> Result<Value, BotApiError> {
    serde_json::to_value(value).map_err(|e| BotApiError::bad_request(&e.to_string()))
}

#[derive(Deserialize)]
struct ChatParam {
    chat_id: ChatRef,
}

/// `chat_id` as Telegram takes it: a number, or `@username` for a public channel.
#[derive(Deserialize)]
#[serde(untagged)]
enum ChatRef {
    Id(i64),
    Username(String),
}

#[derive(Deserialize)]
struct SendMessage {
    chat_id: ChatRef,
    text: String,
    #[serde(default)]
    reply_markup: Option<InlineKeyboardMarkup>,
}

#[derive(Deserialize)]
struct EditMessageText {
    chat_id: ChatRef,
    message_id: i32,
    text: String,
    #[serde(default)]
    reply_markup: Option<InlineKeyboardMarkup>,
}

#[derive(Deserialize)]
struct ChatMemberParams {
    chat_id: ChatRef,
    user_id: u64,
}

#[derive(Deserialize)]
struct AnswerCallbackQuery {
    callback_query_id: String,
}

#[derive(Deserialize, Default)]
struct GetUpdates {
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    timeout: Option<u64>,
}

async fn bot_api(
    State(sim): Shared,
    Path((token, method)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (delay, failure) = {
        let mut telegram = sim.telegram_lock();
        if !telegram.token_is(&token) {
            return answer(Err(BotApiError::unauthorized()));
        }
        (telegram.faults.delay(), telegram.faults.take_failure(Instant::now()))
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some((status, retry_after)) = failure {
        info!(status, %method, "Telegram: injected failure");
        return answer(Err(BotApiError::injected(status, retry_after)));
    }
    let params = match parameters(&headers, query.as_deref(), &body) {
        Ok(params) => params,
        Err(e) => return answer(Err(e)),
    };
    let result = match method.to_ascii_lowercase().as_str() {
        "getupdates" => get_updates(&sim, params).await,
        other => call(&sim, other, params),
    };
    answer(result)
}

fn chat_id(sim: &Simulator, chat: ChatRef) -> Result<i64, BotApiError> {
    match chat {
        ChatRef::Id(id) => Ok(id),
        ChatRef::Username(name) => sim.telegram_lock().channel_by_username(&name).ok_or_else(|| BotApiError::bad_request("chat not found")),
    }
}

/// Every method but `getUpdates`, which may wait.
fn call(sim: &Simulator, method: &str, params: Map<String, Value>) -> Result<Value, BotApiError> {
    let now = Utc::now();
    match method {
        "getme" => to_value(sim.telegram_lock().me()),
        "sendmessage" => {
            let p: SendMessage = read(params)?;
            let chat = chat_id(sim, p.chat_id)?;
            to_value(sim.telegram_lock().send_message(chat, &p.text, p.reply_markup, now)?)
        }
        "editmessagetext" => {
            let p: EditMessageText = read(params)?;
            let chat = chat_id(sim, p.chat_id)?;
            to_value(sim.telegram_lock().edit_message_text(chat, p.message_id, &p.text, p.reply_markup, now)?)
        }
        "answercallbackquery" => {
            let p: AnswerCallbackQuery = read(params)?;
            to_value(sim.telegram_lock().answer_callback_query(&p.callback_query_id)?)
        }
        "getchatmember" => {
            let p: ChatMemberParams = read(params)?;
            let chat = chat_id(sim, p.chat_id)?;
            to_value(sim.telegram_lock().get_chat_member(chat, p.user_id)?)
        }
        "getchat" => {
            let p: ChatParam = read(params)?;
            let chat = chat_id(sim, p.chat_id)?;
            to_value(sim.telegram_lock().get_chat(chat)?)
        }
        _ => Err(BotApiError::not_found()),
    }
}

/// Long polling: answers at once when updates wait, else when one arrives or `timeout` passes.
async fn get_updates(sim: &Simulator, params: Map<String, Value>) -> Result<Value, BotApiError> {
    let p: GetUpdates = read(params)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(p.timeout.unwrap_or(0)).min(MAX_POLL);
    loop {
        let arrived = sim.telegram_updates.notified();
        let updates = sim.telegram_lock().get_updates(p.offset, p.limit);
        if !updates.is_empty() || tokio::time::Instant::now() >= deadline {
            return to_value(updates);
        }
        let _ = tokio::time::timeout_at(deadline, arrived).await;
    }
}

fn control_error(e: BotApiError) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": e.description}))).into_response()
}

async fn add_chat(State(sim): Shared, Json(channel): Json<NewChannel>) -> StatusCode {
    info!(chat_id = channel.chat_id, members = channel.members.len(), "Telegram: channel set up");
    sim.telegram_lock().add_channel(channel);
    StatusCode::CREATED
}

async fn deliver_update(State(sim): Shared, Json(action): Json<UserAction>) -> Response {
    let delivered = sim.telegram_lock().deliver(action, Utc::now());
    match delivered {
        Ok(update) => {
            sim.telegram_updates.notify_waiters();
            Json(update).into_response()
        }
        Err(e) => control_error(e),
    }
}

#[derive(Deserialize)]
struct MessagesQuery {
    #[serde(default)]
    chat_id: Option<i64>,
}

async fn messages(State(sim): Shared, Query(q): Query<MessagesQuery>) -> Response {
    Json(json!({"items": sim.telegram_lock().messages(q.chat_id)})).into_response()
}

async fn set_faults(State(sim): Shared, Json(request): Json<FaultRequest>) -> StatusCode {
    sim.telegram_lock().faults = Faults::from_request(&request, Instant::now());
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    return_to: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    username: Option<String>,
    /// Signs an older login (tests of stale data); default now.
    #[serde(default)]
    auth_date: Option<i64>,
}

/// A test user's login: without `user_id`, a page that asks for one; with it, the signed login
/// data, as JSON or (with `return_to`) as the redirect the Login Widget makes.
async fn login(State(sim): Shared, Query(q): Query<LoginQuery>) -> Response {
    let Some(user_id) = q.user_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
        return Html(login_page(q.return_to.as_deref().unwrap_or_default())).into_response();
    };
    let Ok(id) = user_id.parse::<u64>() else {
        return control_error(BotApiError::bad_request("user_id must be a Telegram user id (a positive number)"));
    };
    let who = UserRef { id, first_name: q.first_name.filter(|n| !n.is_empty()), username: q.username.filter(|n| !n.is_empty()) };
    let data = sim.telegram_lock().login(&who, q.auth_date.unwrap_or_else(|| Utc::now().timestamp()));
    match q.return_to.filter(|r| r.starts_with("http://") || r.starts_with("https://") || r.starts_with('/')) {
        Some(return_to) => {
            let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(data.0.iter()).finish();
            let separator = if return_to.contains('?') { '&' } else { '?' };
            Redirect::to(&format!("{return_to}{separator}{query}")).into_response()
        }
        None => Json(data).into_response(),
    }
}

fn login_page(return_to: &str) -> String {
    let escaped: String = return_to
        .chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            c => c.to_string(),
        })
        .collect();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Telegram (sandbox): log in</title></head><body>\
         <h1>Log in with Telegram (sandbox)</h1>\
         <p>The sandbox stands in for Telegram's Login Widget: it signs the login of the test user you name.</p>\
         <form method=\"get\" action=\"/sim/telegram/login\">\
         <input type=\"hidden\" name=\"return_to\" value=\"{escaped}\">\
         <label>Telegram user id <input name=\"user_id\" inputmode=\"numeric\" required></label> \
         <label>First name <input name=\"first_name\"></label> \
         <label>Username <input name=\"username\"></label> \
         <button type=\"submit\">Log in</button></form></body></html>"
    )
}
