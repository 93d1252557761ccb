import { describe, expect, it } from "vitest";
import {
  Descriptor,
  DockerManifest,
  DockerManifestList,
  ImageConfig,
  ImageIndex,
  ImageManifest,
  OciLayoutHeader,
} from "./image.ts";
import { MediaTypes } from "./media-types.ts";

const d = (c: string) => `sha256:${c.repeat(64)}`;

const ociIndex = {
  schemaVersion: 2,
  mediaType: MediaTypes.ociIndex,
  manifests: [
    {
      mediaType: MediaTypes.ociManifest,
      digest: d("a"),
      size: 1234,
      platform: { architecture: "amd64", os: "linux" },
    },
    {
      mediaType: MediaTypes.ociManifest,
      digest: d("b"),
      size: 1235,
      platform: { architecture: "arm64", os: "linux", variant: "v8", "os.features": ["x"] },
      annotations: { "org.opencontainers.image.ref.name": "latest" },
    },
    // Attestation manifests, as buildx pushes them.
    {
      mediaType: MediaTypes.ociManifest,
      digest: d("c"),
      size: 839,
      annotations: { "vnd.docker.reference.type": "attestation-manifest" },
      platform: { architecture: "unknown", os: "unknown" },
    },
  ],
};

const ociManifest = {
  schemaVersion: 2,
  mediaType: MediaTypes.ociManifest,
  config: { mediaType: MediaTypes.ociConfig, digest: d("1"), size: 581 },
  layers: [
    { mediaType: MediaTypes.ociLayerTarGzip, digest: d("2"), size: 2_000_000 },
    { mediaType: MediaTypes.ociLayerTarZstd, digest: d("3"), size: 0 },
  ],
  subject: { mediaType: MediaTypes.ociManifest, digest: d("4"), size: 10 },
  annotations: { "org.opencontainers.image.created": "2024-01-01T00:00:00Z" },
};

const dockerManifest = {
  schemaVersion: 2,
  mediaType: MediaTypes.dockerManifest,
  config: { mediaType: MediaTypes.dockerConfig, digest: d("5"), size: 1469 },
  layers: [{ mediaType: MediaTypes.dockerLayerTarGzip, digest: d("6"), size: 2_220_000 }],
};

const dockerList = {
  schemaVersion: 2,
  mediaType: MediaTypes.dockerManifestList,
  manifests: [
    {
      mediaType: MediaTypes.dockerManifest,
      digest: d("7"),
      size: 527,
      platform: { architecture: "amd64", os: "linux" },
    },
  ],
};

// The shape `docker image inspect` configs have: nulls where Go had nil slices and maps.
const dockerConfig = {
  architecture: "amd64",
  os: "linux",
  created: "2024-05-01T12:00:00.000000000Z",
  config: {
    Hostname: "",
    User: "",
    Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    Cmd: ["sh"],
    Entrypoint: null,
    WorkingDir: "",
    Volumes: null,
    ExposedPorts: { "80/tcp": {} },
    Labels: null,
    OnBuild: null,
  },
  container_config: { Cmd: ["/bin/sh", "-c", '#(nop) CMD ["sh"]'] },
  rootfs: { type: "layers", diff_ids: [d("8")] },
  history: [{ created: "2024-05-01T12:00:00Z", created_by: "ADD file:abc in /", empty_layer: false }],
};

describe("image index", () => {
  it("parses a multi-platform OCI index", () => {
    const index = ImageIndex.parse(ociIndex);
    expect(index.manifests.map((m) => m.platform?.architecture)).toEqual(["amd64", "arm64", "unknown"]);
    expect(index.manifests[1]?.platform?.variant).toBe("v8");
  });

  it("parses a Docker manifest list, and refuses an OCI media type as one", () => {
    expect(DockerManifestList.parse(dockerList).manifests).toHaveLength(1);
    expect(DockerManifestList.safeParse({ ...dockerList, mediaType: MediaTypes.ociIndex }).success).toBe(
      false,
    );
  });

  it.each([
    ["schemaVersion 1", { ...ociIndex, schemaVersion: 1 }],
    ["no manifests", { schemaVersion: 2 }],
    [
      "a manifest with a bad digest",
      { ...ociIndex, manifests: [{ mediaType: "x", digest: "sha256:abc", size: 1 }] },
    ],
    [
      "a platform without os",
      { ...ociIndex, manifests: [{ ...ociIndex.manifests[0], platform: { architecture: "amd64" } }] },
    ],
  ])("refuses %s", (_name, value) => {
    expect(ImageIndex.safeParse(value).success).toBe(false);
  });
});

