import { dlopen, FFIType, type Pointer, ptr, read } from "bun:ffi";
import { closeSync } from "node:fs";
import { MagikError } from "@magikrun/spec/errors";

/** The bpf(2) calls that put a device program on a cgroup v2 directory. */

const BPF_PROG_LOAD = 5;
const BPF_PROG_ATTACH = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
const BPF_CGROUP_DEVICE = 6;
const BPF_F_ALLOW_MULTI = 2;
const SYS_BPF: Partial<Record<string, number>> = { x64: 321, arm64: 280 };

let libc:
  | {
      symbols: {
        syscall(nr: number, cmd: number, attr: number, size: number): number | bigint;
        __errno_location(): Pointer | null;
      };
    }
  | undefined;

function bpf(cmd: number, attr: Uint8Array): { result: number; errno: number } {
  const nr = SYS_BPF[process.arch];
  if (nr === undefined) {
    throw new MagikError("NotSupported", `bpf(2) is not wired up for ${process.arch}`, {
      details: { arch: process.arch },
    });
  }
  libc ??= dlopen("libc.so.6", {
    syscall: { args: [FFIType.i64, FFIType.i64, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
    __errno_location: { args: [], returns: FFIType.ptr },
  }) as unknown as typeof libc;
  const result = Number(libc!.symbols.syscall(nr, cmd, ptr(attr), attr.byteLength));
  const where = libc!.symbols.__errno_location();
  return { result, errno: result < 0 && where !== null ? read.i32(where, 0) : 0 };
}

function failure(step: string, errno: number, log = ""): MagikError {
  return new MagikError("CreateFailed", `cgroup v2 device filter: ${step} failed (errno ${errno})`, {
    details: { step, errno, ...(log === "" ? {} : { verifierLog: log }) },
    hint:
      errno === 1 ? "Loading BPF programs needs CAP_SYS_ADMIN (or CAP_BPF)." : "See details for the errno.",
  });
}

/** Loads an eBPF device program and attaches it to the cgroup directory `dirFd` (which stays owned by the caller). */
export function attachDeviceProgram(dirFd: number, program: Uint8Array): void {
  const license = new TextEncoder().encode("Apache-2.0\0");
  const log = new Uint8Array(65_536);
  const load = new Uint8Array(72);
  const view = new DataView(load.buffer);
  view.setUint32(0, BPF_PROG_TYPE_CGROUP_DEVICE, true);
  view.setUint32(4, program.byteLength / 8, true);
  view.setBigUint64(8, BigInt(ptr(program)), true);
  view.setBigUint64(16, BigInt(ptr(license)), true);
  view.setUint32(24, 1, true); // log_level: keep the verifier's reason when it refuses
  view.setUint32(28, log.byteLength, true);
  view.setBigUint64(32, BigInt(ptr(log)), true);
  view.setUint32(68, BPF_CGROUP_DEVICE, true); // expected_attach_type
  const loaded = bpf(BPF_PROG_LOAD, load);
  if (loaded.result < 0) {
    const end = log.indexOf(0);
    throw failure(
      "BPF_PROG_LOAD",
      loaded.errno,
      new TextDecoder().decode(log.subarray(0, end < 0 ? undefined : end)),
    );
  }
  const progFd = loaded.result;
  try {
    const attach = new Uint8Array(20);
    const a = new DataView(attach.buffer);
    a.setUint32(0, dirFd, true);
    a.setUint32(4, progFd, true);
    a.setUint32(8, BPF_CGROUP_DEVICE, true);
    a.setUint32(12, BPF_F_ALLOW_MULTI, true);
    const attached = bpf(BPF_PROG_ATTACH, attach);
    if (attached.result < 0) throw failure("BPF_PROG_ATTACH", attached.errno);
  } finally {
    // The cgroup holds its own reference to an attached program.
    closeSync(progFd);
  }
}
