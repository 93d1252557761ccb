/**
 * Encodes the container's setup as the flat list of operations native/launcher.c executes in order. The
 * numbering mirrors `enum op` in launcher.c; the label of each operation names the failing step in errors.
 */
export const OP = {
  SETNS: 1,
  SYNC_WAIT: 2,
  UNSHARE: 3,
  SETHOSTNAME: 4,
  SETDOMAINNAME: 5,
  MOUNT_ROOT_PROP: 6,
  BIND_ROOTFS: 7,
  MOUNT: 8,
  MKNOD: 9,
  SYMLINK: 10,
  PIVOT: 11,
  MASK: 12,
  READONLY: 13,
  REMOUNT_ROOT_RO: 14,
  WRITE_FILE: 15,
  RLIMIT: 16,
  CONSOLE_CONNECT: 17,
  CONSOLE: 18,
  CHDIR: 19,
  CAPS_BOUNDING: 20,
  KEEPCAPS: 21,
  SETGROUPS: 22,
  SETRESGID: 23,
  SETRESUID: 24,
  UMASK: 25,
  FIND_EXEC: 26,
  FIFO_WAIT: 27,
  CAPSET: 28,
  AMBIENT: 29,
  NNP: 30,
  SECCOMP: 31,
  EXEC: 32,
  STDIO: 33,
  /** 34 was OPEN_FIFO_DIR, kept unused so the numbering stays in step with launcher.c. */
  SETSID: 35,
  READY: 36,
  /** Run by the reaper before it clones the container; only as the plan's leading records. */
  REAPER_TIMENS: 37,
  REAPER_SETNS: 38,
  /** Report MSG_HOOKS and wait for one more byte on the sync pipe (prestart/createRuntime hooks run then). */
  HOOKS_SYNC: 39,
  /** Run a createContainer/startContainer hook from the container's process. */
  HOOK: 40,
} as const;
export type OpCode = (typeof OP)[keyof typeof OP];

export interface PlannedOp {
  op: OpCode;
  ints: readonly bigint[];
  strs: readonly string[];
  /** Human description of the step, used in error messages: "mount proc on /proc". */
  label: string;
}

const encoder = new TextEncoder();

/** Record layout: u32 op, u32 nints, u32 nstrs, u32 0, i64 ints..., NUL-terminated strings, padded to 8 bytes. */
export function encodePlan(ops: readonly PlannedOp[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const { op, ints, strs, label } of ops) {
    // The label rides along as a last string so the launcher can name the step on stderr after start.
    const encoded = [...strs, label].map((s) => {
      if (s.includes("\0")) throw new Error(`string with NUL byte in operation ${op}`);
      return encoder.encode(s);
    });
    const strBytes = encoded.reduce((n, s) => n + s.length + 1, 0);
    const size = (16 + 8 * ints.length + strBytes + 7) & ~7;
    const record = new Uint8Array(size);
    const view = new DataView(record.buffer);
    view.setUint32(0, op, true);
    view.setUint32(4, ints.length, true);
    view.setUint32(8, encoded.length, true);
    let offset = 16;
    for (const value of ints) {
      view.setBigInt64(offset, value, true);
      offset += 8;
    }
    for (const s of encoded) {
      record.set(s, offset);
      offset += s.length + 1;
    }
    parts.push(record);
    total += size;
  }
  // Float64Array storage is 8-byte aligned, which the launcher relies on to read the i64s in place.
  const out = new Uint8Array(new Float64Array(total / 8).buffer);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