describe("image manifest", () => {
  it("parses an OCI manifest with subject and annotations", () => {
    const manifest = ImageManifest.parse(ociManifest);
    expect(manifest.layers.map((l) => l.size)).toEqual([2_000_000, 0]);
    expect(manifest.subject?.digest).toBe(d("4"));
  });

  it("parses a Docker schema2 manifest with the generic and the Docker schema", () => {
    expect(ImageManifest.parse(dockerManifest).config.digest).toBe(d("5"));
    expect(DockerManifest.parse(dockerManifest).mediaType).toBe(MediaTypes.dockerManifest);
    expect(DockerManifest.safeParse({ ...dockerManifest, mediaType: MediaTypes.ociManifest }).success).toBe(
      false,
    );
    expect(DockerManifest.safeParse({ ...dockerManifest, mediaType: undefined }).success).toBe(false);
  });

  it("keeps fields it does not know, as the spec requires", () => {
    const parsed = DockerManifest.parse({ ...dockerManifest, "x-future": { a: 1 } });
    expect((parsed as Record<string, unknown>)["x-future"]).toEqual({ a: 1 });
    const descriptor = Descriptor.parse({ ...ociManifest.config, "x-extra": true });
    expect((descriptor as Record<string, unknown>)["x-extra"]).toBe(true);
  });

  it.each([
    ["a missing config", { ...ociManifest, config: undefined }],
    ["layers that are not an array", { ...ociManifest, layers: {} }],
    ["a negative size", { ...ociManifest, layers: [{ ...ociManifest.layers[0], size: -1 }] }],
    ["a fractional size", { ...ociManifest, layers: [{ ...ociManifest.layers[0], size: 1.5 }] }],
    ["an uppercase digest", { ...ociManifest, config: { ...ociManifest.config, digest: d("A") } }],
    [
      "a traversal digest",
      { ...ociManifest, config: { ...ociManifest.config, digest: `sha256:../${"a".repeat(61)}` } },
    ],
    ["a string schemaVersion", { ...ociManifest, schemaVersion: "2" }],
    ["non-string annotations", { ...ociManifest, annotations: { a: 1 } }],
  ])("refuses %s", (_name, value) => {
    expect(ImageManifest.safeParse(value).success).toBe(false);
  });
});

describe("image config", () => {
  it("parses a Docker-style config, turning nulls into absent fields", () => {
    const config = ImageConfig.parse(dockerConfig);
    expect(config.config?.Entrypoint).toBeUndefined();
    expect(config.config?.Volumes).toBeUndefined();
    expect(config.config?.Cmd).toEqual(["sh"]);
    expect(config.rootfs.diff_ids).toEqual([d("8")]);
    expect((config as Record<string, unknown>).container_config).toBeDefined();
    expect((config.config as Record<string, unknown> | undefined)?.Hostname).toBe("");
  });

  it("parses a minimal OCI config with a null config section", () => {
    const config = ImageConfig.parse({
      architecture: "arm64",
      os: "linux",
      config: null,
      rootfs: { type: "layers", diff_ids: [] },
    });
    expect(config.config).toBeUndefined();
  });

  it.each([
    ["a missing rootfs", { ...dockerConfig, rootfs: undefined }],
    ["a rootfs type other than layers", { ...dockerConfig, rootfs: { type: "fs", diff_ids: [] } }],
    ["an invalid diff_id", { ...dockerConfig, rootfs: { type: "layers", diff_ids: ["sha256:zz"] } }],
    ["a missing os", { ...dockerConfig, os: undefined }],
    ["Env that is a string", { ...dockerConfig, config: { Env: "PATH=/bin" } }],
    ["a numeric User", { ...dockerConfig, config: { User: 0 } }],
  ])("refuses %s", (_name, value) => {
    expect(ImageConfig.safeParse(value).success).toBe(false);
  });
});

describe("OCI layout header", () => {
  it("needs imageLayoutVersion", () => {
    expect(OciLayoutHeader.parse({ imageLayoutVersion: "1.0.0" }).imageLayoutVersion).toBe("1.0.0");
    expect(OciLayoutHeader.safeParse({}).success).toBe(false);
  });
});
