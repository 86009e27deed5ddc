// Drives Airlock's admin UI in Debian's headless Chromium through playwright-core.
// Started by tests/it/admin_ui.rs, which sets up the fake upstream, the held versions
// and the admin user, and checks what happens outside the browser afterwards.
//
// Input (environment): AIRLOCK_URL, AIRLOCK_ADMIN_NAME, AIRLOCK_ADMIN_PASSWORD,
// AIRLOCK_APPROVE ("name@version"), AIRLOCK_REJECT ("name@version"),
// AIRLOCK_ARTIFACTS (directory for screenshots), CHROMIUM (default /usr/bin/chromium).
// Output: one JSON line on stdout with what was seen; exit code 1 with a message on
// stderr at the first failed expectation.

import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = process.env.AIRLOCK_URL;
const name = process.env.AIRLOCK_ADMIN_NAME;
const password = process.env.AIRLOCK_ADMIN_PASSWORD;
const [approvePackage, approveVersion] = splitSpec(process.env.AIRLOCK_APPROVE);
const [rejectPackage, rejectVersion] = splitSpec(process.env.AIRLOCK_REJECT);
const artifacts = process.env.AIRLOCK_ARTIFACTS;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const admin = `${base}/-/airlock/admin`;

function splitSpec(spec) {
  const at = spec.lastIndexOf("@");
  return [spec.slice(0, at), spec.slice(at + 1)];
}

function expect(condition, message) {
  if (!condition) {
    throw new Error(`expectation failed: ${message}`);
  }
}

if (!existsSync(executablePath)) {
  console.error(`Chromium is not installed at ${executablePath}: apt-get install -y chromium`);
  process.exit(2);
}

