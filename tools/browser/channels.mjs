// Screenshots of the phone form and the push buttons (account and merchant panel) at
// 390 px and 1280 px. Usage: node channels.mjs http://127.0.0.1:8080 out-dir
// Expects `ECOM_RATE_LIMITS=false ecom serve --demo` on that address.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const base = new URL(process.argv[2] ?? "http://127.0.0.1:8080");
const out = process.argv[3] ?? "screenshots";
mkdirSync(out, { recursive: true });
const origin = `http://demo.localhost:${base.port}`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--host-resolver-rules=MAP *.localhost 127.0.0.1"],
});

async function login(page, area, email) {
  await page.goto(`${origin}${area}/login`);
  await page.fill("#email", email);
  await page.fill("#password", "demo-password");
  await Promise.all([page.waitForNavigation(), page.click("form[action$='/login'] button[type=submit]")]);
}

for (const width of [390, 1280]) {
  const ctx = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await ctx.newPage();
  await login(page, "/account", "shopper@demo.test");
  await page.goto(`${origin}/account`);
  await page.waitForTimeout(800);
  await page.screenshot({ path: `${out}/account-phone-${width}.png`, fullPage: true });
  if (width === 390) {
    await page.fill("#phone-number", "+44 7700 900123");
    await Promise.all([page.waitForNavigation(), page.click("form[action='/account/phone'] button")]);
  } else {
    await page.goto(`${origin}/account`);
  }
  await page.waitForTimeout(800);
  await page.screenshot({ path: `${out}/account-code-${width}.png`, fullPage: true });
  await page.fill("#phone-code", "123456");
  await Promise.all([page.waitForNavigation(), page.click("form[action='/account/phone/verify'] button")]);
  await page.screenshot({ path: `${out}/account-wrong-code-${width}.png`, fullPage: true });
  const staff = await (await browser.newContext({ viewport: { width, height: 900 } })).newPage();
  await login(staff, "/merchant", "owner@demo.test");
  await staff.goto(`${origin}/merchant`);
  await staff.waitForTimeout(800);
  await staff.screenshot({ path: `${out}/merchant-push-${width}.png`, fullPage: true });
}
await browser.close();
