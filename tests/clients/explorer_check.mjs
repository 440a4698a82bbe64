// The explorer driven in headless Chromium (Debian's `chromium`, through playwright-core): the
// catalog lists the sample datasets; on a dataset, a filter and a facet click narrow the rows to
// the count the published file gives, a sort reorders, the next page moves, a download link
// returns the file, a search in Arabic finds its row shown right to left, and a cell holding
// `<script>` shows as text. A screenshot of each page is written to SCREENSHOT_DIR.
//
// usage: node explorer_check.mjs BASE_URL SCREENSHOT_DIR REPO_DIR
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const [base, shots, repo] = process.argv.slice(2);
fs.mkdirSync(shots, { recursive: true });

// The reference: departements.csv as published (id,code,nom,type_nom,chef_lieu_id,region_id).
const lines = fs.readFileSync(path.join(repo, "datasets/departements.csv"), "utf8").trim().split(/\r?\n/);
const departements = lines.slice(1).map((l) => {
  const [id, code, nom, type_nom, , region_id] = l.split(",");
  return { id: Number(id), code, nom, type_nom, region_id };
});

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
const total = async () => Number(await page.locator("#count").getAttribute("data-total"));
const firstCell = (column) => page.locator(`section.rows tbody tr:first-child td:nth-child(${column})`).textContent();

// The catalog lists the sample datasets.
await page.goto(`${base}/`);
const titles = await page.locator("li.card h3 a").allTextContents();
for (const t of ["Communes françaises", "Départements français", "Villes du Maroc"]) {
  assert.ok(titles.includes(t), `${t} in ${titles}`);
}
await shot("catalog");

// A dataset: every row counted, a page of 20 shown.
await page.locator("li.card h3 a", { hasText: "Départements français" }).click();
await page.waitForURL(/\/datasets\/departements$/);
assert.equal(await total(), departements.length);
assert.equal(await page.locator("section.rows tbody tr").count(), 20);
await shot("dataset");

// The next page moves on by 20 rows.
await page.locator("a[rel=next]").first().click();
await page.waitForURL(/cursor=/);
assert.equal(Number(await firstCell(1)), 20);

// A sort reorders: by name, ascending then descending (code point order, as the API sorts).
await page.goto(`${base}/datasets/departements`);
const names = departements.map((d) => d.nom).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
await page.locator("th a[data-column=nom]").click();
await page.waitForURL(/nom__sort=asc/);
assert.equal(await firstCell(3), names[0]);
await page.locator("th a[data-column=nom]").click();
await page.waitForURL(/nom__sort=desc/);
assert.equal(await firstCell(3), names[names.length - 1]);

// A filter narrows the rows: region 14 (from 14 to 14), empty fields left out of the URL.
await page.goto(`${base}/datasets/departements`);
await page.locator("details.filters summary").click();
await page.fill("input[name=region_id__greater]", "14");
await page.fill("input[name=region_id__less]", "14");
await page.locator("details.filters button[type=submit]").click();
await page.waitForURL(/region_id__greater=14/);
assert.ok(!page.url().includes("nom__contains"), page.url());
const region = departements.filter((d) => d.region_id === "14");
assert.equal(await total(), region.length);
await shot("dataset-filtered");

// A facet click narrows them further: the first type of the region.
const facet = page.locator("section.facet", { has: page.locator("h2", { hasText: /^type_nom$/ }) });
const value = facet.locator("a[data-value]").first();
const chosen = await value.getAttribute("data-value");
const shown = Number(await value.locator("xpath=..").locator(".count").textContent());
await value.click();
await page.waitForURL(/type_nom__exact=/);
const both = region.filter((d) => d.type_nom === chosen);
assert.equal(await total(), both.length);
assert.equal(shown, both.length);
await shot("dataset-faceted");

// A download link returns the file: the filtered rows as CSV.
const href = await page.locator("a[data-format=csv]").getAttribute("href");
const csv = await page.request.get(href);
assert.equal(csv.status(), 200);
assert.match(csv.headers()["content-type"], /^text\/csv/);
assert.equal((await csv.text()).trim().split("\n").length, both.length + 1);
const parquet = await page.request.get(await page.locator("a[data-format=parquet]").getAttribute("href"));
assert.equal(parquet.headers()["content-type"], "application/vnd.apache.parquet");
assert.equal((await parquet.body()).subarray(0, 4).toString(), "PAR1");

// A search in Arabic with another alef: Fès, its Arabic name shown right to left.
await page.goto(`${base}/datasets/villes-maroc`);
await page.fill("form.search input[name=q]", "فاس");
await page.locator("form.search button").click();
await page.waitForURL(/q=/);
assert.equal(await total(), 1);
const arabic = page.locator("section.rows tbody td", { hasText: "فاس" });
assert.equal(await arabic.evaluate((td) => getComputedStyle(td).direction), "rtl");
await shot("search-arabic");

// A cell holding <script> shows as text and runs nothing.
await page.goto(`${base}/datasets/hostile`);
assert.equal(await firstCell(2), "<script>window.pwned=1</script>");
assert.equal(await page.evaluate(() => window.pwned), undefined);
await shot("hostile");

// Readable on a phone: the table scrolls inside its box, the page does not.
await page.setViewportSize({ width: 390, height: 844 });
await page.goto(`${base}/datasets/communes?departement__exact=2A`);
const width = await page.evaluate(() => document.documentElement.scrollWidth);
assert.ok(width <= 390, `page ${width}px wide on a 390px screen`);
await shot("phone");

assert.deepEqual(errors, []);
await browser.close();
console.log(`explorer: catalog, filter, facet, sort, next page, downloads, search, escaping in Chromium; screenshots in ${shots}`);
