//! Telegram in the sandbox: the Bot API a bot sees (its chats, the members of the channels, the
//! updates users send it, the messages it sent) and the Login Widget's signed login data.
//!
//! Every answer is a `teloxide_core` type, so what the sandbox says is what a Telegram client
//! library reads; the errors are Telegram's own codes and descriptions. Users are known by
//! having logged in or written to the bot (they "started" it, so the bot may write to them) or by
//! being members of a channel (the bot may not write to those first, as on Telegram).

use crate::service_faults::Faults;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use teloxide_core::types::{
    CallbackQuery, CallbackQueryId, Chat, ChatFullInfo, ChatId, ChatKind, ChatMember, ChatMemberKind, ChatPrivate, ChatPublic,
    InlineKeyboardButtonKind, InlineKeyboardMarkup, MaybeInaccessibleMessage, Me, MediaKind, MediaText, Message, MessageCommon, MessageId,
    MessageKind, PublicChatChannel, PublicChatKind, Update, UpdateId, UpdateKind, User, UserId,
};

/// Telegram's limit on a message's text.
const MAX_TEXT_CHARS: usize = 4096;

/// A Bot API error as Telegram answers it: `{"ok": false, "error_code", "description",
/// "parameters": {"retry_after"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotApiError {
    pub code: u16,
    pub description: String,
    pub retry_after: Option<u64>,
}

impl BotApiError {
    pub fn bad_request(what: &str) -> Self {
        Self { code: 400, description: format!("Bad Request: {what}"), retry_after: None }
    }

    fn forbidden(what: &str) -> Self {
        Self { code: 403, description: format!("Forbidden: {what}"), retry_after: None }
    }

    pub fn unauthorized() -> Self {
        Self { code: 401, description: "Unauthorized".into(), retry_after: None }
    }

    pub fn not_found() -> Self {
        Self { code: 404, description: "Not Found".into(), retry_after: None }
    }

    /// An injected failure: 429 in Telegram's flood-control words, anything else as a server error.
    pub fn injected(status: u16, retry_after: Option<u64>) -> Self {
        match status {
            429 => {
                let secs = retry_after.unwrap_or(1);
                Self { code: 429, description: format!("Too Many Requests: retry after {secs}"), retry_after: Some(secs) }
            }
            code => Self { code, description: "Internal Server Error: injected by the sandbox".into(), retry_after },
        }
    }
}

/// A member's status in a channel, as `getChatMember` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    Creator,
    Administrator,
    Member,
    Left,
    Kicked,
}

/// `POST /sim/telegram/chats`: a channel and its members (replaces one with the same id).
#[derive(Debug, Clone, Deserialize)]
pub struct NewChannel {
    pub chat_id: i64,
    pub title: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub members: Vec<NewMember>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NewMember {
    pub user_id: u64,
    pub status: MemberStatus,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

/// `POST /sim/telegram/updates`: what a user does, delivered to the bot as an Update.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserAction {
    /// The user writes to the bot in their private chat (a command such as `/status`).
    Message { from: UserRef, text: String },
    /// The user presses an inline button of a message the bot sent.
    CallbackQuery { from: UserRef, chat_id: i64, message_id: i32, data: String },
}

/// A user by id, with the names to create them with if the sandbox does not know them yet.
#[derive(Debug, Clone, Deserialize)]
pub struct UserRef {
    pub id: u64,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

struct Channel {
    title: String,
    username: Option<String>,
    members: BTreeMap<u64, MemberStatus>,
}

/// The login data the Login Widget hands back for a user, signed as Telegram signs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginData(pub BTreeMap<String, String>);

pub struct Telegram {
    token: String,
    bot: User,
    channels: BTreeMap<i64, Channel>,
    users: BTreeMap<u64, User>,
    /// Users the bot may write to first (they logged in or wrote to it).
    started: BTreeSet<u64>,
    /// Updates not confirmed by a later `getUpdates` offset yet.
    pending: VecDeque<Update>,
    next_update_id: u32,
    sent: Vec<Message>,
    next_message_id: i32,
    /// Callback queries delivered, and whether the bot answered them.
    queries: BTreeMap<String, bool>,
    next_query_id: u64,
    pub faults: Faults,
}

impl Telegram {
    /// A bot whose id is the token's numeric part (as on Telegram: `123456:ABC...`).
    pub fn new(token: &str, username: &str) -> Self {
        let id = token.split(':').next().and_then(|n| n.parse().ok()).unwrap_or(1);
        let bot = user(id, "Payout sandbox bot", Some(username), true);
        Self {
            token: token.to_owned(),
            bot,
            channels: BTreeMap::new(),
            users: BTreeMap::new(),
            started: BTreeSet::new(),
            pending: VecDeque::new(),
            next_update_id: 1,
            sent: Vec::new(),
            next_message_id: 1,
            queries: BTreeMap::new(),
            next_query_id: 1,
            faults: Faults::default(),
        }
    }

