export { type CreateCgroupOptions, createCgroup, planCgroup } from "./create.ts";
export { type DeviceAccessModel, deviceAccessModel, deviceFilterProgram } from "./device-filter.ts";
export { type CgroupFs, nodeCgroupFs } from "./fs.ts";
export { CgroupHandle, type CgroupState, type DestroyOptions, openCgroup } from "./handle.ts";
export {
  type CgroupLayout,
  type CgroupMount,
  detectCgroupLayout,
  layoutFrom,
  parseCgroupMounts,
  parseProcCgroup,
} from "./layout.ts";
export { DEFAULT_CGROUP_PARENT, leafDirectories, normaliseCgroupsPath } from "./paths.ts";
export { type PlannedWrite, planResources, type ResourcePlan } from "./plan.ts";
export type { CgroupStats } from "./stats.ts";
export { type UpdateCgroupOptions, updateCgroup } from "./update.ts";
export { blkioWeightToIoWeight, sharesToWeight } from "./v2-writes.ts";
