import type { PullProgress } from "./pull.ts";

export interface ProgressOutput {
  write(text: string): void;
  /** Redraw bars in place (a terminal) or print one line per state change (logs, pipes). */
  isTTY: boolean;
  columns?: number;
}

const BAR_WIDTH = 24;

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB"];
  let value = n / 1024;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return `${value.toFixed(1)} ${units[i]}`;
}

function shortDigest(digest: string): string {
  return digest.slice(digest.indexOf(":") + 1, digest.indexOf(":") + 13);
}

interface LayerState {
  digest: string;
  size: number;
  current: number;
  status: string;
}

/**
 * Draws pull progress: one bar per layer, redrawn in place on a terminal, or a line per layer state change
 * otherwise (so logs stay readable).
 */
export class PullProgressRenderer {
  private readonly layers = new Map<string, LayerState>();
  private drawnLines = 0;
  private lastDraw = 0;

  constructor(private readonly out: ProgressOutput) {}

  readonly onProgress = (event: PullProgress): void => {
    if (event.type === "resolved") {
      for (const l of event.layers) {
        this.layers.set(l.digest, { digest: l.digest, size: l.size, current: 0, status: "waiting" });
      }
      if (!this.out.isTTY)
        this.out.write(`resolved ${event.reference} (${event.platform}) ${event.manifestDigest}\n`);
      this.draw(true);
      return;
    }
    if (event.type === "stored") {
      this.draw(true);
      return;
    }
    const layer = this.layers.get(event.digest);
    if (!layer) return;
    const changed = layer.status !== event.status;
    layer.current = event.current;
    layer.status = event.status;
    if (this.out.isTTY) this.draw(changed);
    else if (changed)
      this.out.write(`${shortDigest(layer.digest)}: ${layer.status} ${formatBytes(layer.size)}\n`);
  };

  private draw(force: boolean): void {
    if (!this.out.isTTY) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < 80) return;
    this.lastDraw = now;
    let text = this.drawnLines > 0 ? `\x1b[${this.drawnLines}A` : "";
    for (const l of this.layers.values()) {
      const fraction = l.size > 0 ? Math.min(1, l.current / l.size) : 1;
      const filled = Math.round(fraction * BAR_WIDTH);
      const bar = `[${"=".repeat(filled)}${" ".repeat(BAR_WIDTH - filled)}]`;
      text += `\x1b[2K${shortDigest(l.digest)} ${l.status.padEnd(11)} ${bar} ${formatBytes(l.current)}/${formatBytes(l.size)}\n`;
    }
    this.drawnLines = this.layers.size;
    this.out.write(text);
  }
}
