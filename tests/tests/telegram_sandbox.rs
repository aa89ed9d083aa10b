//! The sandbox's Telegram, read through teloxide's own client: every answer must parse as the
//! Bot API types a real bot reads, and errors must be Telegram's (401 for a wrong token, 400
//! "chat not found", 429 with `retry_after`).

use integration_tests::{chain::TestChain, telegram};
use serde_json::{json, Value};
use std::time::Duration;
use teloxide_core::{
    payloads::{GetUpdatesSetters, SendMessageSetters},
    requests::{Request, Requester},
    types::{ChatId, ChatMemberKind, InlineKeyboardButton, InlineKeyboardMarkup, UpdateKind, UserId},
    ApiError, Bot, RequestError,
};

const TOKEN: &str = changenow_simulator::config::LOCAL_TELEGRAM_BOT_TOKEN;

fn bot(chain: &TestChain, token: &str) -> Bot {
    Bot::new(token).set_api_url(chain.changenow_url().parse().unwrap())
}

async fn deliver(chain: &TestChain, action: Value) -> reqwest::Response {
    reqwest::Client::new().post(format!("{}/sim/telegram/updates", chain.changenow_url())).json(&action).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_talks_to_the_sandbox_as_to_telegram() {
    let chain = TestChain::start("test-key").await;
    let bot = bot(&chain, TOKEN);
    let me = bot.get_me().await.expect("getMe");
    assert!(me.user.is_bot);
    assert_eq!(me.username.as_deref(), Some(changenow_simulator::config::LOCAL_TELEGRAM_BOT_USERNAME));

    let owner = telegram::fresh_user_id();
    telegram::channel_at(&chain.changenow_url(), "-1004440001", &[(owner, "creator")]).await;
    let member = bot.get_chat_member(ChatId(-1004440001), UserId(owner)).await.expect("getChatMember");
    assert!(matches!(member.kind, ChatMemberKind::Owner(_)));
    let stranger = bot.get_chat_member(ChatId(-1004440001), UserId(owner + 1)).await.unwrap();
    assert!(matches!(stranger.kind, ChatMemberKind::Left));
    let chat = bot.get_chat(ChatId(-1004440001)).await.expect("getChat");
    assert_eq!(chat.title(), Some("Channel -1004440001"));
    let missing = bot.get_chat_member(ChatId(-1009), UserId(owner)).await.unwrap_err();
    assert!(matches!(missing, RequestError::Api(ApiError::ChatNotFound)), "{missing:?}");

    // The bot may not write first; once the user wrote /start it may.
    let refused = bot.send_message(ChatId(owner as i64), "hello").await.unwrap_err();
    // Telegram words it "Forbidden: ..." today (teloxide knows the older "Unauthorized: ..." text).
    assert!(matches!(&refused, RequestError::Api(ApiError::Unknown(text)) if text.contains("initiate conversation")), "{refused:?}");
    // A long poll waits for the update and returns it as soon as it arrives.
    let poll = tokio::spawn({
        let bot = bot.clone();
        async move { bot.get_updates().timeout(10).send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(deliver(&chain, json!({"message": {"from": {"id": owner, "username": "ann"}, "text": "/start"}})).await.status().is_success());
    let updates = tokio::time::timeout(Duration::from_secs(5), poll).await.expect("the long poll returns on arrival").unwrap().unwrap();
    assert_eq!(updates.len(), 1);
    let UpdateKind::Message(start) = &updates[0].kind else { panic!("{updates:?}") };
    assert_eq!(start.text(), Some("/start"));
    assert_eq!(start.from.as_ref().and_then(|u| u.username.as_deref()), Some("ann"));

    let keyboard = InlineKeyboardMarkup::new([[InlineKeyboardButton::callback("Confirm", "confirm:7")]]);
    let sent = bot.send_message(ChatId(owner as i64), "Confirm the new wallet?").reply_markup(keyboard).await.expect("sendMessage");
    // Pressing a button the message does not have is impossible; the one it has arrives as a query.
    let pressed = json!({"callback_query": {"from": {"id": owner}, "chat_id": owner, "message_id": sent.id.0, "data": "cancel:7"}});
    assert_eq!(deliver(&chain, pressed).await.status(), 400);
    let pressed = json!({"callback_query": {"from": {"id": owner}, "chat_id": owner, "message_id": sent.id.0, "data": "confirm:7"}});
    assert!(deliver(&chain, pressed).await.status().is_success());
    let updates = bot.get_updates().offset(updates[0].id.0 as i32 + 1).await.unwrap();
    let UpdateKind::CallbackQuery(query) = &updates[0].kind else { panic!("{updates:?}") };
    assert_eq!((query.data.as_deref(), query.from.id), (Some("confirm:7"), UserId(owner)));
    bot.answer_callback_query(query.id.clone()).await.expect("answerCallbackQuery");
    bot.edit_message_text(ChatId(owner as i64), sent.id, "Confirmed.").await.expect("editMessageText");
    let shown: Value =
        reqwest::get(format!("{}/sim/telegram/messages?chat_id={owner}", chain.changenow_url())).await.unwrap().json().await.unwrap();
    assert_eq!(shown["items"][0]["text"], "Confirmed.", "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_fails_as_telegram_fails() {
    let chain = TestChain::start("test-key").await;
    let wrong = bot(&chain, "7000000001:not-the-token").get_me().await.unwrap_err();
    assert!(matches!(wrong, RequestError::Api(ApiError::InvalidToken)), "{wrong:?}");

    let bot = bot(&chain, TOKEN);
    chain.control("/sim/telegram/faults", json!({"status": 429, "retry_after": 3, "count": 1})).await;
    let limited = bot.get_me().await.unwrap_err();
    assert!(matches!(limited, RequestError::RetryAfter(secs) if secs.seconds() == 3), "{limited:?}");
    bot.get_me().await.expect("the counted fault is used up");
    chain.control("/sim/telegram/faults", json!({"status": 503})).await;
    assert!(bot.get_me().await.is_err());
    chain.control("/sim/telegram/faults", json!({})).await;
    bot.get_me().await.expect("cleared");
}
