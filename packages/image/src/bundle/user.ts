import { MagikError } from "@magikrun/spec";
import { readFileInRoot } from "../resolve-in-root.ts";

/**
 * Resolves an image or override user (`uid`, `uid:gid`, `name`, `name:group`, `uid:group`...) the way Docker and
 * runc do, through the container's own /etc/passwd and /etc/group, read inside the rootfs (a symlinked
 * /etc/passwd cannot make us read the host's).
 */

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  /** Home directory from /etc/passwd, when the user is listed there. */
  home?: string;
  username?: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** Largest /etc/passwd or /etc/group read; real ones are a few KiB. */
const MAX_DB_BYTES = 4 * 1024 * 1024;
const MAX_ID = 0xffff_fffe;

function readDb(rootfs: string, file: string): string[][] {
  const bytes = readFileInRoot(rootfs, file, MAX_DB_BYTES);
  if (!bytes) return [];
  return new TextDecoder()
    .decode(bytes)
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("#"))
    .map((line) => line.split(":"));
}

function parseId(value: string): number | undefined {
  if (!/^[0-9]+$/.test(value)) return undefined;
  const id = Number(value);
  return id <= MAX_ID ? id : undefined;
}

export function readPasswd(rootfs: string): PasswdEntry[] {
  return readDb(rootfs, "etc/passwd").flatMap(([name, , uid, gid, , home]) => {
    const u = parseId(uid ?? "");
    const g = parseId(gid ?? "");
    return name && u !== undefined && g !== undefined ? [{ name, uid: u, gid: g, home: home ?? "/" }] : [];
  });
}

export function readGroups(rootfs: string): GroupEntry[] {
  return readDb(rootfs, "etc/group").flatMap(([name, , gid, members]) => {
    const g = parseId(gid ?? "");
    return name && g !== undefined
      ? [{ name, gid: g, members: (members ?? "").split(",").filter(Boolean) }]
      : [];
  });
}

function notFound(what: string, spec: string): MagikError {
  return new MagikError(
    "InvalidInput",
    `${what} not found in the image's /etc/${what === "user" ? "passwd" : "group"}`,
    {
      details: { user: spec },
      hint: "Use a numeric uid[:gid], or a name listed in the image.",
    },
  );
}

export function resolveUser(rootfs: string, spec: string | undefined): ResolvedUser {
  // No user means uid 0, still looked up so root's supplementary groups and home come from the image.
  const value = (spec ?? "").trim() || "0";
  const [userPart = "", groupPart] = value.split(":", 2);
  if (value.split(":").length > 2 || userPart === "") {
    throw new MagikError("InvalidInput", `malformed user ${JSON.stringify(value)}`, {
      details: { user: value },
      hint: "Users look like uid, uid:gid, name or name:group.",
    });
  }
  const passwd = readPasswd(rootfs);
  const numericUid = parseId(userPart);
  const entry =
    numericUid !== undefined
      ? passwd.find((p) => p.uid === numericUid)
      : passwd.find((p) => p.name === userPart);
  if (numericUid === undefined && !entry) throw notFound("user", value);
  const uid = numericUid ?? entry!.uid;
  let gid = entry?.gid ?? 0;
  const groups = readGroups(rootfs);
  if (groupPart !== undefined && groupPart !== "") {
    const numericGid = parseId(groupPart);
    if (numericGid !== undefined) gid = numericGid;
    else {
      const group = groups.find((g) => g.name === groupPart);
      if (!group) throw notFound("group", value);
      gid = group.gid;
    }
  }
  const additionalGids = entry
    ? [...new Set(groups.filter((g) => g.members.includes(entry.name) && g.gid !== gid).map((g) => g.gid))]
    : [];
  const out: ResolvedUser = { uid, gid, additionalGids };
  if (entry) {
    out.home = entry.home;
    out.username = entry.name;
  } else if (uid === 0) {
    out.home = "/root";
  }
  return out;
}
