import { z } from "zod";
import { isDigest } from "./digest.ts";

/** OCI image-spec v1.1 and Docker schema2 documents. Unknown fields pass through (specs say: ignore them). */

export const DigestString = z.string().refine(isDigest, { message: "invalid digest" });

export const Platform = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  "os.version": z.string().optional(),
  "os.features": z.array(z.string()).optional(),
  variant: z.string().optional(),
  features: z.array(z.string()).optional(),
});
export type Platform = z.infer<typeof Platform>;

export const Descriptor = z.looseObject({
  mediaType: z.string(),
  digest: DigestString,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  data: z.string().optional(),
  artifactType: z.string().optional(),
  platform: Platform.optional(),
});
export type Descriptor = z.infer<typeof Descriptor>;

export const ImageIndex = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(Descriptor),
  subject: Descriptor.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type ImageIndex = z.infer<typeof ImageIndex>;

export const ImageManifest = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: Descriptor,
  layers: z.array(Descriptor),
  subject: Descriptor.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type ImageManifest = z.infer<typeof ImageManifest>;

/** Docker schema2 manifest: same shape as OCI's, with a required mediaType. */
export const DockerManifest = ImageManifest.extend({
  mediaType: z.literal("application/vnd.docker.distribution.manifest.v2+json"),
});
export type DockerManifest = z.infer<typeof DockerManifest>;

export const DockerManifestList = ImageIndex.extend({
  mediaType: z.literal("application/vnd.docker.distribution.manifest.list.v2+json"),
});
export type DockerManifestList = z.infer<typeof DockerManifestList>;

const Nullable = <T extends z.ZodType>(t: T) => t.nullish().transform((v) => v ?? undefined);

export const ImageRuntimeConfig = z.looseObject({
  User: Nullable(z.string()),
  ExposedPorts: Nullable(z.record(z.string(), z.object({}).loose())),
  Env: Nullable(z.array(z.string())),
  Entrypoint: Nullable(z.array(z.string())),
  Cmd: Nullable(z.array(z.string())),
  Volumes: Nullable(z.record(z.string(), z.object({}).loose())),
  WorkingDir: Nullable(z.string()),
  Labels: Nullable(z.record(z.string(), z.string())),
  StopSignal: Nullable(z.string()),
  ArgsEscaped: Nullable(z.boolean()),
});
export type ImageRuntimeConfig = z.infer<typeof ImageRuntimeConfig>;

export const ImageConfig = z.looseObject({
  created: z.string().optional(),
  author: z.string().optional(),
  architecture: z.string(),
  os: z.string(),
  "os.version": z.string().optional(),
  variant: z.string().optional(),
  config: Nullable(ImageRuntimeConfig),
  rootfs: z.object({ type: z.literal("layers"), diff_ids: z.array(DigestString) }),
  history: z
    .array(
      z.looseObject({
        created: z.string().optional(),
        created_by: z.string().optional(),
        author: z.string().optional(),
        comment: z.string().optional(),
        empty_layer: z.boolean().optional(),
      }),
    )
    .optional(),
});
export type ImageConfig = z.infer<typeof ImageConfig>;

/** `index.json` of an OCI image layout directory. */
export const OciLayoutHeader = z.object({ imageLayoutVersion: z.string() });
