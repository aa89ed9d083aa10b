//! anvil's (and hardhat's) funded dev accounts. Their keys come from a public mnemonic
//! (`test test ... junk`): whatever they hold on a real chain is swept by bots within seconds, so
//! the hot wallet refuses them anywhere but on anvil. Compared by address, so no key is listed.

use alloy::primitives::{address, Address};

/// anvil's default chain id: the only chain these accounts may be used on.
pub const ANVIL_CHAIN_ID: u64 = 31337;

/// Accounts 0 to 9 of the mnemonic, in anvil's order.
const ANVIL_DEV_ACCOUNTS: [Address; 10] = [
    address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
    address!("70997970C51812dc3A010C7d01b50e0d17dc79C8"),
    address!("3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
    address!("90F79bf6EB2c4f870365E785982E1f101E93b906"),
    address!("15d34AAf54267DB7D7c367839AAf71A00a2C6A65"),
    address!("9965507D1a55bcC2695C58ba16FB37d819B0A4dc"),
    address!("976EA74026E726554dB657fA54763abd0C3a0aa9"),
    address!("14dC79964da2C08b23698B3D3cc7Ca32193d9955"),
    address!("23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"),
    address!("a0Ee7A142d267C1f36714E4a8F75612F20a79720"),
];

/// Which of anvil's dev accounts `account` is, if it is one.
pub fn anvil_dev_account(account: Address) -> Option<usize> {
    ANVIL_DEV_ACCOUNTS.iter().position(|dev| *dev == account)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;
    use std::str::FromStr;

    #[test]
    fn the_first_and_last_dev_keys_are_recognised_and_others_are_not() {
        let first = PrivateKeySigner::from_str("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80").unwrap();
        assert_eq!(anvil_dev_account(first.address()), Some(0));
        let last = PrivateKeySigner::from_str("0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6").unwrap();
        assert_eq!(anvil_dev_account(last.address()), Some(9));
        assert_eq!(anvil_dev_account(Address::from([0x42; 20])), None);
    }
}
