/**
 * The whole test suite: typecheck, lint, then vitest under Bun. Ends with one line `N passed, M failed[, K skipped]`
 * taken from vitest's own JSON report, and exits non-zero when anything failed.
 */
import { mkdirSync, readFileSync, rmSync } from "node:fs";

const root = new URL("..", import.meta.url).pathname;
const report = `${root}.tmp/vitest-report.json`;
let ok = true;

function step(name: string, cmd: string[]): void {
  console.log(`\n=== ${name}: ${cmd.join(" ")}`);
  const result = Bun.spawnSync(cmd, { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  if (result.exitCode !== 0) {
    console.log(`=== ${name} FAILED (exit ${result.exitCode})`);
    ok = false;
  }
}

step("typecheck", ["bun", "run", "typecheck"]);
step("lint", ["bun", "run", "lint"]);

mkdirSync(`${root}.tmp`, { recursive: true });
rmSync(report, { force: true });
step("tests", [
  "bunx",
  "--bun",
  "vitest",
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${report}`,
  ...process.argv.slice(2),
]);

let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const json = JSON.parse(readFileSync(report, "utf8")) as {
    numPassedTests: number;
    numFailedTests: number;
    numPendingTests: number;
    numTodoTests: number;
    testResults: { status: string; assertionResults: unknown[] }[];
  };
  passed = json.numPassedTests;
  // A file that fails to load has no test results of its own: count it as one failure.
  const brokenFiles = json.testResults.filter(
    (f) => f.status === "failed" && f.assertionResults.length === 0,
  );
  failed = json.numFailedTests + brokenFiles.length;
  skipped = json.numPendingTests + json.numTodoTests;
} catch (err) {
  console.log(`no vitest report: ${(err as Error).message}`);
  failed = 1;
}
if (failed > 0) ok = false;
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(ok ? 0 : 1);
