/**
 * One error type for every layer. `code` is stable API: callers (and the CLI's exit/JSON output) switch on it,
 * so codes are only ever added, never renamed.
 */
export const ERROR_CODES = [
  "ContainerNotFound",
  "ContainerAlreadyExists",
  "InvalidContainerId",
  "InvalidState",
  "ResourceExhausted",
  "CreateFailed",
  "StartFailed",
  "SignalFailed",
  "DeleteFailed",
  "InvalidImageReference",
  "ImagePullFailed",
  "ImageNotFound",
  "Unauthorized",
  "ManifestParseFailed",
  "DigestMismatch",
  "LayerExtractionFailed",
  "PathTraversal",
  "ImageTooLarge",
  "BundleBuildFailed",
  "InvalidBundle",
  "RuntimeUnavailable",
  "NotSupported",
  "ExecFailed",
  "HypervisorUnavailable",
  "BlobNotFound",
  "StorageWriteFailed",
  "InvalidInput",
  "Timeout",
  "Cancelled",
  "PodNotFound",
  "PodAlreadyExists",
  "Internal",
] as const;

export type MagikErrorCode = (typeof ERROR_CODES)[number];

/** Structured, JSON-safe context: the offending value, the path, the limit crossed... */
export type MagikErrorDetails = Record<string, unknown>;

const DEFAULT_HINTS: Record<MagikErrorCode, string> = {
  ContainerNotFound: "List containers with `magikrun list`; check --root if you use a non-default state dir.",
  ContainerAlreadyExists: "Choose another id, or delete the existing container first.",
  InvalidContainerId: "Ids are 1-128 characters of [A-Za-z0-9_.+-] and start with a letter, digit or '_'.",
  InvalidState: "Check the container's status with `magikrun state <id>`.",
  ResourceExhausted: "A configured limit was reached; raise it explicitly or free resources.",
  CreateFailed: "The failing step and errno are in details; check the bundle's config.json.",
  StartFailed: "The container must be in the 'created' state to start.",
  SignalFailed: "The process may already have exited.",
  DeleteFailed: "Stop the container first, or use --force.",
  InvalidImageReference: "References look like [registry[:port]/]name[:tag][@sha256:<64 hex>].",
  ImagePullFailed: "Check the registry address, your network and credentials.",
  ImageNotFound: "Pull or import the image first; list local images with `magikrun image ls`.",
  Unauthorized: "Provide credentials (--username/--password or ~/.docker/config.json).",
  ManifestParseFailed: "The registry served a manifest this runtime cannot read.",
  DigestMismatch: "The content does not match its digest: it was corrupted or tampered with.",
  LayerExtractionFailed: "The layer archive is malformed or breaks an extraction rule.",
  PathTraversal: "An archive or path tried to reach outside its root; it was refused.",
  ImageTooLarge: "The image crosses a size limit; limits can be raised per instance.",
  BundleBuildFailed: "See details for the step that failed.",
  InvalidBundle: "A bundle is a directory with config.json and the rootfs it names.",
  RuntimeUnavailable: "This host lacks what the runtime needs; details say what is missing.",
  NotSupported: "This feature is not supported on this host or by this runtime.",
  ExecFailed: "The container must be running, and the command must exist inside it.",
  HypervisorUnavailable: "No usable hypervisor: hardware virtualization or QEMU is required.",
  BlobNotFound: "The blob is not in the store; pull the image again.",
  StorageWriteFailed: "Check free space and permissions of the storage root.",
  InvalidInput: "See details for the value that was refused.",
  Timeout: "The operation took longer than its limit; limits can be raised per call.",
  Cancelled: "The operation was cancelled by its caller.",
  PodNotFound: "List pods with `magikrun pod ls`.",
  PodAlreadyExists: "Choose another pod name or delete the existing pod.",
  Internal: "This is a bug in magikrun; please report it with the details.",
};

export interface MagikErrorOptions {
  details?: MagikErrorDetails;
  hint?: string;
  cause?: unknown;
}

export class MagikError extends Error {
  override readonly name = "MagikError";
  readonly code: MagikErrorCode;
  readonly details: MagikErrorDetails;
  readonly hint: string;

  constructor(code: MagikErrorCode, message: string, options: MagikErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
    this.hint = options.hint ?? DEFAULT_HINTS[code];
  }

  toJSON(): { code: MagikErrorCode; message: string; details: MagikErrorDetails; hint: string } {
    return { code: this.code, message: this.message, details: this.details, hint: this.hint };
  }
}

export function isMagikError(err: unknown, code?: MagikErrorCode): err is MagikError {
  return err instanceof MagikError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into a MagikError, keeping MagikErrors as they are. */
export function toMagikError(err: unknown, code: MagikErrorCode, message: string): MagikError {
  if (err instanceof MagikError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  const errno = (err as { code?: unknown } | null)?.code;
  return new MagikError(code, `${message}: ${reason}`, {
    cause: err,
    details: typeof errno === "string" ? { errno } : {},
  });
}
