// The console's clients: the same public API over gRPC-Web, with the API key
// the admin pasted sent as a bearer token on every call.

import { type Interceptor, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { Invitations } from "../gen/onramp/v1/invitations_pb";
import { UserAdmin } from "../gen/onramp/v1/user_admin_pb";

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
}

const bearer: Interceptor = (next) => async (request) => {
  const key = storedKey();
  if (key) request.header.set("authorization", `Bearer ${key}`);
  return next(request);
};

function baseUrl(): string {
  const meta = document.querySelector<HTMLMetaElement>('meta[name="onramp-api"]');
  const configured = meta?.content.trim();
  return configured ? configured.replace(/\/$/, "") : window.location.origin;
}

const transport = createGrpcWebTransport({ baseUrl: baseUrl(), interceptors: [bearer] });

export const admin = createClient(UserAdmin, transport);
export const invitations = createClient(Invitations, transport);
