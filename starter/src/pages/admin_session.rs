//! Operator sessions for the `/admin` pages: opened by `ADMIN_TOKEN` at `/admin/login`, kept in
//! memory (a restart logs operators out), carried by an `HttpOnly`, `SameSite=Strict` cookie, each
//! with its own CSRF token that every state-changing form must send back.

use axum::http::{header::COOKIE, HeaderMap};
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};
use uuid::Uuid;

pub const COOKIE_NAME: &str = "admin_session";
/// A working day; then the operator logs in again.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);

#[derive(Default)]
pub struct AdminSessions {
    open: Mutex<HashMap<String, Session>>,
}

struct Session {
    csrf: String,
    expires: Instant,
}

fn random_token() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

impl AdminSessions {
    /// A new session: (its id for the cookie, its CSRF token).
    pub fn open(&self, now: Instant) -> (String, String) {
        let (id, csrf) = (random_token(), random_token());
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|_, s| s.expires > now);
        open.insert(id.clone(), Session { csrf: csrf.clone(), expires: now + SESSION_TTL });
        (id, csrf)
    }

    /// The CSRF token of the live session `id`.
    pub fn csrf_of(&self, id: &str, now: Instant) -> Option<String> {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(id).filter(|s| s.expires > now).map(|s| s.csrf.clone())
    }

    pub fn close(&self, id: &str) {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

/// The session id the request's cookie carries.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_owned())
}

/// `Set-Cookie` for a session: script cannot read it, other sites cannot send it.
pub fn set_cookie(id: &str) -> String {
    format!("{COOKIE_NAME}={id}; HttpOnly; SameSite=Strict; Path=/admin; Max-Age={}", SESSION_TTL.as_secs())
}

pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_close() {
        let sessions = AdminSessions::default();
        let now = Instant::now();
        let (id, csrf) = sessions.open(now);
        assert_eq!(sessions.csrf_of(&id, now).as_deref(), Some(csrf.as_str()));
        assert_eq!(sessions.csrf_of(&id, now + SESSION_TTL), None, "expired");
        assert_eq!(sessions.csrf_of("forged", now), None);
        sessions.close(&id);
        assert_eq!(sessions.csrf_of(&id, now), None);
    }

    #[test]
    fn the_cookie_is_found_among_others_and_is_http_only_and_strict() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, "theme=dark; admin_session=abc123; x=1".parse().unwrap());
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc123"));
        let cookie = set_cookie("abc123");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    }
}
