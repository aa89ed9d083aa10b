//! Wallet address checks for the networks clients are paid on. An address that fails here would
//! be refused by ChangeNow at payout time, days after the client was set up, or worse, accepted
//! and lost; so the operator CLI refuses it at once.
//!
//! - `eth` (ETH and ERC-20 tokens): `0x` + 40 hex digits; a mixed-case address must carry a valid
//!   EIP-55 checksum. Stored in its checksummed form.
//! - `xmr`: Monero's block base58 with a Keccak-256 checksum; standard, sub- and integrated
//!   addresses of mainnet.
//! - `btc`: base58check (P2PKH `1...`, P2SH `3...`) or segwit bech32 / bech32m (`bc1...`).

use sha2::Digest;
use sha3::Keccak256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("network '{0}' is not supported (supported: eth, xmr, btc)")]
    UnsupportedNetwork(String),
    #[error("'{address}' is not a valid {network} address: {reason}")]
    Invalid { network: &'static str, address: String, reason: &'static str },
}

/// Validates `address` for `network` and returns its canonical form.
pub fn validate(network: &str, address: &str) -> Result<String, AddressError> {
    let address = address.trim();
    match network.to_ascii_lowercase().as_str() {
        "eth" | "erc20" => eth(address),
        "xmr" => xmr(address).map(|()| address.to_owned()),
        "btc" => btc(address),
        other => Err(AddressError::UnsupportedNetwork(other.to_owned())),
    }
}

fn invalid(network: &'static str, address: &str, reason: &'static str) -> AddressError {
    AddressError::Invalid { network, address: address.to_owned(), reason }
}

/// The EIP-55 form of a 40-hex-digit body: a letter is upper case where the nibble of
/// keccak256(lowercase hex) at its position is 8 or more.
pub fn eip55_checksum(hex_body: &str) -> String {
    let lower = hex_body.to_ascii_lowercase();
    let hash = Keccak256::digest(lower.as_bytes());
    let mut out = String::from("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (hash[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0x0f;
        out.push(if nibble >= 8 { c.to_ascii_uppercase() } else { c });
    }
    out
}

fn eth(address: &str) -> Result<String, AddressError> {
    let body = address.strip_prefix("0x").ok_or_else(|| invalid("eth", address, "must start with 0x"))?;
    if body.len() != 40 || !body.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid("eth", address, "must be 0x followed by 40 hex digits"));
    }
    let checksummed = eip55_checksum(body);
    let single_case = body == body.to_ascii_lowercase() || body == body.to_ascii_uppercase();
    if !single_case && checksummed != address {
        return Err(invalid("eth", address, "EIP-55 checksum mismatch (a mistyped character?)"));
    }
    if body.chars().all(|c| c == '0') {
        return Err(invalid("eth", address, "is the zero address"));
    }
    Ok(checksummed)
}

const XMR_ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/// Monero base58 encodes 8-byte blocks as 11 characters; a final short block of n bytes takes
/// this many characters.
const XMR_BLOCK_CHARS: [usize; 9] = [0, 2, 3, 5, 6, 7, 9, 10, 11];

fn xmr_decode(address: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(address.len() * 8 / 11 + 8);
    for block in address.as_bytes().chunks(11) {
        let size = XMR_BLOCK_CHARS.iter().position(|&chars| chars == block.len())?;
        let mut value: u128 = 0;
        for &c in block {
            let digit = XMR_ALPHABET.iter().position(|&a| a == c)? as u128;
            value = value.checked_mul(58)?.checked_add(digit)?;
        }
        if size < 8 && value >> (8 * size) != 0 {
            return None;
        }
        let bytes = (value as u64).to_be_bytes();
        if size == 8 && value > u64::MAX as u128 {
            return None;
        }
        out.extend_from_slice(&bytes[8 - size..]);
    }
    Some(out)
}

fn xmr(address: &str) -> Result<(), AddressError> {
    // Mainnet prefixes: 18 standard, 42 subaddress (95 chars), 19 integrated (106 chars).
    let expected_len = match address.len() {
        95 | 106 => address.len(),
        _ => return Err(invalid("xmr", address, "must be 95 (standard, subaddress) or 106 (integrated) characters")),
    };
    let data = xmr_decode(address).ok_or_else(|| invalid("xmr", address, "is not Monero base58"))?;
    let (payload, checksum) = data.split_at(data.len() - 4);
    if Keccak256::digest(payload)[..4] != *checksum {
        return Err(invalid("xmr", address, "checksum mismatch (a mistyped character?)"));
    }
    match (payload.first(), expected_len) {
        (Some(18 | 42), 95) | (Some(19), 106) => Ok(()),
        _ => Err(invalid("xmr", address, "is not a Monero mainnet address")),
    }
}

