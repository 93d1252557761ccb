import { MagikError } from "@magikrun/spec/errors";
import type { SeccompAction } from "@magikrun/spec/runtime-config";

/** SECCOMP_RET_* base values. */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x8000_0000,
  KILL_THREAD: 0x0000_0000,
  TRAP: 0x0003_0000,
  ERRNO: 0x0005_0000,
  USER_NOTIF: 0x7fc0_0000,
  TRACE: 0x7ff0_0000,
  LOG: 0x7ffc_0000,
  ALLOW: 0x7fff_0000,
} as const;

const EPERM = 1;

/**
 * The filter return value of an action. ERRNO and TRACE carry 16 bits of data: the errno (default EPERM, as
 * runc) or the tracer's message number.
 */
export function actionValue(action: SeccompAction, errnoRet: number | undefined, field: string): number {
  const data = errnoRet ?? EPERM;
  if ((action === "SCMP_ACT_ERRNO" || action === "SCMP_ACT_TRACE") && (data < 0 || data > 0xffff)) {
    throw new MagikError("InvalidInput", `${field}: errnoRet ${data} does not fit in 16 bits`, {
      details: { field, value: data },
      hint: "errnoRet is an errno number such as 1 (EPERM) or 38 (ENOSYS).",
    });
  }
  switch (action) {
    // libseccomp's SCMP_ACT_KILL is the original thread-killing action.
    case "SCMP_ACT_KILL":
    case "SCMP_ACT_KILL_THREAD":
      return SECCOMP_RET.KILL_THREAD;
    case "SCMP_ACT_KILL_PROCESS":
      return SECCOMP_RET.KILL_PROCESS;
    case "SCMP_ACT_TRAP":
      return SECCOMP_RET.TRAP;
    case "SCMP_ACT_ERRNO":
      return (SECCOMP_RET.ERRNO | data) >>> 0;
    case "SCMP_ACT_TRACE":
      return (SECCOMP_RET.TRACE | data) >>> 0;
    case "SCMP_ACT_LOG":
      return SECCOMP_RET.LOG;
    case "SCMP_ACT_ALLOW":
      return SECCOMP_RET.ALLOW;
    case "SCMP_ACT_NOTIFY":
      throw new MagikError(
        "NotSupported",
        `${field}: SCMP_ACT_NOTIFY (seccomp user notification) is not supported`,
        {
          details: { field, value: action },
          hint: "magikrun does not hand a seccomp listener to linux.seccomp.listenerPath; use another action.",
        },
      );
  }
}

/** SECCOMP_FILTER_FLAG_* bits accepted in `linux.seccomp.flags`. */
export const SECCOMP_FILTER_FLAGS: Record<string, number> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
};

/** The `flags` argument for seccomp(SECCOMP_SET_MODE_FILTER, flags, prog). */
export function filterFlags(flags: readonly string[] | undefined, warnings: string[]): number {
  let bits = 0;
  for (const flag of flags ?? []) {
    const bit = SECCOMP_FILTER_FLAGS[flag];
    if (bit !== undefined) bits |= bit;
    else if (flag === "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") {
      // The kernel only accepts it together with a user-notification listener, which magikrun does not create.
      warnings.push(
        "seccomp flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is ignored: no notification listener",
      );
    } else {
      throw new MagikError("InvalidInput", `unknown seccomp flag ${JSON.stringify(flag)}`, {
        details: { field: "linux.seccomp.flags", value: flag, known: Object.keys(SECCOMP_FILTER_FLAGS) },
      });
    }
  }
  return bits;
}
