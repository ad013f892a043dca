// Read tokens the user pasted, remembered in localStorage (this browser only), and which one is in use.

export interface SavedToken {
  label: string;
  token: string;
}

const TOKENS_KEY = "gnomon.dashboard.tokens";
const ACTIVE_KEY = "gnomon.dashboard.active";
const TOKEN_SHAPE = /^gn_r_[A-Za-z0-9]+_[A-Za-z0-9_-]+$/;

export function looksLikeReadToken(token: string): boolean {
  return TOKEN_SHAPE.test(token.trim());
}

/** The key id inside a token (gn_r_<key id>_<secret>), a harmless default label. */
export function keyIdOf(token: string): string {
  return token.split("_")[2] ?? "token";
}

export function loadTokens(): SavedToken[] {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(TOKENS_KEY) ?? "[]");
    if (!Array.isArray(parsed)) return [];
    return parsed.filter(
      (t): t is SavedToken => typeof t === "object" && t !== null && typeof t.token === "string" && typeof t.label === "string",
    );
  } catch {
    return [];
  }
}

export function activeToken(): SavedToken | null {
  const tokens = loadTokens();
  const active = localStorage.getItem(ACTIVE_KEY);
  return tokens.find((t) => t.token === active) ?? tokens[0] ?? null;
}

export function saveToken(label: string, token: string): SavedToken {
  const clean = token.trim();
  const saved = { label: label.trim() || `key ${keyIdOf(clean)}`, token: clean };
  const tokens = loadTokens().filter((t) => t.token !== clean);
  tokens.push(saved);
  localStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
  localStorage.setItem(ACTIVE_KEY, clean);
  return saved;
}

export function useToken(token: string): void {
  localStorage.setItem(ACTIVE_KEY, token);
}

export function forgetToken(token: string): void {
  localStorage.setItem(TOKENS_KEY, JSON.stringify(loadTokens().filter((t) => t.token !== token)));
  if (localStorage.getItem(ACTIVE_KEY) === token) localStorage.removeItem(ACTIVE_KEY);
}
