import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";

/**
 * Where magikrun keeps its state when no root is given: `$MAGIKRUN_ROOT`, else the system location for root,
 * else the user's XDG data directory (rootless use must never need write access to /var/lib).
 */
export function defaultRoot(
  env: Readonly<Record<string, string | undefined>> = process.env,
  uid: number | undefined = process.getuid?.(),
): string {
  const explicit = env.MAGIKRUN_ROOT;
  if (explicit) return explicit;
  if (uid === 0) return "/var/lib/magikrun";
  // The XDG spec says relative values are invalid and must be ignored.
  const xdg = env.XDG_DATA_HOME;
  const dataHome = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), ".local", "share");
  return join(dataHome, "magikrun");
}
