//! Pure business rules: no I/O, no clock, no randomness. Unit- and property-tested.

pub mod fees;
pub mod payment;

pub use fees::{FeeError, FeeSplit, PlatformFee};
pub use payment::{PaymentStatus, PayoutStrategy, UnknownVariant};