    pub fn token_is(&self, token: &str) -> bool {
        self.token == token
    }

    pub fn me(&self) -> Me {
        Me {
            user: self.bot.clone(),
            can_join_groups: false,
            can_read_all_group_messages: false,
            supports_inline_queries: false,
            can_connect_to_business: false,
            has_main_web_app: false,
        }
    }

    pub fn add_channel(&mut self, channel: NewChannel) {
        let members = channel.members.iter().map(|m| (m.user_id, m.status)).collect();
        for m in &channel.members {
            self.know_user(&UserRef { id: m.user_id, first_name: m.first_name.clone(), username: m.username.clone() });
        }
        self.channels.insert(channel.chat_id, Channel { title: channel.title, username: channel.username, members });
    }

    fn know_user(&mut self, who: &UserRef) -> User {
        let known = self.users.entry(who.id).or_insert_with(|| user(who.id, &format!("User {}", who.id), None, false));
        if let Some(name) = &who.first_name {
            known.first_name = name.clone();
        }
        if who.username.is_some() {
            known.username = who.username.clone();
        }
        known.clone()
    }

    pub fn channel_by_username(&self, name: &str) -> Option<i64> {
        let name = name.trim_start_matches('@');
        self.channels.iter().find(|(_, c)| c.username.as_deref() == Some(name)).map(|(id, _)| *id)
    }

    fn channel(&self, chat_id: i64) -> Result<&Channel, BotApiError> {
        self.channels.get(&chat_id).ok_or_else(|| BotApiError::bad_request("chat not found"))
    }

    /// The chat a message goes to: a channel, or the private chat of a user who started the bot.
    fn chat(&self, chat_id: i64) -> Result<Chat, BotApiError> {
        if let Some(channel) = self.channels.get(&chat_id) {
            return Ok(channel_chat(chat_id, channel));
        }
        let Some(user) = u64::try_from(chat_id).ok().and_then(|id| self.users.get(&id)) else {
            return Err(BotApiError::bad_request("chat not found"));
        };
        if !self.started.contains(&user.id.0) {
            return Err(BotApiError::forbidden("bot can't initiate conversation with a user"));
        }
        Ok(private_chat(user))
    }

    pub fn get_chat_member(&self, chat_id: i64, user_id: u64) -> Result<ChatMember, BotApiError> {
        let channel = self.channel(chat_id)?;
        let status = channel.members.get(&user_id).copied().unwrap_or(MemberStatus::Left);
        let user = self.users.get(&user_id).cloned().unwrap_or_else(|| user(user_id, &format!("User {user_id}"), None, false));
        Ok(ChatMember { user, kind: member_kind(status) })
    }

    pub fn get_chat(&self, chat_id: i64) -> Result<ChatFullInfo, BotApiError> {
        let chat = self.chat(chat_id).or_else(|e| match e.code {
            // getChat also answers for users who never started the bot.
            403 => Ok(private_chat(&self.users[&(chat_id as u64)])),
            _ => Err(e),
        })?;
        // ChatFullInfo has dozens of optional fields: the chat's own fields plus the two
        // Telegram always sends, read through teloxide's type so the shape is Telegram's.
        let mut full = serde_json::to_value(&chat).map_err(|e| BotApiError::bad_request(&e.to_string()))?;
        full["accent_color_id"] = 0.into();
        full["max_reaction_count"] = 11.into();
        full["accepted_gift_types"] =
            serde_json::json!({"unlimited_gifts": false, "limited_gifts": false, "unique_gifts": false, "premium_subscription": false});
        serde_json::from_value(full).map_err(|e| BotApiError::bad_request(&format!("sandbox chat is not a ChatFullInfo: {e}")))
    }

    pub fn send_message(
        &mut self,
        chat_id: i64,
        text: &str,
        reply_markup: Option<InlineKeyboardMarkup>,
        now: DateTime<Utc>,
    ) -> Result<Message, BotApiError> {
        check_text(text)?;
        let chat = self.chat(chat_id)?;
        let id = MessageId(self.next_message_id);
        self.next_message_id += 1;
        let message = message(id, Some(self.bot.clone()), chat, text, reply_markup, now, None);
        self.sent.push(message.clone());
        Ok(message)
    }

