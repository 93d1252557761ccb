import type { DeviceCgroupRule } from "@magikrun/spec";
import { describe, expect, it } from "vitest";
import { type DeviceAccessModel, deviceAccessModel, deviceFilterProgram } from "./device-filter.ts";

/** Runs the few eBPF instructions the generator emits on a bpf_cgroup_dev_ctx. */
function runDeviceProgram(
  program: Uint8Array,
  type: number,
  access: number,
  major: number,
  minor: number,
): number {
  const view = new DataView(program.buffer, program.byteOffset, program.byteLength);
  const ctx = [(access << 16) | type, major, minor];
  const r = new Array<bigint>(11).fill(0n);
  for (let pc = 0; pc * 8 < program.byteLength; pc++) {
    const at = pc * 8;
    const op = view.getUint8(at);
    const dst = view.getUint8(at + 1) & 0xf;
    const src = view.getUint8(at + 1) >> 4;
    const off = view.getInt16(at + 2, true);
    const imm = BigInt.asUintN(64, BigInt(view.getInt32(at + 4, true)));
    switch (op) {
      case 0x61:
        expect(src).toBe(1);
        r[dst] = BigInt(ctx[off / 4]! >>> 0);
        break;
      case 0x57:
        r[dst]! &= imm;
        break;
      case 0x77:
        r[dst] = r[dst]! >> imm;
        break;
      case 0xb7:
        r[dst] = imm;
        break;
      case 0xbf:
        r[dst] = r[src]!;
        break;
      case 0x55:
        if (r[dst] !== imm) pc += off;
        break;
      case 0x15:
        if (r[dst] === imm) pc += off;
        break;
      case 0x45:
        if ((r[dst]! & imm) !== 0n) pc += off;
        break;
      case 0x95:
        return Number(r[0]);
      default:
        throw new Error(`unexpected eBPF opcode 0x${op.toString(16)}`);
    }
  }
  throw new Error("fell off the end");
}

const C = 2;
const B = 1;
const [M, R, W] = [1, 2, 4];

describe("deviceAccessModel (v1 semantics)", () => {
  it("starts allowing everything; 'a' rules reset the default", () => {
    expect(deviceAccessModel([])).toEqual({ defaultAllow: true, exceptions: [] });
    const model = deviceAccessModel([
      { allow: true, type: "c", major: 1, minor: 3, access: "rw" },
      { allow: false, access: "rwm" },
      { allow: true, type: "c", major: 1, minor: 3, access: "rw" },
      { allow: true, type: "c", major: 1, minor: 3, access: "m" },
      { allow: true, type: "b", major: null, minor: 0 },
    ]);
    expect(model).toEqual({
      defaultAllow: false,
      exceptions: [
        { type: "c", major: 1, minor: 3, access: R | W | M },
        { type: "b", major: -1, minor: 0, access: R | W | M },
      ],
    });
  });

  it("takes access away from an identical exception when a rule agrees with the default", () => {
    const rules: DeviceCgroupRule[] = [
      { allow: false, access: "rwm" },
      { allow: true, type: "c", major: 5, minor: 1, access: "rwm" },
      { allow: false, type: "c", major: 5, minor: 1, access: "m" },
      { allow: true, type: "c", major: 9, minor: 9, access: "r" },
      { allow: false, type: "c", major: 9, minor: 9, access: "r" },
    ];
    expect(deviceAccessModel(rules).exceptions).toEqual([{ type: "c", major: 5, minor: 1, access: R | W }]);
  });
});

describe("deviceFilterProgram", () => {
  const check = (model: DeviceAccessModel, type: number, access: number, major: number, minor: number) =>
    runDeviceProgram(deviceFilterProgram(model), type, access, major, minor);

  it("deny by default: allows only what an exception fully covers", () => {
    const model = deviceAccessModel([
      { allow: false, access: "rwm" },
      { allow: true, type: "c", major: 1, minor: 3, access: "rw" },
      { allow: true, type: "c", major: 136, minor: -1, access: "rwm" },
    ]);
    expect(check(model, C, R | W, 1, 3)).toBe(1);
    expect(check(model, C, M, 1, 3)).toBe(0);
    expect(check(model, C, R | M, 1, 3)).toBe(0);
    expect(check(model, B, R, 1, 3)).toBe(0);
    expect(check(model, C, R, 1, 5)).toBe(0);
    expect(check(model, C, W | M, 136, 42)).toBe(1);
  });

  it("allow by default: denies whatever touches a deny exception", () => {
    const model = deviceAccessModel([{ allow: false, type: "b", major: 8, minor: null, access: "w" }]);
    expect(check(model, B, W, 8, 1)).toBe(0);
    expect(check(model, B, R | W, 8, 2)).toBe(0);
    expect(check(model, B, R, 8, 1)).toBe(1);
    expect(check(model, C, W, 8, 1)).toBe(1);
    expect(check(model, B, W, 9, 1)).toBe(1);
  });
});
