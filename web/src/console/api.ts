// The console's clients: the same public API over gRPC-Web, with the API key
// the admin pasted sent as a bearer token on every call.

import { type Interceptor, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { baseUrl } from "../endpoint";
import { Credentials } from "../gen/onramp/v1/credentials_pb";
import { Invitations } from "../gen/onramp/v1/invitations_pb";
import { ApiKeyScope, UserAdmin } from "../gen/onramp/v1/user_admin_pb";

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
  };
  return powers;
}

export function forgetPowers(): void {
  powers = null;
}
