import { MagikError } from "@magikrun/spec/errors";
import type { RuntimeConfig } from "@magikrun/spec/runtime-config";

/**
 * config.json fields the native runtime does not implement. Security labels are warned about (no LSM is
 * loaded for them here, as runc does when AppArmor/SELinux are absent); settings that change how the process
 * runs are refused, so that a container never silently runs differently from what its config says.
 */
export function checkUnsupported(config: RuntimeConfig, warn: (message: string) => void): void {
  const proc = config.process;
  const linux = config.linux;
  if (proc?.apparmorProfile)
    warn(`process.apparmorProfile ${proc.apparmorProfile} is ignored: no AppArmor support`);
  if (proc?.selinuxLabel) warn("process.selinuxLabel is ignored: no SELinux support");
  if (linux?.mountLabel) warn("linux.mountLabel is ignored: no SELinux support");
  const refused: [field: string, present: unknown][] = [
    ["process.ioPriority", proc?.ioPriority],
    ["process.scheduler", proc?.scheduler],
    ["process.execCPUAffinity", proc?.execCPUAffinity],
    ["linux.intelRdt", linux?.intelRdt],
    [
      "linux.personality",
      linux?.personality && linux.personality.domain !== "LINUX" ? linux.personality : undefined,
    ],
    ["linux.personality.flags", linux?.personality?.flags?.length ? linux.personality.flags : undefined],
    ["linux.seccomp.listenerPath", linux?.seccomp?.listenerPath || undefined],
  ];
  for (const [field, value] of refused) {
    if (value === undefined || value === null) continue;
    throw new MagikError("NotSupported", `${field} is not supported by the native runtime`, {
      details: { field, value },
      hint: `Remove ${field} from config.json.`,
    });
  }
}