    pub fn edit_message_text(
        &mut self,
        chat_id: i64,
        message_id: i32,
        text: &str,
        reply_markup: Option<InlineKeyboardMarkup>,
        now: DateTime<Utc>,
    ) -> Result<Message, BotApiError> {
        check_text(text)?;
        let sent = self
            .sent
            .iter_mut()
            .find(|m| m.chat.id.0 == chat_id && m.id.0 == message_id)
            .ok_or_else(|| BotApiError::bad_request("message to edit not found"))?;
        if sent.text() == Some(text) && sent.reply_markup() == reply_markup.as_ref() {
            return Err(BotApiError::bad_request(
                "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
            ));
        }
        let edited = message(sent.id, sent.from.clone(), sent.chat.clone(), text, reply_markup, sent.date, Some(now));
        *sent = edited.clone();
        Ok(edited)
    }

    pub fn answer_callback_query(&mut self, id: &str) -> Result<bool, BotApiError> {
        match self.queries.get_mut(id) {
            Some(answered @ false) => {
                *answered = true;
                Ok(true)
            }
            _ => Err(BotApiError::bad_request("query is too old and response timeout expired or query ID is invalid")),
        }
    }

    /// The updates from `offset` on (earlier ones are confirmed and forgotten, as on Telegram).
    pub fn get_updates(&mut self, offset: Option<i64>, limit: Option<u32>) -> Vec<Update> {
        if let Some(offset) = offset.filter(|o| *o > 0) {
            self.pending.retain(|u| i64::from(u.id.0) >= offset);
        }
        let limit = limit.unwrap_or(100).clamp(1, 100) as usize;
        self.pending.iter().take(limit).cloned().collect()
    }

    /// Delivers what a user did as the bot's next update. A button can only be pressed where the
    /// bot showed it, as in the app.
    pub fn deliver(&mut self, action: UserAction, now: DateTime<Utc>) -> Result<Update, BotApiError> {
        let kind = match action {
            UserAction::Message { from, text } => {
                check_text(&text)?;
                let user = self.know_user(&from);
                self.started.insert(from.id);
                let id = MessageId(self.next_message_id);
                self.next_message_id += 1;
                UpdateKind::Message(message(id, Some(user.clone()), private_chat(&user), &text, None, now, None))
            }
            UserAction::CallbackQuery { from, chat_id, message_id, data } => {
                let user = self.know_user(&from);
                let shown = self
                    .sent
                    .iter()
                    .find(|m| m.chat.id.0 == chat_id && m.id.0 == message_id)
                    .ok_or_else(|| BotApiError::bad_request("the bot sent no such message"))?;
                if !has_button(shown, &data) {
                    return Err(BotApiError::bad_request("the message has no button with this callback_data"));
                }
                let id = self.next_query_id.to_string();
                self.next_query_id += 1;
                self.queries.insert(id.clone(), false);
                UpdateKind::CallbackQuery(CallbackQuery {
                    id: CallbackQueryId(id),
                    from: user,
                    message: Some(MaybeInaccessibleMessage::Regular(Box::new(shown.clone()))),
                    inline_message_id: None,
                    chat_instance: chat_id.to_string(),
                    data: Some(data),
                    game_short_name: None,
                })
            }
        };
        let update = Update { id: UpdateId(self.next_update_id), kind };
        self.next_update_id += 1;
        self.pending.push_back(update.clone());
        Ok(update)
    }

    /// What the bot sent to `chat_id` (all chats without one), oldest first, as edited since.
    pub fn messages(&self, chat_id: Option<i64>) -> Vec<Message> {
        self.sent.iter().filter(|m| chat_id.is_none_or(|c| m.chat.id.0 == c)).cloned().collect()
    }

