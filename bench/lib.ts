/**
 * Benchmark helpers. Figures are always printed beside a reference measured in the same run, with the ratio,
 * because these machines are too noisy for absolute targets.
 */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** What the value is compared with, measured in the same run. */
  reference?: { name: string; value: number };
  /** The target, stated as the ratio value/reference must stay under (or over, for throughput). */
  target?: { ratio: number; better: "lower" | "higher" };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export async function timeMs(fn: () => unknown | Promise<unknown>): Promise<number> {
  const start = Bun.nanoseconds();
  await fn();
  return (Bun.nanoseconds() - start) / 1e6;
}

function fmt(n: number): string {
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);
}

export function printFigures(title: string, figures: Figure[]): boolean {
  let allMet = true;
  console.log(`\n${title}`);
  for (const f of figures) {
    let line = `  ${f.name.padEnd(44)} ${fmt(f.value).padStart(10)} ${f.unit}`;
    if (f.reference) {
      const ratio = f.value / f.reference.value;
      line += `   vs ${f.reference.name} ${fmt(f.reference.value)} ${f.unit}   ratio ${ratio.toFixed(3)}x`;
      if (f.target) {
        const met = f.target.better === "lower" ? ratio <= f.target.ratio : ratio >= f.target.ratio;
        allMet &&= met;
        line += `  (target ${f.target.better === "lower" ? "<=" : ">="} ${f.target.ratio}x: ${met ? "met" : "MISSED"})`;
      }
    }
    console.log(line);
  }
  return allMet;
}

export type Benchmark = () => Promise<{ title: string; figures: Figure[] }>;
