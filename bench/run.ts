/** `bun run bench <name>`: runs bench/<name>.bench.ts and prints its figures with references and ratios. */
import { readdirSync } from "node:fs";
import { type Benchmark, printFigures } from "./lib.ts";

const dir = new URL(".", import.meta.url).pathname;
const available = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts"))
  .map((f) => f.slice(0, -".bench.ts".length));
const names = process.argv.slice(2);
if (names.length === 0 || names.some((n) => !available.includes(n))) {
  console.error(`usage: bun run bench <${available.join("|")}> [...]`);
  process.exit(2);
}
let allMet = true;
for (const name of names) {
  const mod = (await import(`./${name}.bench.ts`)) as { default: Benchmark };
  const { title, figures } = await mod.default();
  allMet = printFigures(title, figures) && allMet;
}
process.exit(allMet ? 0 : 1);
