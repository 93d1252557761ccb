import { z } from "zod";

/** OCI runtime `state` document (runtime-spec "State"), as printed by `magikrun state <id>`. */
export const CONTAINER_STATUSES = ["creating", "created", "running", "stopped", "paused"] as const;
export const ContainerStatus = z.enum(CONTAINER_STATUSES);
export type ContainerStatus = z.infer<typeof ContainerStatus>;

export const ContainerState = z.looseObject({
  ociVersion: z.string(),
  id: z.string().min(1),
  status: ContainerStatus,
  /** Present while the container process exists (created, running, paused). */
  pid: z.number().int().positive().optional(),
  bundle: z.string().startsWith("/"),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type ContainerState = z.infer<typeof ContainerState>;