mkdirSync(artifacts, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "airlock-chromium-"));
// A fresh profile directory (--user-data-dir) for every run.
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1440, height: 900 },
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const seen = {};
const consoleErrors = [];
try {
  const page = context.pages()[0] || (await context.newPage());
  // A CSP violation or a script error shows up here.
  page.on("console", (message) => {
    // Failed loads are the expected 401 of the wrong password and the favicon.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      consoleErrors.push(message.text());
    }
  });

  // Signed out: the queue sends us to the sign-in page.
  await page.goto(`${admin}/`);
  expect(page.url().endsWith("/-/airlock/admin/sign-in"), `redirected to sign-in, at ${page.url()}`);

  // A wrong password is refused.
  await page.fill("input[name=name]", name);
  await page.fill("input[name=password]", "not the password");
  const refused = await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  expect(refused[0].status() === 401, `wrong password answered ${refused[0].status()}`);
  expect((await page.textContent(".error")).includes("Wrong name or password"), "wrong password message");
  seen.wrong_password_status = refused[0].status();

  // Sign in.
  await page.fill("input[name=name]", name);
  await page.fill("input[name=password]", password);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  expect(page.url() === `${admin}/`, `signed in to the queue, at ${page.url()}`);
  const cookies = await context.cookies();
  const session = cookies.find((cookie) => cookie.name === "airlock_admin_session");
  expect(session && session.httpOnly && session.sameSite === "Strict", `session cookie flags: ${JSON.stringify(session)}`);

  // The queue: the held version is first, with its severity.
  const firstHeld = page.locator("section.queue-section").first().locator("tbody tr").first();
  seen.queue_first_row = (await firstHeld.innerText()).replace(/\s+/g, " ").trim();
  expect(seen.queue_first_row.includes(approvePackage) || seen.queue_first_row.includes(rejectPackage), `first held row: ${seen.queue_first_row}`);
  const heldRow = page.locator("section.queue-section").first().locator("tr", { hasText: approvePackage });
  expect((await heldRow.count()) === 1, "the held version is in the held section");
  expect((await heldRow.innerText()).includes(approveVersion), "the held row names the version");
  await page.screenshot({ path: join(artifacts, "admin-queue.png"), fullPage: true });

  // The detail page: the finding, the line, the diff.
  await Promise.all([page.waitForNavigation(), heldRow.locator("td.version a").click()]);
  expect((await page.textContent(".state.big")).trim() === "held", "the detail page shows held");
  const findings = await page.innerText("#findings");
  expect(findings.includes("phan@giftshop.club"), "a finding names the hidden recipient");
  expect(findings.includes("index.js:14"), "a finding names index.js:14");
  const highlighted = await page.innerText("#findings .excerpt .hit");
  expect(highlighted.includes("bcc: 'phan@giftshop.club'"), `the excerpt highlights the line: ${highlighted}`);
  const diff = await page.innerText("#diff");
  expect(diff.includes("+    bcc: 'phan@giftshop.club',"), "the diff shows the added line");
  const sourceMatch = await page.innerText("#source-match");
  expect(sourceMatch.includes("bcc: 'phan@giftshop.club'"), "the source match shows the line that is not in the repository");
  seen.detail_findings = findings.split("\n").slice(0, 12);
  await page.screenshot({ path: join(artifacts, "admin-detail.png"), fullPage: true });
  await page.screenshot({ path: join(artifacts, "admin-detail-top.png") });

  // A POST without the CSRF token is refused, and so is one with a wrong token.
  const withoutToken = await page.request.post(`${admin}/action`, {
    form: { package: approvePackage, version: approveVersion, action: "approve", comment: "no token" },
    maxRedirects: 0,
  });
  expect(withoutToken.status() === 403, `a POST without CSRF token answered ${withoutToken.status()}`);
  const wrongToken = await page.request.post(`${admin}/action`, {
    form: { csrf: "forged", package: approvePackage, version: approveVersion, action: "approve", comment: "forged" },
    maxRedirects: 0,
  });
  expect(wrongToken.status() === 403, `a POST with a wrong CSRF token answered ${wrongToken.status()}`);
  seen.csrf_refused = [withoutToken.status(), wrongToken.status()];

  // Approve with a comment (and confirm, if a critical finding asks for it).
  await page.fill("#decide textarea[name=comment]", "Reviewed the BCC line with the maintainer: test fixture");
  await Promise.all([page.waitForNavigation(), page.click("#decide button[value=approve]")]);
  if (await page.locator("form.confirm").count()) {
    seen.confirmation_step = true;
    await page.screenshot({ path: join(artifacts, "admin-confirm.png"), fullPage: true });
    await Promise.all([page.waitForNavigation(), page.click("form.confirm button[value=approve]")]);
  }
  expect((await page.textContent(".state.big")).trim() === "released", "approved: released");
  expect((await page.textContent(".notice")).includes("Approved"), "a notice confirms the approval");
  expect((await page.innerText("#history")).includes("admin:" + name), "the history names the admin");

  // Reject the other one.
  await page.goto(`${admin}/version?package=${encodeURIComponent(rejectPackage)}&version=${encodeURIComponent(rejectVersion)}`);
  await page.fill("#decide textarea[name=comment]", "Exfiltrates email: rejected");
  await Promise.all([page.waitForNavigation(), page.click("#decide button[value=reject]")]);
  expect((await page.textContent(".state.big")).trim() === "rejected", "rejected");

  // The package page: every version, its state and provenance continuity.
  await page.goto(`${admin}/package?package=${encodeURIComponent(approvePackage)}`);
  expect((await page.innerText("table.queue")).includes(approveVersion), "the package page lists the version");
  await page.screenshot({ path: join(artifacts, "admin-package.png"), fullPage: true });

  // The audit log lists both decisions; the exports download.
  await page.goto(`${admin}/audit?actor=admin:${name}`);
  const audit = await page.innerText("table.audit");
  expect(audit.includes("approve") && audit.includes("reject"), "the audit log lists both decisions");
  await page.screenshot({ path: join(artifacts, "admin-audit.png"), fullPage: true });
  const csv = await page.request.get(`${admin}/audit.csv`);
  expect(csv.status() === 200 && (await csv.text()).startsWith('"id","time"'), "the CSV export");

  // The keys and policy pages render.
  await page.goto(`${admin}/keys`);
  expect((await page.innerText("pre.commands")).includes("airlock verify package-lock.json"), "the keys page shows the CI commands");
  await page.screenshot({ path: join(artifacts, "admin-keys.png"), fullPage: true });
  await page.goto(`${admin}/policy`);
  expect((await page.innerText("main")).includes("Cooling period"), "the policy page shows the cooling period");
  await page.screenshot({ path: join(artifacts, "admin-policy.png"), fullPage: true });

  // Sign out: the session is gone.
  await Promise.all([page.waitForNavigation(), page.click("header form.sign-out button")]);
  expect(page.url().endsWith("/sign-in"), "signed out");
  await page.goto(`${admin}/`);
  expect(page.url().endsWith("/sign-in"), "the queue needs a session again");

  expect(consoleErrors.length === 0, `console errors (CSP?): ${consoleErrors.join(" | ")}`);
  console.log(JSON.stringify(seen));
} catch (error) {
  console.error(error.stack || String(error));
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
