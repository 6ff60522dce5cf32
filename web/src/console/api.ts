// The console's clients: the same public API over gRPC-Web, with the API key
// the admin pasted sent as a bearer token on every call.

import { Code, ConnectError, type Interceptor, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { type Problem, problem, sentence } from "../api";
import { baseUrl } from "../endpoint";
import { Credentials } from "../gen/onramp/v1/credentials_pb";
import { Invitations } from "../gen/onramp/v1/invitations_pb";
import { ApiKeyScope, UserAdmin } from "../gen/onramp/v1/user_admin_pb";
import { t } from "../text";

// In this tab's session storage only: never a cookie or local storage, and
// gone on sign-out or when the tab closes.
const KEY = "onramp.console.key";

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function keepKey(key: string): void {
  sessionStorage.setItem(KEY, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(KEY);
  forgetPowers();
}

const bearer: Interceptor = (next) => async (request) => {
  const key = storedKey();
  if (key) request.header.set("authorization", `Bearer ${key}`);
  return next(request);
};

const transport = createGrpcWebTransport({ baseUrl: baseUrl(), interceptors: [bearer] });

export const admin = createClient(UserAdmin, transport);
export const invitations = createClient(Invitations, transport);
export const credentials = createClient(Credentials, transport);

/// What the signed-in key may do, asked once (GetCaller), so that the
/// console offers only those actions; the server checks every call anyway.
export interface Powers {
  users: boolean;
  invitations: boolean;
  credentials: boolean;
  /// Policy and API keys.
  admin: boolean;
  audit: boolean;
}

let powers: Powers | null = null;

export async function keyPowers(): Promise<Powers> {
  if (powers) return powers;
  const info = await admin.getCaller({});
  const has = (scope: ApiKeyScope) =>
    info.scopes.some((s) => s === scope || s === ApiKeyScope.ADMIN || s === ApiKeyScope.PLATFORM);
  powers = {
    users: has(ApiKeyScope.USERS_WRITE),
    invitations: has(ApiKeyScope.INVITATIONS_WRITE),
    credentials: has(ApiKeyScope.CREDENTIALS_WRITE),
    admin: has(ApiKeyScope.ADMIN),
    audit: has(ApiKeyScope.AUDIT_READ),
  };
  return powers;
}

export function forgetPowers(): void {
  powers = null;
}

// Each screen's calls are cancelled when the admin moves to another, so a
// stream left behind stops using the tab's memory; the work it started goes
// on in the server (a batch can be followed again from Deliveries).
let screen = new AbortController();

export function newScreen(): void {
  screen.abort();
  screen = new AbortController();
}

/// Call options for the current screen.
export function here(): { signal: AbortSignal } {
  return { signal: screen.signal };
}

/// Whether `error` is only a screen being left (the console cancels calls
/// for nothing else).
export function left(error: unknown): boolean {
  return ConnectError.from(error).code === Code.Canceled;
}

/// A refusal in the console's words: a key that lacks a scope is not a
/// paused account, as it would be on the person's pages.
export function consoleSentence(p: Problem): string {
  return p.code === Code.PermissionDenied ? t("console.notAllowed") : sentence(p);
}

export function say(error: unknown): string {
  return consoleSentence(problem(error));
}

let flash = "";

/// Draws the current screen again, from the server's answers, saying
/// `message` at its top.
export function redraw(message = ""): void {
  flash = message;
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}

/// The message a redraw was asked to say, once.
export function takeFlash(): string {
  const message = flash;
  flash = "";
  return message;
}
