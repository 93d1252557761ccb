import { describe, expect, it } from "vitest";
import { defaultRoot } from "./root.ts";

describe("defaultRoot", () => {
  it("prefers MAGIKRUN_ROOT over everything", () => {
    expect(defaultRoot({ MAGIKRUN_ROOT: "/srv/magik", XDG_DATA_HOME: "/x" }, 0)).toBe("/srv/magik");
    expect(defaultRoot({ MAGIKRUN_ROOT: "/srv/magik" }, 1000)).toBe("/srv/magik");
  });

  it("uses /var/lib/magikrun for root", () => {
    expect(defaultRoot({ HOME: "/root", XDG_DATA_HOME: "/root/.data" }, 0)).toBe("/var/lib/magikrun");
  });

  it("uses the XDG data dir for other users, ignoring a relative XDG_DATA_HOME as the spec says", () => {
    expect(defaultRoot({ HOME: "/home/ann", XDG_DATA_HOME: "/home/ann/data" }, 1000)).toBe(
      "/home/ann/data/magikrun",
    );
    expect(defaultRoot({ HOME: "/home/ann" }, 1000)).toBe("/home/ann/.local/share/magikrun");
    expect(defaultRoot({ HOME: "/home/ann", XDG_DATA_HOME: "rel/data" }, 1000)).toBe(
      "/home/ann/.local/share/magikrun",
    );
    expect(defaultRoot({ HOME: "/home/ann", MAGIKRUN_ROOT: "" }, 1000)).toBe(
      "/home/ann/.local/share/magikrun",
    );
  });
});