    /// The Login Widget's answer for `user_id`, signed with the bot's token; logging in lets the
    /// bot write to the user (the widget's "allow messages" is on).
    pub fn login(&mut self, who: &UserRef, auth_date: i64) -> LoginData {
        let user = self.know_user(who);
        self.started.insert(who.id);
        let mut fields = BTreeMap::from([
            ("id".to_owned(), user.id.0.to_string()),
            ("first_name".to_owned(), user.first_name.clone()),
            ("auth_date".to_owned(), auth_date.to_string()),
        ]);
        if let Some(username) = &user.username {
            fields.insert("username".into(), username.clone());
        }
        let hash = login_hash(&self.token, &fields);
        fields.insert("hash".into(), hash);
        LoginData(fields)
    }
}

/// Telegram's Login Widget signature: HMAC-SHA256 of the fields as `key=value` lines sorted by
/// key, keyed with SHA-256 of the bot token.
fn login_hash(token: &str, fields: &BTreeMap<String, String>) -> String {
    let check_string = fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n");
    let key = Sha256::digest(token.as_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(check_string.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn check_text(text: &str) -> Result<(), BotApiError> {
    if text.trim().is_empty() {
        return Err(BotApiError::bad_request("message text is empty"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(BotApiError::bad_request("message is too long"));
    }
    Ok(())
}

fn has_button(message: &Message, data: &str) -> bool {
    message.reply_markup().is_some_and(|markup| {
        markup.inline_keyboard.iter().flatten().any(|b| matches!(&b.kind, InlineKeyboardButtonKind::CallbackData(d) if d == data))
    })
}

fn user(id: u64, first_name: &str, username: Option<&str>, is_bot: bool) -> User {
    User {
        id: UserId(id),
        is_bot,
        first_name: first_name.to_owned(),
        last_name: None,
        username: username.map(str::to_owned),
        language_code: None,
        is_premium: false,
        added_to_attachment_menu: false,
    }
}

fn private_chat(user: &User) -> Chat {
    Chat {
        id: ChatId(user.id.0 as i64),
        kind: ChatKind::Private(ChatPrivate {
            username: user.username.clone(),
            first_name: Some(user.first_name.clone()),
            last_name: user.last_name.clone(),
        }),
    }
}

fn channel_chat(id: i64, channel: &Channel) -> Chat {
    Chat {
        id: ChatId(id),
        kind: ChatKind::Public(ChatPublic {
            title: Some(channel.title.clone()),
            kind: PublicChatKind::Channel(PublicChatChannel { username: channel.username.clone() }),
        }),
    }
}

fn member_kind(status: MemberStatus) -> ChatMemberKind {
    use teloxide_core::types::{Administrator, Banned, Member, Owner, UntilDate};
    match status {
        MemberStatus::Creator => ChatMemberKind::Owner(Owner { custom_title: None, is_anonymous: false }),
        MemberStatus::Administrator => ChatMemberKind::Administrator(Administrator {
            custom_title: None,
            is_anonymous: false,
            can_be_edited: false,
            can_manage_chat: true,
            can_change_info: true,
            can_post_messages: true,
            can_edit_messages: true,
            can_delete_messages: true,
            can_post_stories: false,
            can_edit_stories: false,
            can_delete_stories: false,
            can_manage_video_chats: false,
            can_invite_users: true,
            can_restrict_members: false,
            can_pin_messages: false,
            can_manage_topics: false,
            can_promote_members: false,
        }),
        MemberStatus::Member => ChatMemberKind::Member(Member { until_date: None }),
        MemberStatus::Left => ChatMemberKind::Left,
        MemberStatus::Kicked => ChatMemberKind::Banned(Banned { until_date: UntilDate::Forever }),
    }
}

fn message(
    id: MessageId,
    from: Option<User>,
    chat: Chat,
    text: &str,
    reply_markup: Option<InlineKeyboardMarkup>,
    date: DateTime<Utc>,
    edit_date: Option<DateTime<Utc>>,
) -> Message {
    Message {
        id,
        thread_id: None,
        from,
        sender_chat: None,
        date,
        chat,
        is_topic_message: false,
        via_bot: None,
        sender_business_bot: None,
        kind: MessageKind::Common(MessageCommon {
            author_signature: None,
            paid_star_count: None,
            effect_id: None,
            forward_origin: None,
            reply_to_message: None,
            external_reply: None,
            quote: None,
            reply_to_story: None,
            sender_boost_count: None,
            edit_date,
            media_kind: MediaKind::Text(MediaText { text: text.to_owned(), entities: vec![], link_preview_options: None }),
            reply_markup,
            is_automatic_forward: false,
            has_protected_content: false,
            is_from_offline: false,
            business_connection_id: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use teloxide_core::types::InlineKeyboardButton;

    const TOKEN: &str = "7000000001:test-token";

    fn telegram() -> Telegram {
        let mut telegram = Telegram::new(TOKEN, "sandbox_bot");
        telegram.add_channel(NewChannel {
            chat_id: -1001,
            title: "Paid channel".into(),
            username: None,
            members: vec![
                NewMember { user_id: 42, status: MemberStatus::Creator, first_name: Some("Ann".into()), username: Some("ann".into()) },
                NewMember { user_id: 43, status: MemberStatus::Member, first_name: None, username: None },
            ],
        });
        telegram
    }

    #[test]
    fn login_data_is_signed_as_telegram_documents() {
        // Independently computed with Python: key = sha256(token); hmac.new(key,
        // "auth_date=1700000000\nfirst_name=Ann\nid=42\nusername=ann", sha256).hexdigest()
        let mut telegram = telegram();
        let login = telegram.login(&UserRef { id: 42, first_name: None, username: None }, 1_700_000_000);
        assert_eq!(login.0["hash"], "bf6246c4cebcd1297d2855182b7e87915666a1cb1f4ee29b0862311d3f5d1aa8");
    }

    #[test]
    fn members_answer_with_their_status_and_strangers_as_left() {
        let telegram = telegram();
        assert!(matches!(telegram.get_chat_member(-1001, 42).unwrap().kind, ChatMemberKind::Owner(_)));
        assert!(matches!(telegram.get_chat_member(-1001, 43).unwrap().kind, ChatMemberKind::Member(_)));
        assert!(matches!(telegram.get_chat_member(-1001, 99).unwrap().kind, ChatMemberKind::Left));
        assert_eq!(telegram.get_chat_member(-1002, 42).unwrap_err(), BotApiError::bad_request("chat not found"));
    }

    #[test]
    fn the_bot_writes_only_to_users_who_started_it() {
        let mut telegram = telegram();
        let now = Utc::now();
        assert_eq!(telegram.send_message(42, "hi", None, now).unwrap_err().code, 403);
        telegram
            .deliver(UserAction::Message { from: UserRef { id: 42, first_name: None, username: None }, text: "/start".into() }, now)
            .unwrap();
        assert_eq!(telegram.send_message(42, "hi", None, now).unwrap().text(), Some("hi"));
        assert_eq!(telegram.send_message(7, "hi", None, now).unwrap_err(), BotApiError::bad_request("chat not found"));
        assert_eq!(telegram.send_message(42, " ", None, now).unwrap_err(), BotApiError::bad_request("message text is empty"));
    }

    #[test]
    fn buttons_are_pressed_only_where_shown_and_answered_once() {
        let mut telegram = telegram();
        let now = Utc::now();
        let ann = UserRef { id: 42, first_name: None, username: None };
        telegram.deliver(UserAction::Message { from: ann.clone(), text: "/start".into() }, now).unwrap();
        let keyboard = InlineKeyboardMarkup::new([[InlineKeyboardButton::callback("Confirm", "confirm:1")]]);
        let sent = telegram.send_message(42, "Confirm?", Some(keyboard), now).unwrap();
        let press = |data: &str| UserAction::CallbackQuery { from: ann.clone(), chat_id: 42, message_id: sent.id.0, data: data.into() };
        assert!(telegram.deliver(press("cancel:1"), now).is_err(), "no such button");
        let update = telegram.deliver(press("confirm:1"), now).unwrap();
        let UpdateKind::CallbackQuery(query) = &update.kind else { panic!("{update:?}") };
        assert_eq!(telegram.answer_callback_query(&query.id.0), Ok(true));
        assert!(telegram.answer_callback_query(&query.id.0).is_err(), "answered twice");
    }

    #[test]
    fn updates_stay_until_a_later_offset_confirms_them() {
        let mut telegram = telegram();
        let now = Utc::now();
        for text in ["/start", "/status"] {
            telegram
                .deliver(UserAction::Message { from: UserRef { id: 42, first_name: None, username: None }, text: text.into() }, now)
                .unwrap();
        }
        let first = telegram.get_updates(None, None);
        assert_eq!(first.len(), 2);
        assert_eq!(telegram.get_updates(None, None).len(), 2, "not confirmed yet");
        let next = i64::from(first[0].id.0) + 1;
        assert_eq!(telegram.get_updates(Some(next), None).len(), 1);
        assert_eq!(telegram.get_updates(Some(next + 1), None).len(), 0);
    }

    #[test]
    fn an_edit_that_changes_nothing_is_refused() {
        let mut telegram = telegram();
        let now = Utc::now();
        telegram
            .deliver(UserAction::Message { from: UserRef { id: 42, first_name: None, username: None }, text: "/start".into() }, now)
            .unwrap();
        let sent = telegram.send_message(42, "one", None, now).unwrap();
        assert_eq!(telegram.edit_message_text(42, sent.id.0, "two", None, now).unwrap().text(), Some("two"));
        assert!(telegram.edit_message_text(42, sent.id.0, "two", None, now).unwrap_err().description.contains("not modified"));
        assert_eq!(telegram.messages(Some(42))[0].text(), Some("two"));
    }
}
