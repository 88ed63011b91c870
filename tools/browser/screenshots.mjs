// Screenshots of ECOM's pages at phone and desktop widths, signed in where needed.
// Usage: node screenshots.mjs http://127.0.0.1:8080 out-dir
// Expects `ECOM_RATE_LIMITS=false ecom serve --demo` on that address (it signs in many times;
// demo logins, password demo-password).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const base = new URL(process.argv[2] ?? "http://127.0.0.1:8080");
const out = process.argv[3] ?? "screenshots";
mkdirSync(out, { recursive: true });
const port = base.port;
const host = (h) => `http://${h}:${port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", `--host-resolver-rules=MAP *.localhost 127.0.0.1, MAP localhost 127.0.0.1`],
});

async function login(page, origin, area, email) {
  await page.goto(`${origin}${area}/login`);
  await page.fill("#email", email);
  await page.fill("#password", "demo-password");
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
}

// The storefront's sign-in page also has the header's search button: click the form's own.
async function shopperLogin(page) {
  await page.fill("#email", "shopper@demo.test");
  await page.fill("#password", "demo-password");
  await Promise.all([page.waitForNavigation(), page.click("form[action='/account/login'] button[type=submit]")]);
}

async function addToCart(page) {
  await Promise.all([page.waitForNavigation(), page.click("form.add-to-cart button")]);
}

async function fillCheckout(page) {
  await page.fill("#email", "pat@example.com");
  await page.fill("#name", "Pat Doe");
  await page.fill("#line1", "1 Main St");
  await page.fill("#city", "Springfield");
  await page.fill("#region", "IL");
  await page.fill("#postal_code", "62701");
  await page.fill("#card_number", "4242 4242 4242 4242");
  await Promise.all([page.waitForNavigation(), page.click("button[value=place]")]);
}

const shots = [
  { name: "storefront-home", url: host("demo.localhost") + "/" },
  { name: "storefront-collection", url: host("demo.localhost") + "/collections/knitwear?option.Color=Charcoal" },
  { name: "storefront-product", url: host("demo.localhost") + "/products/merino-crew-sweater?Size=M&Color=Forest" },
  { name: "acme-home", url: host("acme.localhost") + "/" },
  { name: "acme-category", url: host("acme.localhost") + "/categories/tools?sort=price-asc" },
  { name: "storefront-login", url: host("demo.localhost") + "/account/login" },
  { name: "storefront-signup-error", url: host("demo.localhost") + "/account/signup", act: async (p) => {
      await p.fill("#email", "x@example.com"); await p.fill("#password", "short12");
      await p.evaluate(() => document.querySelector("#password").removeAttribute("minlength"));
      await Promise.all([p.waitForNavigation(), p.click("button[type=submit]")]); } },
  { name: "storefront-account", url: host("demo.localhost") + "/account", login: ["demo.localhost", "/account", "shopper@demo.test"] },
  { name: "merchant-home", url: host("demo.localhost") + "/merchant", login: ["demo.localhost", "/merchant", "owner@demo.test"] },
  { name: "merchant-products", url: host("demo.localhost") + "/merchant/products", login: ["demo.localhost", "/merchant", "owner@demo.test"] },
  { name: "merchant-product-edit", url: host("demo.localhost") + "/merchant/products", login: ["demo.localhost", "/merchant", "owner@demo.test"],
    act: async (p) => { await p.click("table a"); await p.waitForURL(/products\/[0-9a-f-]{36}/); } },
  { name: "merchant-inventory", url: host("demo.localhost") + "/merchant/inventory", login: ["demo.localhost", "/merchant", "owner@demo.test"] },
  { name: "storefront-checkout", url: host("demo.localhost") + "/products/merino-crew-sweater?Size=M&Color=Forest",
    act: async (p) => { await addToCart(p); await p.goto(host("demo.localhost") + "/checkout"); } },
  { name: "storefront-order", url: host("demo.localhost") + "/products/merino-crew-sweater?Size=M&Color=Forest",
    act: async (p) => { await addToCart(p); await p.goto(host("demo.localhost") + "/checkout"); await fillCheckout(p); } },
  { name: "merchant-orders", url: host("demo.localhost") + "/merchant/orders", login: ["demo.localhost", "/merchant", "owner@demo.test"] },
  { name: "merchant-order", url: host("demo.localhost") + "/merchant/orders/1001", login: ["demo.localhost", "/merchant", "owner@demo.test"] },
  { name: "merchant-customers", url: host("demo.localhost") + "/merchant/customers", login: ["demo.localhost", "/merchant", "owner@demo.test"] },
  { name: "merchant-audit", url: host("demo.localhost") + "/merchant/audit", login: ["demo.localhost", "/merchant", "owner@demo.test"] },
  { name: "merchant-checkout-settings", url: host("demo.localhost") + "/merchant/settings/checkout", login: ["demo.localhost", "/merchant", "owner@demo.test"] },
  { name: "account-orders", url: host("demo.localhost") + "/account/orders", login: ["demo.localhost", "/account", "shopper@demo.test"] },
  { name: "merchant-settings", url: host("acme.localhost") + "/merchant/settings", login: ["acme.localhost", "/merchant", "owner@acme.test"] },
  { name: "admin-home", url: host("localhost") + "/admin", login: ["localhost", "/admin", "admin@ecom.test"] },
  { name: "admin-mailbox", url: host("localhost") + "/admin/mailbox", login: ["localhost", "/admin", "admin@ecom.test"] },
  { name: "admin-stores", url: host("localhost") + "/admin/stores", login: ["localhost", "/admin", "admin@ecom.test"] },
  { name: "admin-audit", url: host("localhost") + "/admin/audit", login: ["localhost", "/admin", "admin@ecom.test"] },
  { name: "merchant-api", url: host("demo.localhost") + "/merchant/settings/api", login: ["demo.localhost", "/merchant", "owner@demo.test"] },
  { name: "merchant-integrations", url: host("demo.localhost") + "/merchant/dead-letters", login: ["demo.localhost", "/merchant", "owner@demo.test"] },
  { name: "admin-dead-letters", url: host("localhost") + "/admin/dead-letters", login: ["localhost", "/admin", "admin@ecom.test"] },
  { name: "merchant-notifications", url: host("demo.localhost") + "/merchant/notifications", login: ["demo.localhost", "/merchant", "owner@demo.test"] },
  { name: "admin-notifications", url: host("localhost") + "/admin/notifications", login: ["localhost", "/admin", "admin@ecom.test"] },
  { name: "unknown-store-404", url: host("nope.localhost") + "/" },
  { name: "platform-signup", url: host("localhost") + "/signup", act: async (p) => {
      await p.fill("#store_name", "Fjord & Fell Outdoor");
      await p.waitForSelector("#slug-status.ok"); } },
  { name: "platform-signup-taken", url: host("localhost") + "/signup", act: async (p) => {
      await p.fill("#slug", "demo");
      await p.waitForSelector("#slug-status.bad"); } },
  { name: "merchant-welcome", url: host("localhost") + "/signup", act: async (p) => {
      await p.fill("#store_name", "Fjord Fell " + Date.now().toString(36));
      await p.waitForSelector("#slug-status.ok");
      await p.fill("#name", "Ada Merchant"); await p.fill("#email", "ada@example.com");
      await p.fill("#password", "a long enough password");
      await Promise.all([p.waitForNavigation(), p.click("button[type=submit]")]);
      await Promise.all([p.waitForURL(/\/merchant\?welcome=1/), p.click("#to-panel")]); } },
  // Webhooks: subscribe WEBHOOK_URL (a receiver you run; the server needs
  // ECOM_ALLOW_PRIVATE_NETWORK=true for a local one), shown with its secret once…
  { name: "merchant-webhooks", url: host("demo.localhost") + "/merchant/settings/webhooks", login: ["demo.localhost", "/merchant", "owner@demo.test"],
    act: async (p) => {
      await p.fill("#callback-url", process.env.WEBHOOK_URL ?? "http://127.0.0.1:9999/hooks");
      await p.check("input[value='order.placed']"); await p.check("input[value='order.paid']");
      await Promise.all([p.waitForNavigation(), p.click("form[action='/merchant/settings/webhooks'] button[type=submit]")]); } },
  // …then an order is placed and the subscription's delivery log shown.
  { name: "merchant-webhook-log", url: host("demo.localhost") + "/products/merino-crew-sweater?Size=M&Color=Forest",
    act: async (p) => {
      await addToCart(p); await p.goto(host("demo.localhost") + "/checkout"); await fillCheckout(p);
      await p.waitForTimeout(1500);
      await login(p, host("demo.localhost"), "/merchant", "owner@demo.test");
      await p.goto(host("demo.localhost") + "/merchant/settings/webhooks");
      await Promise.all([p.waitForNavigation(), p.click("td.actions a")]); } },
  // Notification centre: the signed-in shopper orders, then their inbox (bell in the
  // header), the staff inbox with the new order, and the shopper's preferences.
  { name: "account-inbox", url: host("demo.localhost") + "/account/login",
    act: async (p) => {
      await shopperLogin(p);
      await p.goto(host("demo.localhost") + "/products/merino-crew-sweater?Size=M&Color=Forest");
      await addToCart(p); await p.goto(host("demo.localhost") + "/checkout"); await fillCheckout(p);
      await p.waitForTimeout(2000);
      await p.goto(host("demo.localhost") + "/account/inbox"); } },
  { name: "merchant-inbox", url: host("demo.localhost") + "/merchant/inbox", login: ["demo.localhost", "/merchant", "owner@demo.test"] },
  { name: "account-notifications", url: host("demo.localhost") + "/account/login",
    act: async (p) => { await shopperLogin(p); await p.goto(host("demo.localhost") + "/account/notifications"); } },
];
// EMAIL_HTML=file.html adds a shot of that email (e.g. an order confirmation as sent).
if (process.env.EMAIL_HTML) shots.push({ name: "email", url: `file://${process.env.EMAIL_HTML}` });

for (const [label, viewport] of [["phone", { width: 390, height: 844 }], ["desktop", { width: 1280, height: 800 }]]) {
  // SHOTS=name,name takes only those.
  const only = process.env.SHOTS ? process.env.SHOTS.split(",") : null;
  for (const s of shots.filter((s) => !only || only.includes(s.name))) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    if (s.login) await login(page, host(s.login[0]), s.login[1], s.login[2]);
    await page.goto(s.url);
    if (s.act) await s.act(page);
    await page.screenshot({ path: `${out}/${s.name}-${label}.png`, fullPage: true });
    await context.close();
  }
}
await browser.close();
console.log(`screenshots written to ${out}/`);
