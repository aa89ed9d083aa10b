//! Pure business rules: no I/O, no clock, no randomness. Unit- and property-tested.

pub mod base_units;
pub mod exchange;
pub mod fees;
pub mod instant_payout;
pub mod payment;
pub mod payment_verification;
pub mod payout_parts;
pub mod proportional_split;
pub mod stablecoin;

pub use base_units::{from_base_units, to_base_units, BaseUnitError, ChainAsset};
pub use exchange::{ExchangePair, ExchangeStatus};
pub use fees::{FeeError, FeeSplit, PlatformFee};
pub use instant_payout::{InstantPayoutStatus, RangeVerdict};
pub use payment::{PaymentStatus, PayoutStrategy, UnknownVariant, PRICE_CURRENCY, SETTLEMENT_CURRENCY};
pub use payment_verification::{PaymentFacts, RecordProgress};
pub use payout_parts::{split_into_exchanges, PartsError};
pub use proportional_split::{split_proportionally, SplitError};
pub use stablecoin::Stablecoin;
