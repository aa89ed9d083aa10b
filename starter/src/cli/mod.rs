//! The operator CLI's commands, one module per subject.

pub mod clients;
pub mod conversions;
pub mod early_payout;
pub mod instant_payouts;
pub mod payments;
pub mod payout_batches;
pub mod route_payment;
pub mod schedules;
pub mod test_ipn;
pub mod threshold;
pub mod verify_payment;
