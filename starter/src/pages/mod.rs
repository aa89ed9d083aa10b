//! Server-rendered pages for clients (DESIGN.md, "Surfaces"): `/register`, the private status
//! page `/clients/{client_id}?key=...` with its change form, and `/clients/{client_id}/status.txt`.
//! Plain HTML forms, usable without JavaScript; the rules and the code path are the API's.

mod admin;
mod admin_session;
mod status_text;
mod telegram_login;

pub use admin_session::AdminSessions;

pub use status_text::{progress_bar, status_text};
use telegram_login::{LoggedIn, TelegramLogin};

use crate::api::{
    channel_proof,
    clients::{change_client, client_status_of, register_client, ClientChange, ClientStatus, Registration},
    ApiError, ApiState,
};
use askama::Template;
use axum::{
    extract::{ConnectInfo, Form, Path, Query, RawForm, RawQuery, State},
    http::{header, HeaderMap, StatusCode},
    response::{Html, IntoResponse, Response},
    routing::get,
    Router,
};
use serde::Deserialize;
use serde_json::Value;
use std::{net::SocketAddr, time::Instant};

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/register", get(register_form).post(register))
        .route("/clients/{client_id}", get(client_page).post(change))
        .route("/clients/{client_id}/status.txt", get(client_status_text))
        .route("/static/pages.css", get(|| async { static_file("text/css; charset=utf-8", include_str!("../../static/pages.css")) }))
        .route(
            "/static/register.js",
            get(|| async { static_file("text/javascript; charset=utf-8", include_str!("../../static/register.js")) }),
        )
        .with_state(state.clone())
        .merge(admin::router(state))
}

/// The pages' style and script: files of this server, so the Content-Security-Policy allows
/// nothing inline.
fn static_file(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

/// What was typed, kept on the page when it is refused.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ClientForm {
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub wallet_address: String,
    #[serde(default)]
    pub payout_currency: String,
    #[serde(default)]
    pub payout_network: String,
    #[serde(default)]
    pub payout_strategy: String,
    #[serde(default)]
    pub payout_threshold_usd: String,
    /// The status page's form carries the client key (the page's own `?key=`).
    #[serde(default)]
    pub key: String,
}

/// The field an error is about, and its message.
struct FieldError {
    field: Option<String>,
    message: String,
}

impl From<ApiError> for FieldError {
    fn from(e: ApiError) -> Self {
        Self { field: e.body.field, message: e.body.error }
    }
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    form: ClientForm,
    error: Option<FieldError>,
    form_error: Option<String>,
    /// The Telegram user the form is bound to; `None`: the page offers to log in first.
    login: Option<LoggedIn>,
    telegram_login: TelegramLogin,
}

#[derive(Template)]
#[template(path = "registered.html")]
struct RegisteredPage {
    client_id: String,
    status_url: String,
}

#[derive(Template)]
#[template(path = "client.html")]
struct ClientPage {
    s: ClientStatus,
    key: String,
    form: ClientForm,
    error: Option<FieldError>,
    form_error: Option<String>,
    notice: Option<String>,
    warning: Option<String>,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    title: String,
    message: String,
}

trait FieldErrors {
    fn error(&self) -> Option<&FieldError>;

    /// The message to show next to `field`, if the error is about it.
    fn error_for(&self, field: &str) -> Option<&str> {
        self.error().filter(|e| e.field.as_deref() == Some(field)).map(|e| e.message.as_str())
    }
}

impl FieldErrors for RegisterPage {
    fn error(&self) -> Option<&FieldError> {
        self.error.as_ref()
    }
}

impl FieldErrors for ClientPage {
    fn error(&self) -> Option<&FieldError> {
        self.error.as_ref()
    }
}

/// An error that names no form field is shown above the form.
fn form_error(error: &Option<FieldError>, fields: &[&str]) -> Option<String> {
    error.as_ref().filter(|e| !e.field.as_deref().is_some_and(|f| fields.contains(&f))).map(|e| e.message.clone())
}

const FORM_FIELDS: &[&str] =
    &["client_id", "wallet_address", "payout_currency", "payout_network", "payout_strategy", "payout_threshold_usd"];

