import { DEFAULT_LIMITS, type Limits, MagikError, parseDigest } from "@magikrun/spec";

/**
 * Image references per the distribution reference grammar, normalized the way docker/podman/containerd do:
 * `busybox` is `docker.io/library/busybox:latest`, fetched from `registry-1.docker.io`.
 */
export interface ImageReference {
  /** Registry as written in canonical references: `docker.io`, `localhost:5000`, `[::1]:5000`. */
  domain: string;
  /** Repository path inside the registry, e.g. `library/busybox`. */
  path: string;
  /** Tag, when one was given or defaulted; absent for digest-only references. */
  tag?: string;
  digest?: string;
}

export const DOCKER_HUB_DOMAIN = "docker.io";
const DOCKER_HUB_API_HOST = "registry-1.docker.io";
const LEGACY_HUB_DOMAINS = new Set(["index.docker.io", "registry-1.docker.io"]);
const DEFAULT_TAG = "latest";
/** The grammar caps a repository name (domain + path) at 255 characters. */
const MAX_NAME_LEN = 255;

const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_HOST = /^\[[0-9a-fA-F:.]+\]$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;

function invalid(reference: string, part: string, message: string, value: string): MagikError {
  return new MagikError(
    "InvalidImageReference",
    `invalid image reference ${JSON.stringify(reference)}: ${message}`,
    {
      details: { reference, part, value },
    },
  );
}

function checkDomain(reference: string, domain: string): void {
  const portAt = domain.startsWith("[") ? domain.indexOf("]:") + 1 : domain.lastIndexOf(":");
  const host = portAt > 0 ? domain.slice(0, portAt) : domain;
  const port = portAt > 0 ? domain.slice(portAt + 1) : undefined;
  if (port !== undefined && (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65535 || Number(port) === 0)) {
    throw invalid(
      reference,
      "port",
      `port ${JSON.stringify(port)} is not a number between 1 and 65535`,
      port,
    );
  }
  if (IPV6_HOST.test(host)) return;
  if (!host.split(".").every((c) => DOMAIN_COMPONENT.test(c))) {
    throw invalid(
      reference,
      "registry",
      `registry host ${JSON.stringify(host)} is not a valid host name`,
      host,
    );
  }
}

/**
 * Parses and normalizes a reference. A digest-only reference keeps no tag; a name alone gets `latest`.
 * Throws InvalidImageReference naming the part (registry, port, path, tag, digest, length) that is wrong.
 */
export function parseReference(
  reference: string,
  limits: Pick<Limits, "MAX_IMAGE_REF_LEN"> = DEFAULT_LIMITS,
): ImageReference {
  if (typeof reference !== "string" || reference.length === 0) {
    throw invalid(String(reference), "reference", "it is empty", String(reference));
  }
  if (reference.length > limits.MAX_IMAGE_REF_LEN) {
    throw new MagikError(
      "InvalidImageReference",
      `image reference is ${reference.length} characters, more than MAX_IMAGE_REF_LEN (${limits.MAX_IMAGE_REF_LEN})`,
      {
        details: {
          reference: reference.slice(0, 80),
          part: "length",
          length: reference.length,
          max: limits.MAX_IMAGE_REF_LEN,
        },
      },
    );
  }
  let rest = reference;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    const value = rest.slice(at + 1);
    try {
      digest = parseDigest(value).digest;
    } catch {
      throw invalid(reference, "digest", `digest ${JSON.stringify(value)} is not algorithm:hex`, value);
    }
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      throw invalid(
        reference,
        "tag",
        `tag ${JSON.stringify(tag)} must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`,
        tag,
      );
    }
  }
  if (rest.length === 0) throw invalid(reference, "path", "the repository name is empty", rest);
  if (rest.length > MAX_NAME_LEN) {
    throw invalid(reference, "length", `the repository name is longer than ${MAX_NAME_LEN} characters`, rest);
  }

  const slash = rest.indexOf("/");
  const first = slash < 0 ? rest : rest.slice(0, slash);
  // Like docker: the first component is a registry when it looks like a host (dot, port, localhost, uppercase).
  const firstIsDomain =
    slash >= 0 &&
    (first.includes(".") || first.includes(":") || first === "localhost" || first !== first.toLowerCase());
  let domain = firstIsDomain ? first : DOCKER_HUB_DOMAIN;
  let path = firstIsDomain ? rest.slice(slash + 1) : rest;
  if (firstIsDomain) checkDomain(reference, domain);
  if (LEGACY_HUB_DOMAINS.has(domain)) domain = DOCKER_HUB_DOMAIN;
  if (domain === DOCKER_HUB_DOMAIN && !path.includes("/")) path = `library/${path}`;

  for (const component of path.split("/")) {
    if (!PATH_COMPONENT.test(component)) {
      const why =
        component !== component.toLowerCase()
          ? "must be lowercase"
          : "must be [a-z0-9] separated by . _ __ or -";
      throw invalid(
        reference,
        "path",
        `repository path component ${JSON.stringify(component)} ${why}`,
        component,
      );
    }
  }
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  const out: ImageReference = { domain, path };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/** `domain/path`, e.g. `docker.io/library/busybox`. */
export function repositoryName(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** Canonical string: `docker.io/library/busybox:latest`, `host/p@sha256:…`, or both tag and digest. */
export function formatReference(ref: ImageReference): string {
  return `${repositoryName(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ""}${ref.digest !== undefined ? `@${ref.digest}` : ""}`;
}

/** Shortest familiar form, as `docker images` shows it: `busybox:latest`, `localhost:5000/x:1`. */
export function familiarReference(ref: ImageReference): string {
  const name =
    ref.domain === DOCKER_HUB_DOMAIN
      ? ref.path.startsWith("library/") && ref.path.split("/").length === 2
        ? ref.path.slice("library/".length)
        : ref.path
      : repositoryName(ref);
  return `${name}${ref.tag !== undefined ? `:${ref.tag}` : ""}${ref.digest !== undefined ? `@${ref.digest}` : ""}`;
}

/** Host (and port) the registry API is served from: Docker Hub's API lives on another host than its name. */
export function registryApiHost(domain: string): string {
  return domain === DOCKER_HUB_DOMAIN ? DOCKER_HUB_API_HOST : domain;
}

/** What to ask the registry for: the digest when pinned (and verify it), the tag otherwise. */
export function manifestSelector(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}

/** Normalizes a reference string to its canonical form; throws InvalidImageReference. */
export function normalizeReference(reference: string, limits?: Pick<Limits, "MAX_IMAGE_REF_LEN">): string {
  return formatReference(parseReference(reference, limits));
}
