//! The OpenAPI 3 document of every `/api/v1` route, generated from the handlers' annotations.

use super::{clients, instant_payouts, operators, ErrorBody};
use axum::Json;
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Payout engine API", description = "Clients register and follow their payouts; operators run the platform."),
    paths(
        clients::register, clients::status, clients::change,
        operators::list_payout_batches, operators::retry_payout_batch, operators::cancel_payout_batch,
        operators::approve_payout_batch, operators::reject_payout_batch, operators::payout_now,
        instant_payouts::approve_instant_payout, instant_payouts::reject_instant_payout,
        operators::list_conversions, operators::list_alerts, operators::ack_alert,
        operators::get_settings, operators::put_settings,
    ),
    components(schemas(
        ErrorBody, clients::Registration, clients::Registered, clients::ClientChange, clients::ClientView, clients::UnpaidRows,
        clients::ClientStatus, clients::PaymentView, clients::PayoutView, clients::InstantPayoutView,
        operators::PayoutBatchView, operators::ConversionView, operators::AlertView, operators::ActionOutcome,
        operators::CancelRequest, operators::RejectRequest, operators::SettingsView, operators::SettingsChange,
    )),
    modifiers(&BearerSchemes),
    tags((name = "clients", description = "Registration and a client's own payouts"),
         (name = "operators", description = "Behind ADMIN_TOKEN"))
)]
pub struct ApiDoc;

/// The two bearer credentials: a client's key and the operators' `ADMIN_TOKEN`.
struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["client_key", "admin_token"] {
            components.add_security_scheme(name, SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        }
    }
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
