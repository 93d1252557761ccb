import { isMagikError } from "@magikrun/spec";
import { describe, expect, it } from "vitest";
import { defaultSpec } from "./default-spec.ts";
import { checkUnsupported } from "./unsupported.ts";

describe("checkUnsupported", () => {
  it("passes the default spec without a word", () => {
    const warnings: string[] = [];
    checkUnsupported(defaultSpec(), (m) => warnings.push(m));
    expect(warnings).toEqual([]);
  });

  it("warns about security labels it cannot apply", () => {
    const config = defaultSpec();
    config.process!.apparmorProfile = "docker-default";
    config.linux!.mountLabel = "system_u:object_r:container_file_t:s0";
    const warnings: string[] = [];
    checkUnsupported(config, (m) => warnings.push(m));
    expect(warnings).toEqual([
      expect.stringContaining("docker-default"),
      expect.stringContaining("mountLabel"),
    ]);
  });

  it("refuses settings that would change how the process runs, naming the field", () => {
    const cases: [(c: ReturnType<typeof defaultSpec>) => void, string][] = [
      [(c) => (c.process!.scheduler = { policy: "SCHED_FIFO" }), "process.scheduler"],
      [(c) => (c.process!.ioPriority = { class: "IOPRIO_CLASS_RT", priority: 1 }), "process.ioPriority"],
      [(c) => (c.linux!.personality = { domain: "LINUX32" }), "linux.personality"],
    ];
    for (const [edit, field] of cases) {
      const config = defaultSpec();
      edit(config);
      try {
        checkUnsupported(config, () => {});
        expect.unreachable(field);
      } catch (err) {
        expect(isMagikError(err, "NotSupported")).toBe(true);
        expect((err as { details: { field: string } }).details.field).toBe(field);
      }
    }
  });
});