/// Pages carry a client key in their URL (`?key=`) or an operator's view: never sent on as a
/// referrer, never cached.
fn render(status: StatusCode, page: impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, [(header::REFERRER_POLICY, "no-referrer"), (header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

fn message(status: StatusCode, title: &str, message: impl Into<String>) -> Response {
    render(status, MessagePage { title: title.to_owned(), message: message.into() })
}

fn error_page(e: ApiError) -> Response {
    let title = match e.status.as_u16() {
        401 => "Your private link is needed",
        403 => "This link does not open this channel",
        404 => "Not found",
        429 => "Too many attempts",
        _ => "Something went wrong",
    };
    message(e.status, title, e.body.error)
}

fn threshold_value(text: &str) -> Option<Value> {
    let text = text.trim();
    (!text.is_empty()).then(|| Value::String(text.to_owned()))
}

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Without login data, "Log in with Telegram"; with the widget's (or the sandbox's) signed data
/// in the query, the form bound to that user.
async fn register_form(State(state): State<ApiState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let form = ClientForm { payout_strategy: "threshold".into(), payout_threshold_usd: "100".into(), ..Default::default() };
    let page = |status, login, form_error| {
        render_register(
            status,
            RegisterPage { form: form.clone(), error: None, form_error, login, telegram_login: telegram_login::choice(&state, &headers) },
        )
    };
    match telegram_login::login_data(&pairs).map(|data| telegram_login::verify(&state, &data)) {
        None => page(StatusCode::OK, None, None),
        Some(Ok((login, _))) => page(StatusCode::OK, Some(login), None),
        Some(Err(e)) => page(e.status, None, Some(e.body.error)),
    }
}

/// 422 with the error next to its field and what was typed kept; on success the private status
/// link, this once. The login data rides in hidden fields and is verified again here.
async fn register(
    State(state): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    if !state.allow_registration(peer.ip(), Instant::now()) {
        return error_page(ApiError::too_many_requests("too many registrations from this address; try again in a minute"));
    }
    let (Ok(form), Ok(pairs)) =
        (serde_urlencoded::from_bytes::<ClientForm>(&body), serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body))
    else {
        return error_page(ApiError::bad_request("the form could not be read"));
    };
    let page = |status, form: ClientForm, error: Option<FieldError>, login| {
        let form_error = form_error(&error, FORM_FIELDS);
        render_register(status, RegisterPage { form, error, form_error, login, telegram_login: telegram_login::choice(&state, &headers) })
    };
    let verified = telegram_login::login_data(&pairs)
        .ok_or_else(|| ApiError::unauthorized_in(channel_proof::FIELD, "log in with Telegram first"))
        .and_then(|data| telegram_login::verify(&state, &data));
    let (login, user) = match verified {
        Ok(verified) => verified,
        Err(e) => return page(e.status, form, Some(FieldError::from(e)), None),
    };
    let registration = Registration {
        client_id: form.client_id.clone(),
        wallet_address: form.wallet_address.clone(),
        payout_currency: form.payout_currency.clone(),
        payout_network: non_empty(&form.payout_network),
        payout_strategy: form.payout_strategy.clone(),
        payout_threshold_usd: if form.payout_strategy == "instant" { None } else { threshold_value(&form.payout_threshold_usd) },
        telegram_auth: None,
    };
    match register_client(&state, registration, &user).await {
        Ok(done) => render(StatusCode::CREATED, RegisteredPage { client_id: done.client_id, status_url: done.status_url }),
        Err(e) if e.status.is_server_error() => error_page(e),
        Err(e) => {
            let status = e.status;
            page(status, form, Some(FieldError::from(e)), Some(login))
        }
    }
}

/// The register page, with the widget's origins allowed when it shows the widget.
fn render_register(status: StatusCode, page: RegisterPage) -> Response {
    let widget = matches!(page.telegram_login, TelegramLogin::Widget { .. }) && page.login.is_none();
    let mut response = render(status, page);
    if widget {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(telegram_login::WIDGET_CONTENT_SECURITY_POLICY));
    }
    response
}

#[derive(Debug, Default, Deserialize)]
struct KeyQuery {
    #[serde(default)]
    key: Option<String>,
}

fn form_of(status: &ClientStatus) -> ClientForm {
    ClientForm {
        client_id: status.client_id.clone(),
        wallet_address: status.wallet_address.clone(),
        payout_currency: status.payout_currency.clone(),
        payout_network: status.payout_network.clone(),
        payout_strategy: status.payout_strategy.clone(),
        payout_threshold_usd: if status.payout_strategy == "threshold" { status.threshold_usd.to_string() } else { String::new() },
        key: String::new(),
    }
}

