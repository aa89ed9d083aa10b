// Makes ipn_signatures.json: IPN bodies and their x-nowpayments-sig, computed by Node's own
// JSON.stringify in both of the ways NOWPayments documents, so the Rust check is pinned to what
// JavaScript produces (number forms such as 1e-7, string escapes, key order) and not to our
// reading of it. Run from the repository root and commit the output:
//
//     node starter/tests/vectors/ipn_signatures.js > starter/tests/vectors/ipn_signatures.json
'use strict';
const crypto = require('crypto');

const SECRET = 'test-ipn-secret-Ω';

// The help pages' form: keys sorted at every depth (their sortObject), then JSON.stringify.
function sortObject(obj) {
  return Object.keys(obj).sort().reduce((result, key) => {
    result[key] = obj[key] && typeof obj[key] === 'object' ? sortObject(obj[key]) : obj[key];
    return result;
  }, {});
}

const FORMS = {
  recursive_sort: (params) => JSON.stringify(sortObject(params)),
  // The API reference's form: the sorted top-level keys are a replacer whitelist, applied at
  // every depth, so a nested object keeps only keys that are also top-level keys.
  top_level_key_list: (params) => JSON.stringify(params, Object.keys(params).sort()),
};

const CASES = {
  // A current IPN: nested `fee` object whose keys are not top-level keys, nulls, 1e-7.
  ipn_with_nested_fee: {
    payment_id: 5077125051,
    invoice_id: null,
    payment_status: 'finished',
    pay_address: '0x000000000000000000000000000000000000dEaD',
    payin_extra_id: null,
    price_amount: 170.1,
    price_currency: 'usd',
    pay_amount: 0.0512345678901234,
    actually_paid: 1e-7,
    actually_paid_at_fiat: 0,
    pay_currency: 'eth',
    order_id: 'PGP-6271402111|-1002345678901',
    order_description: 'Канал «VIP» 🚀 "quoted" \\ / \n\t\u0001',
    purchase_id: '5837122679',
    outcome_amount: 0.049,
    outcome_currency: 'eth',
    payment_extra_ids: null,
    fee: { currency: 'eth', depositFee: 1e-7, withdrawalFee: 0, serviceFee: 0.0001 },
  },
  // A nested object sharing some keys with the top level: those survive, in the list's order.
  nested_keys_shared_with_the_top_level: {
    payment_id: 42,
    order_id: 'PGP-1|c1',
    fee: { payment_id: 7, zeta: 1, order_id: null, fee: { fee: 1e21, other: 2 } },
    amounts: [{ payment_id: 1, dropped: true }, 2.5e-7, null, 'ß'],
  },
  // Keys outside the BMP sort by UTF-16 code units in JavaScript, not by UTF-8 bytes.
  non_ascii_keys: {
    'ｚ': 'fullwidth z',
    '😀': 'emoji',
    'é': 1e-7,
    a: { 'ｚ': 1, '😀': 2, a: -0.5, b: 'not a top-level key' },
  },
};

const vectors = [];
for (const [name, params] of Object.entries(CASES)) {
  for (const [form, signedText] of Object.entries(FORMS)) {
    // The recursive form turns arrays into objects ({"0": ...}); IPNs carry no arrays, so the
    // case with an array is only a vector of the key-list form.
    if (form === 'recursive_sort' && name === 'nested_keys_shared_with_the_top_level') continue;
    const text = signedText(params);
    const signature = crypto.createHmac('sha512', SECRET).update(text).digest('hex');
    // The body goes on the wire in NOWPayments' own key order, not sorted.
    vectors.push({ name, form, secret: SECRET, body: JSON.stringify(params), signed_text: text, signature });
  }
}
process.stdout.write(JSON.stringify({ generator: 'node ' + process.version, vectors }, null, 2) + '\n');
