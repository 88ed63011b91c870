// Screenshots of the staff pages at phone and desktop widths: the team page, the
// invite form (with a refusal), the accept page an invited person opens, and the
// 403 page a member sees outside their areas.
// Usage: node staff-shots.mjs http://127.0.0.1:8080 out-dir
// Expects `ECOM_RATE_LIMITS=false ecom serve --demo` on that address.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const base = new URL(process.argv[2] ?? "http://127.0.0.1:8080");
const out = process.argv[3] ?? "screenshots";
mkdirSync(out, { recursive: true });
const store = `http://demo.localhost:${base.port}`;
const platform = `http://localhost:${base.port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--host-resolver-rules=MAP *.localhost 127.0.0.1, MAP localhost 127.0.0.1"],
});

async function login(page, origin, area, email, password = "demo-password") {
  await page.goto(`${origin}${area}/login`);
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
}

async function invite(page, email, role, areas) {
  await page.goto(`${store}/merchant/settings/staff/invite`);
  await page.fill("#invite-email", email);
  await page.check(`input[name=role][value=${role}]`);
  for (const a of areas) await page.check(`input[name=area][value=${a}]`);
  await Promise.all([page.waitForNavigation(), page.click("form[action='/merchant/settings/staff/invite'] button[type=submit]")]);
}

/** The newest accept link mailed to `email`, read from the dev mailbox. */
async function acceptLink(email) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await login(page, platform, "/admin", "admin@ecom.test");
  await page.goto(`${platform}/admin/mailbox`);
  const text = await page.locator("article.mail", { hasText: `To ${email}` }).first().innerText();
  await ctx.close();
  return text.match(/http:\/\/\S+\/merchant\/invite\?token=[0-9a-f]{64}/)[0];
}

const stamp = Date.now().toString(36);
for (const [label, viewport] of [["phone", { width: 390, height: 844 }], ["desktop", { width: 1280, height: 800 }]]) {
  const owner = await (await browser.newContext({ viewport })).newPage();
  await login(owner, store, "/merchant", "owner@demo.test");
  const clerk = `clerk-${label}-${stamp}@example.com`;
  await invite(owner, clerk, "staff", ["orders", "customers"]);
  await invite(owner, `admin-${label}-${stamp}@example.com`, "admin", []);
  await owner.screenshot({ path: `${out}/staff-team-${label}.png`, fullPage: true });
  // The invite form, refused: a staff member with no area.
  await owner.goto(`${store}/merchant/settings/staff/invite`);
  await owner.fill("#invite-email", `nobody-${stamp}@example.com`);
  await Promise.all([owner.waitForNavigation(), owner.click("form[action='/merchant/settings/staff/invite'] button[type=submit]")]);
  await owner.screenshot({ path: `${out}/staff-invite-${label}.png`, fullPage: true });

  const link = (await acceptLink(clerk)).replace(/^http:\/\/[^/]+/, store);
  const person = await (await browser.newContext({ viewport })).newPage();
  await person.goto(link);
  await person.fill("#accept-name", "Casey Clerk");
  await person.screenshot({ path: `${out}/staff-accept-${label}.png`, fullPage: true });
  await person.fill("#accept-password", "a long enough password");
  await Promise.all([person.waitForNavigation(), person.click("button[type=submit]")]);
  await person.screenshot({ path: `${out}/staff-joined-${label}.png`, fullPage: true });
  await person.goto(`${store}/merchant/products`);
  await person.screenshot({ path: `${out}/staff-403-${label}.png`, fullPage: true });
}
await browser.close();
console.log(`screenshots written to ${out}/`);