async fn client_page(State(state): State<ApiState>, Path(client_id): Path<String>, Query(query): Query<KeyQuery>) -> Response {
    let client = match crate::api::authorize_client(&state.pool, &client_id, query.key.as_deref()).await {
        Ok(client) => client,
        Err(e) => return error_page(e),
    };
    let warning = match activities::db::clients::unpaid_rows(&state.pool, &client.client_id).await {
        Ok(unpaid) => elsewhere_warning(&unpaid, &client.wallet_address),
        Err(e) => return crate::api::ApiError::internal(e).into_response(),
    };
    match client_status_of(&state, &client).await {
        Ok(s) => {
            let form = form_of(&s);
            let key = query.key.unwrap_or_default();
            render(StatusCode::OK, ClientPage { s, key, form, error: None, form_error: None, notice: None, warning })
        }
        Err(e) => error_page(e),
    }
}

/// Unpaid rows stay with the wallet they were accumulated for: say so when that is not the
/// client's current wallet.
fn elsewhere_warning(unpaid: &[(String, i64)], current_wallet: &str) -> Option<String> {
    let elsewhere: Vec<String> = unpaid
        .iter()
        .filter(|(wallet, _)| wallet != current_wallet)
        .map(|(wallet, rows)| format!("{rows} unpaid payment(s) will still be paid to {wallet}"))
        .collect();
    (!elsewhere.is_empty()).then(|| format!("{}; new payments go to {current_wallet}.", elsewhere.join("; ")))
}

/// The change form: the API's change, then the page again with what changed, or the error next
/// to its field and what was typed kept.
async fn change(State(state): State<ApiState>, Path(client_id): Path<String>, Form(form): Form<ClientForm>) -> Response {
    let client = match crate::api::authorize_client(&state.pool, &client_id, Some(&form.key)).await {
        Ok(client) => client,
        Err(e) => return error_page(e),
    };
    let change = ClientChange {
        wallet_address: non_empty(&form.wallet_address),
        payout_currency: non_empty(&form.payout_currency),
        payout_network: non_empty(&form.payout_network),
        payout_strategy: non_empty(&form.payout_strategy),
        payout_threshold_usd: if form.payout_strategy == "instant" {
            Some(Value::String("0".into()))
        } else {
            threshold_value(&form.payout_threshold_usd)
        },
    };
    let outcome = change_client(&state, &client, change).await;
    let (status, notice, warning, error) = match outcome {
        Ok(view) => {
            let unpaid: Vec<(String, i64)> = view.unpaid_rows_paid_to.iter().map(|u| (u.wallet_address.clone(), u.rows)).collect();
            (StatusCode::OK, Some("Saved.".to_owned()), elsewhere_warning(&unpaid, &view.wallet_address), None)
        }
        Err(e) if e.status.is_server_error() => return error_page(e),
        Err(e) => (e.status, None, None, Some(FieldError::from(e))),
    };
    let client = match crate::api::authorize_client(&state.pool, &client_id, Some(&form.key)).await {
        Ok(client) => client,
        Err(e) => return error_page(e),
    };
    match client_status_of(&state, &client).await {
        Ok(s) => {
            let form_error = form_error(&error, FORM_FIELDS);
            // Refused: keep what was typed. Saved: show what is stored now.
            let shown = if error.is_some() { ClientForm { key: String::new(), ..form.clone() } } else { form_of(&s) };
            render(status, ClientPage { s, key: form.key, form: shown, error, form_error, notice, warning })
        }
        Err(e) => error_page(e),
    }
}

/// Seed 000's Telegram status text; the key as `?key=` or `Authorization: Bearer`.
async fn client_status_text(
    State(state): State<ApiState>,
    Path(client_id): Path<String>,
    Query(query): Query<KeyQuery>,
    headers: HeaderMap,
) -> Response {
    let key = query.key.or_else(|| crate::api::bearer(&headers).map(str::to_owned));
    let client = match crate::api::authorize_client(&state.pool, &client_id, key.as_deref()).await {
        Ok(client) => client,
        Err(e) => return e.into_response(),
    };
    match client_status_of(&state, &client).await {
        Ok(s) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], status_text(&s, chrono::Utc::now())).into_response(),
        Err(e) => e.into_response(),
    }
}
