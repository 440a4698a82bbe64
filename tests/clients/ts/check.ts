// Rows of a dataset read through openapi-fetch with the types openapi-typescript generated
// from the dataset's own OpenAPI document; `tsc --strict` checks the types, node the values.
import createClient from "openapi-fetch";
import type { paths, components } from "./schema.js";

type Row = components["schemas"]["Row"];

const client = createClient<paths>({ baseUrl: process.argv[2] });

function check(ok: boolean, what: string): void {
  if (!ok) {
    throw new Error(`check failed: ${what}`);
  }
}

const { data, error } = await client.GET("/api/datasets/events/data", {
  params: { query: { code__in: "01,971", places__sort: "asc" } },
});
if (error !== undefined || data === undefined) {
  throw new Error(`request failed: ${JSON.stringify(error)}`);
}
const rows = data.data as Row[];
const code: string | undefined = rows[0].code;
const places: number | null | undefined = rows[0].places;
const day: string | undefined = rows[0].jour;
const open: boolean | null | undefined = rows[0].ouvert;
check(code === "01", `code ${code}`);
check(typeof places === "number" && places === 120, `places ${places}`);
check(day === "2024-06-30", `jour ${day}`);
check(open === true, `ouvert ${open}`);
check(rows[1].places === null, "places of 971 is null");
const total: number = data.meta.total;
check(total === 2, `total ${total}`);

const tab = await client.GET("/api/resources/events/data/", {
  params: { query: { code__exact: "2A" } },
});
const resourceRow = tab.data?.data[0] as components["schemas"]["ResourceRow"];
check(resourceRow.__id === 2 && resourceRow.code === "2A", JSON.stringify(resourceRow));
console.log("typescript client: typed rows OK");
