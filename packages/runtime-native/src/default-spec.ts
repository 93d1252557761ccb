import {
  DEFAULT_PATH,
  defaultCapabilities,
  defaultLinux,
  defaultMounts,
  defaultRlimits,
} from "@magikrun/spec/runc-defaults";
import { OCI_RUNTIME_SPEC_VERSION } from "@magikrun/spec/runtime";
import type { RuntimeConfig } from "@magikrun/spec/runtime-config";

/** The config.json `magikrun spec` writes: the same container `runc spec` describes. */
export function defaultSpec(
  options: { args?: string[]; terminal?: boolean; rootfs?: string } = {},
): RuntimeConfig {
  return {
    ociVersion: OCI_RUNTIME_SPEC_VERSION,
    process: {
      terminal: options.terminal ?? true,
      user: { uid: 0, gid: 0 },
      args: options.args ?? ["sh"],
      env: [DEFAULT_PATH, "TERM=xterm"],
      cwd: "/",
      capabilities: defaultCapabilities(),
      rlimits: defaultRlimits(),
      noNewPrivileges: true,
    },
    root: { path: options.rootfs ?? "rootfs", readonly: true },
    hostname: "runc",
    mounts: defaultMounts(),
    linux: defaultLinux(),
  };
}
