// Credentials live only in sessionStorage: gone when the tab closes, never in localStorage or
// cookies, never in the URL.

const KEY = "shop.credentials";

/** {kind: "apiKey" | "jwt", secret} or null. */
export function load() {
  try {
    const value = JSON.parse(sessionStorage.getItem(KEY) ?? "null");
    return value && typeof value.secret === "string" ? value : null;
  } catch {
    return null;
  }
}

export function save(kind, secret) {
  sessionStorage.setItem(KEY, JSON.stringify({ kind, secret }));
}

export function clear() {
  sessionStorage.removeItem(KEY);
}

/** The HTTP headers that carry the credentials. */
export function authHeaders(credentials = load()) {
  if (!credentials) return {};
  return credentials.kind === "jwt"
    ? { Authorization: `Bearer ${credentials.secret}` }
    : { "x-api-key": credentials.secret };
}
