// End-to-end walk through a demo store in headless Chromium:
// home → collection → product → variant change; the web app manifest, the service
// worker and Chromium's installability check; then the server is stopped and the
// offline page must be served. In between it checks out with a test card and finds
// the order in the merchant panel.
// Usage: node e2e.mjs http://127.0.0.1:PORT SERVER_PID
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [base, pid] = [new URL(process.argv[2]), Number(process.argv[3])];
const origin = `http://demo.localhost:${base.port}`;
const fail = (msg) => { console.error(`FAIL: ${msg}`); process.exit(1); };
const ok = (msg) => console.log(`ok: ${msg}`);

// A persistent profile: Chromium never offers to install apps in incognito contexts.
const profile = mkdtempSync(join(tmpdir(), "ecom-e2e-"));
const context = await chromium.launchPersistentContext(profile, {
  viewport: { width: 1280, height: 900 },
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--host-resolver-rules=MAP *.localhost 127.0.0.1, MAP localhost 127.0.0.1"],
});
try {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

  await page.goto(`${origin}/`);
  if (!(await page.title()).includes("Demo Outfitters")) fail(`home title: ${await page.title()}`);
  ok("home");
  await Promise.all([page.waitForURL(/\/collections\//), page.click(".collection-tiles a")]);
  const heading = await page.textContent("h1");
  ok(`collection "${heading}"`);
  await Promise.all([page.waitForURL(/\/products\//), page.click(".card-product a")]);
  const title = await page.textContent(".buy h1");
  ok(`product "${title}"`);
  const colorLegend = page.locator("fieldset legend", { hasText: "Color" });
  if (await colorLegend.count() === 0) fail("product has no Color option");
  const before = await colorLegend.textContent();
  const chips = page.locator("fieldset:has(legend:has-text('Color')) label.chip");
  const target = (await chips.count()) > 1 ? chips.nth(1) : chips.nth(0);
  const wanted = (await target.textContent()).trim();
  await target.click();
  await Promise.all([page.waitForURL(/Color=/), page.click("button:has-text('Show this option')")]);
  const after = await page.locator("fieldset legend", { hasText: "Color" }).textContent();
  if (!after.includes(wanted)) fail(`variant change: wanted ${wanted}, legend says ${after} (was ${before})`);
  ok(`variant changed to ${wanted}`);

  const getJson = (path) => page.evaluate((p) => fetch(p).then((r) => r.json()), path);
  const manifest = await getJson("/manifest.webmanifest");
  if (manifest.name !== "Demo Outfitters" || manifest.display !== "standalone") fail(`manifest ${JSON.stringify(manifest)}`);
  for (const size of ["192x192", "512x512"]) if (!manifest.icons.some((i) => i.sizes === size)) fail(`no ${size} icon`);
  const merchant = await getJson("/merchant/manifest.webmanifest");
  if (merchant.start_url !== "/merchant") fail(`merchant manifest ${JSON.stringify(merchant)}`);
  ok("manifests");

  const active = await page.evaluate(() => navigator.serviceWorker.ready.then((r) => !!r.active));
  if (!active) fail("service worker not active");
  await page.reload();
  const controlled = await page.evaluate(() => !!navigator.serviceWorker.controller);
  if (!controlled) fail("page not controlled by the service worker");
  ok("service worker active and controlling");

  const cdp = await context.newCDPSession(page);
  const { installabilityErrors } = await cdp.send("Page.getInstallabilityErrors");
  if (installabilityErrors.length) fail(`not installable: ${JSON.stringify(installabilityErrors)}`);
  ok("Chromium finds the storefront installable");

  // Checkout: add to cart → checkout with a test card → confirmation → merchant panel.
  if (await page.locator("form.add-to-cart").count() === 0) {
    await page.goto(`${origin}/products/merino-crew-sweater?Size=M&Color=Forest`);
  }
  await Promise.all([page.waitForURL(/\/cart$/), page.click("form.add-to-cart button")]);
  await Promise.all([page.waitForURL(/\/checkout$/), page.click("a:has-text('Check out')")]);
  await page.fill("#email", "e2e@example.com");
  await page.fill("#name", "Eve Tester");
  await page.fill("#line1", "1 Main St");
  await page.fill("#city", "Springfield");
  await page.fill("#region", "IL");
  await page.fill("#postal_code", "62701");
  await page.fill("#card_number", "4242 4242 4242 4242");
  await Promise.all([page.waitForURL(/\/orders\//), page.click("button[value=place]")]);
  const orderHeading = await page.textContent("h1");
  const number = (orderHeading.match(/#\d+/) || [])[0];
  if (!number) fail(`no order number on the confirmation page: ${orderHeading}`);
  if (!(await page.textContent("body")).includes("Paid")) fail("order not paid on the confirmation page");
  ok(`order ${number} placed and paid with a test card`);
  const panel = await context.newPage();
  await panel.goto(`${origin}/merchant/login`);
  await panel.fill("#email", "owner@demo.test");
  await panel.fill("#password", "demo-password");
  await Promise.all([panel.waitForNavigation(), panel.click("button[type=submit]")]);
  await panel.goto(`${origin}/merchant/orders`);
  const list = await panel.textContent("main");
  if (!list.includes(number) || !list.includes("e2e@example.com")) fail(`order ${number} not in the merchant panel`);
  ok(`order ${number} appears in the merchant panel`);
  await panel.close();

  // Failed requests once the server is gone are expected; errors before are not.
  const errorsWhileOnline = errors.slice();
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 50; i++) {
    try { await fetch(`${base}healthz`); await new Promise((r) => setTimeout(r, 100)); } catch { break; }
  }
  await page.goto(`${origin}/products`);
  const body = await page.textContent("body");
  if (!body.includes("You are offline")) fail(`offline page not shown: ${body.slice(0, 200)}`);
  ok("offline page served with the server down");
  if (errorsWhileOnline.length) fail(`browser errors: ${errorsWhileOnline.join(" | ")}`);
  console.log("e2e: all checks passed");
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
