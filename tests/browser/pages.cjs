// The client and operator pages in a real browser (Debian's Chromium, driven by playwright-core):
// "Log in with Telegram" through the sandbox's login page, registration with a refused field and what was typed kept, the threshold field hidden for
// instant, the private status page, and the admin console from login to a saved threshold.
// Usage: node pages.cjs <base_url> <admin_token> <client_id> <owner_telegram_id> [retry|approve <batch_id>].
// With an action it also clicks that batch's Retry or Approve button in the console.
// Exits non-zero at the first failure.
const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');

const [base, adminToken, clientId, ownerId, action, batchId] = process.argv.slice(2);
const XMR = '44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A';

function check(condition, what) {
  if (!condition) throw new Error(`page check failed: ${what}`);
  console.log(`ok: ${what}`);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  try {
    const page = await (await browser.newContext()).newPage();

    await page.goto(`${base}/register`);
    check(!(await page.isVisible('#client_id')), 'the form waits for a Telegram login');
    await Promise.all([page.waitForNavigation(), page.click('#telegram_login')]);
    await page.fill('input[name=user_id]', ownerId);
    await page.fill('input[name=username]', 'owner' + ownerId);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    check(page.url().startsWith(`${base}/register?`), 'the login comes back to /register');
    check((await page.textContent('#logged_in')).includes('@owner' + ownerId), 'the form is bound to the Telegram user');
    await page.selectOption('#payout_strategy', 'instant');
    check(!(await page.isVisible('#payout_threshold_usd')), 'the threshold field hides for instant');
    await page.selectOption('#payout_strategy', 'threshold');
    check(await page.isVisible('#payout_threshold_usd'), 'the threshold field shows for threshold');

    await page.fill('#client_id', clientId);
    await page.fill('#payout_threshold_usd', '150');
    await page.fill('#payout_currency', 'xmr');
    await page.fill('#wallet_address', '44-not-a-monero-address');
    const refused = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    check(refused[0].status() === 422, 'a bad wallet is refused with 422');
    const walletLabel = await page.textContent('label[for=wallet_address]');
    check(/not a valid xmr address/.test(walletLabel), 'the error stands next to the wallet field');
    check((await page.inputValue('#client_id')) === clientId, 'what was typed is kept');
    check((await page.inputValue('#payout_threshold_usd')) === '150', 'the threshold typed is kept');

    await page.fill('#wallet_address', XMR);
    const created = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    check(created[0].status() === 201, 'registration succeeds');
    const link = await page.getAttribute('#status_link', 'href');
    check(link.startsWith(`/clients/${clientId}?key=ck_`), 'the private status link is shown');
    await page.click('#status_link');
    check(await page.isVisible('#progress'), 'the status page shows the progress bar');
    check((await page.textContent('h1')).includes(clientId), 'the status page names the channel');

    const admin = await (await browser.newContext()).newPage();
    await admin.goto(`${base}/admin`);
    check(admin.url().endsWith('/admin/login'), 'the console asks for a login');
    await admin.fill('#token', adminToken);
    await Promise.all([admin.waitForNavigation(), admin.click('button[type=submit]')]);
    check(admin.url().endsWith('/admin'), 'the token opens the console');
    const cookies = await admin.context().cookies();
    const session = cookies.find((c) => c.name === 'admin_session');
    check(session && session.httpOnly && session.sameSite === 'Strict', 'the session cookie is HttpOnly and SameSite=Strict');
    await admin.fill('#micro_batch_threshold_usd', '33.30');
    await Promise.all([admin.waitForNavigation(), admin.click('form[action="/admin/settings"] button[type=submit]')]);
    check((await admin.textContent('[role=status]')).includes('Thresholds saved'), 'the thresholds form saves');
    check((await admin.textContent('#micro_batch_threshold')).trim() === '33.30', 'the new threshold is shown');
    if (action && batchId) {
      const says = { retry: 'Retry sent', approve: 'Approval sent' }[action];
      await Promise.all([admin.waitForNavigation(), admin.click(`form[action="/admin/batches/${batchId}/${action}"] button[type=submit]`)]);
      check((await admin.textContent('[role=status]')).includes(says), `the ${action} button acts on the batch`);
    }
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
