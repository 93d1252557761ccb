/**
 * `WWW-Authenticate` per RFC 7235 as registries send it: `Bearer realm="…",service="…",scope="…"` or
 * `Basic realm="…"`. Several challenges may share one header; quoted values may contain commas.
 */
export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;

export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  let rest = header.trim();
  let current: AuthChallenge | undefined;
  while (rest.length > 0) {
    const name = TOKEN.exec(rest)?.[0];
    if (!name) {
      rest = rest.slice(1).trimStart();
      continue;
    }
    rest = rest.slice(name.length).trimStart();
    if (rest.startsWith("=")) {
      rest = rest.slice(1).trimStart();
      let value: string;
      if (rest.startsWith('"')) {
        let i = 1;
        value = "";
        for (; i < rest.length && rest[i] !== '"'; i++) {
          if (rest[i] === "\\" && i + 1 < rest.length) i++;
          value += rest[i];
        }
        rest = rest.slice(i + 1);
      } else {
        value = TOKEN.exec(rest)?.[0] ?? "";
        rest = rest.slice(value.length);
      }
      if (current) current.params[name.toLowerCase()] = value;
    } else {
      current = { scheme: name.toLowerCase(), params: {} };
      challenges.push(current);
    }
    rest = rest.trimStart();
    if (rest.startsWith(",")) rest = rest.slice(1).trimStart();
  }
  return challenges;
}