fn btc(address: &str) -> Result<String, AddressError> {
    if address.to_ascii_lowercase().starts_with("bc1") {
        return bech32_segwit(address).map(|()| address.to_ascii_lowercase());
    }
    let decoded = bs58::decode(address)
        .with_check(None)
        .into_vec()
        .map_err(|_| invalid("btc", address, "base58check checksum mismatch or bad character"))?;
    match (decoded.len(), decoded.first()) {
        (21, Some(0x00 | 0x05)) => Ok(address.to_owned()),
        _ => Err(invalid("btc", address, "is not a mainnet P2PKH or P2SH address")),
    }
}

const BECH32_CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const BECH32_CONST: u32 = 1;
const BECH32M_CONST: u32 = 0x2bc8_30a3;

fn bech32_polymod(values: impl Iterator<Item = u8>) -> u32 {
    const GEN: [u32; 5] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3];
    let mut chk: u32 = 1;
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

fn bech32_segwit(address: &str) -> Result<(), AddressError> {
    if address != address.to_ascii_lowercase() && address != address.to_ascii_uppercase() {
        return Err(invalid("btc", address, "mixes upper and lower case"));
    }
    let lower = address.to_ascii_lowercase();
    let data_part = &lower[3..];
    if !(14..=87).contains(&lower.len()) || data_part.len() < 7 {
        return Err(invalid("btc", address, "has the wrong length"));
    }
    let data: Vec<u8> = data_part
        .bytes()
        .map(|c| BECH32_CHARSET.iter().position(|&x| x == c).map(|p| p as u8))
        .collect::<Option<_>>()
        .ok_or_else(|| invalid("btc", address, "has a character outside bech32"))?;
    let hrp_expanded = [3u8, 3, 0, 2, 3]; // "bc" expanded: high bits, 0, low bits
    let checksum = bech32_polymod(hrp_expanded.into_iter().chain(data.iter().copied()));
    let witness_version = data[0];
    let expected = if witness_version == 0 { BECH32_CONST } else { BECH32M_CONST };
    if checksum != expected || witness_version > 16 {
        return Err(invalid("btc", address, "bech32 checksum mismatch (a mistyped character?)"));
    }
    // Program length in bytes: (5-bit groups * 5) / 8, without the version and the checksum.
    let program_bytes = (data.len() - 7) * 5 / 8;
    let valid_length = match witness_version {
        0 => program_bytes == 20 || program_bytes == 32,
        _ => (2..=40).contains(&program_bytes),
    };
    if !valid_length {
        return Err(invalid("btc", address, "has a witness program of the wrong length"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const XMR_GENERAL_FUND: &str = "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A";

    #[test]
    fn eth_addresses_follow_eip55() {
        // Vectors from EIP-55 itself.
        for good in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            assert_eq!(validate("eth", good), Ok(good.to_owned()));
        }
        // Lower case carries no checksum: accepted and stored checksummed.
        assert_eq!(
            validate("eth", "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"),
            Ok("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266".to_owned())
        );
        for bad in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD",
            "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA",
            "0xZZAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0x0000000000000000000000000000000000000000",
        ] {
            assert!(validate("eth", bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn xmr_addresses_carry_a_keccak_checksum() {
        assert!(validate("xmr", XMR_GENERAL_FUND).is_ok());
        let mut typo = XMR_GENERAL_FUND.to_owned();
        typo.replace_range(94..95, "B");
        assert!(validate("xmr", &typo).is_err());
        assert!(validate("xmr", &XMR_GENERAL_FUND[..94]).is_err());
        assert!(validate("xmr", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").is_err());
    }

    #[test]
    fn btc_addresses_in_every_mainnet_form() {
        for good in [
            "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
            "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
            // taproot, bech32m (BIP-350's test vector)
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        ] {
            assert!(validate("btc", good).is_ok(), "{good} should be accepted");
        }
        for bad in [
            "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb",
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",
            "bc1qw508d6qejxtdg4Y5r3zarvary0c5xw7kv8f3t4",
            "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx",
            // the same taproot program with a bech32 (not bech32m) checksum
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
        ] {
            assert!(validate("btc", bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn unknown_networks_are_named() {
        assert_eq!(validate("doge", "D..."), Err(AddressError::UnsupportedNetwork("doge".into())));
    }
}
