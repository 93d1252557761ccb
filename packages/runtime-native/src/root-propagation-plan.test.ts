/** rootfsPropagation in the plan, as runc 1.1.5 applies it (the kernel side is in differential.test.ts). */
import type { RuntimeConfig } from "@magikrun/spec";
import { describe, expect, it } from "vitest";
import { defaultSpec } from "./default-spec.ts";
import { planLaunch } from "./launch-plan.ts";
import { MS } from "./mount-options.ts";
import { OP } from "./plan-encoder.ts";

function rootOps(propagation: string | undefined) {
  const config: RuntimeConfig = defaultSpec({ args: ["true"], terminal: false });
  if (propagation !== undefined) config.linux!.rootfsPropagation = propagation as never;
  const { ops } = planLaunch({
    config,
    rootfs: "/bundle/rootfs",
    bundle: "/bundle",
    joinFds: {},
    capabilityMask: () => 0n,
    lastCap: 40,
    isDirectory: () => true,
  });
  const pivot = ops.findIndex((o) => o.op === OP.PIVOT);
  return {
    before: ops.slice(0, pivot).filter((o) => o.op === OP.MOUNT_ROOT_PROP),
    after: ops.slice(pivot).filter((o) => o.op === OP.MOUNT_ROOT_PROP),
    bindIndex: ops.findIndex((o) => o.op === OP.BIND_ROOTFS),
    propIndex: ops.findIndex((o) => o.op === OP.MOUNT_ROOT_PROP),
  };
}

describe("rootfsPropagation in the plan", () => {
  it("goes to / once, before the rootfs bind, with its own recursion; nothing after pivot_root", () => {
    const cases: [string | undefined, number, boolean][] = [
      [undefined, MS.SLAVE | MS.REC, false],
      ["", MS.SLAVE | MS.REC, false],
      ["rslave", MS.SLAVE | MS.REC, false],
      ["rprivate", MS.PRIVATE | MS.REC, false],
      ["runbindable", MS.UNBINDABLE | MS.REC, false],
      ["rshared", MS.SHARED | MS.REC, true],
      ["shared", MS.SHARED, true],
      ["slave", MS.SLAVE, true],
      ["private", MS.PRIVATE, true],
      ["unbindable", MS.UNBINDABLE, true],
    ];
    for (const [propagation, flags, parentPrivate] of cases) {
      const { before, after, bindIndex, propIndex } = rootOps(propagation);
      expect({ propagation, after }).toEqual({ propagation, after: [] });
      expect(propIndex).toBeLessThan(bindIndex);
      // The rootfs's parent mount is checked (and made private if shared) only when it can still be shared.
      expect({ propagation, ints: before[0]!.ints, strs: before[0]!.strs }).toEqual({
        propagation,
        ints: parentPrivate ? [BigInt(flags), 1n] : [BigInt(flags)],
        strs: parentPrivate ? ["/bundle/rootfs"] : [],
      });
      expect(before).toHaveLength(1);
    }
  });
});
