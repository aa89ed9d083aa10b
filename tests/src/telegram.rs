//! Telegram in the tests: the sandbox's channels, owners and logins, through its `/sim/telegram`
//! controls (the same calls a demo makes).

use crate::TestApp;
use serde_json::{json, Value};

/// A Telegram user id no other test uses.
pub fn fresh_user_id() -> u64 {
    1_000_000 + u64::from(uuid::Uuid::new_v4().as_u128() as u32 % 1_000_000_000)
}

/// Sets up channel `chat_id` (its title names it) with `members` as `(user_id, status)`.
pub async fn channel_at(sandbox: &str, chat_id: &str, members: &[(u64, &str)]) {
    let members: Vec<Value> = members.iter().map(|(id, status)| json!({"user_id": id, "status": status})).collect();
    let body =
        json!({"chat_id": chat_id.parse::<i64>().expect("a Telegram chat id"), "title": format!("Channel {chat_id}"), "members": members});
    let response =
        reqwest::Client::new().post(format!("{sandbox}/sim/telegram/chats")).json(&body).send().await.expect("sandbox unreachable");
    assert!(response.status().is_success(), "POST /sim/telegram/chats: {}", response.status());
}

/// The Login Widget's signed data for `user_id`, signed `age_secs` ago.
pub async fn login_at(sandbox: &str, user_id: u64, age_secs: i64) -> Value {
    let auth_date = chrono::Utc::now().timestamp() - age_secs;
    let url = format!("{sandbox}/sim/telegram/login?user_id={user_id}&auth_date={auth_date}");
    let response = reqwest::get(url).await.expect("sandbox unreachable");
    assert!(response.status().is_success(), "GET /sim/telegram/login: {}", response.status());
    response.json().await.expect("login data is JSON")
}

/// A fresh user who created channel `chat_id`; their id.
pub async fn channel_with_owner(app: &TestApp, chat_id: &str) -> u64 {
    let owner = fresh_user_id();
    channel_at(&app.chain.changenow_url(), chat_id, &[(owner, "creator")]).await;
    owner
}

/// Login data of the owner of a fresh channel `chat_id`, for `telegram_auth`.
pub async fn owner_login(app: &TestApp, chat_id: &str) -> Value {
    let owner = channel_with_owner(app, chat_id).await;
    login_at(&app.chain.changenow_url(), owner, 0).await
}

/// `POST /api/v1/clients` with `body` and the login of a fresh owner of its `client_id`.
pub async fn register_with_proof(app: &TestApp, mut body: Value) -> (u16, Value) {
    let chat_id = body["client_id"].as_str().expect("client_id").to_owned();
    body["telegram_auth"] = owner_login(app, &chat_id).await;
    let response = app.http.post(format!("http://{}/api/v1/clients", app.addr)).json(&body).send().await.expect("server unreachable");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}
