//! The headers every answer carries, pages and JSON alike: a Content-Security-Policy that allows
//! nothing inline (the pages' style and script are files of this server, under `/static`), no
//! framing by anyone (clickjacking of the approve and change forms), no MIME sniffing, and no
//! referrer (client links carried a key). A handler that sets one of them itself keeps its own.

use axum::{
    http::{header, HeaderName, HeaderValue},
    Router,
};
use tower_http::set_header::SetResponseHeaderLayer;

/// Only this server's own files; forms post back here only; never inside a frame.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn with_security_headers(router: Router) -> Router {
    let headers: [(HeaderName, &'static str); 4] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    headers
        .into_iter()
        .fold(router, |router, (name, value)| router.layer(SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))))
}
