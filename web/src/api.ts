// The public API over gRPC-Web: the same RPCs any client calls, with the
// client generated from Onramp's .proto files.

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { baseUrl } from "./endpoint";
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb";
import { Credentials } from "./gen/onramp/v1/credentials_pb";
import { Registration } from "./gen/onramp/v1/registration_pb";
import { t } from "./text";
import { type Refusal, h, paragraph, show } from "./ui";

const transport = createGrpcWebTransport({ baseUrl: baseUrl() });

export const registration = createClient(Registration, transport);
export const credentials = createClient(Credentials, transport);

/// What a refused call means to a page.
export interface Problem {
  code: Code;
  /// `google.rpc.ErrorInfo.reason`, when the server gave one.
  reason?: string;
  /// Field violations (`google.rpc.BadRequest`), by the request's field names.
  fields: Refusal[];
  /// The server's own sentence.
  message: string;
}

export function problem(error: unknown): Problem {
  const e = ConnectError.from(error);
  const fields: Refusal[] = [];
  for (const bad of e.findDetails(BadRequestSchema)) {
    for (const v of bad.fieldViolations) fields.push({ field: v.field, message: v.description });
  }
  const reason = e.findDetails(ErrorInfoSchema)[0]?.reason;
  return { code: e.code, reason, fields, message: e.rawMessage };
}

/// A refusal that is not about one field, as a sentence a person
/// understands.
export function sentence(p: Problem): string {
  switch (p.code) {
    case Code.Unavailable:
    case Code.DeadlineExceeded:
    case Code.Canceled:
      return t("status.unavailable");
    case Code.ResourceExhausted:
      return t("status.rateLimited");
    case Code.PermissionDenied:
      return t("status.permission");
    case Code.Internal:
    case Code.Unknown:
    case Code.DataLoss:
    case Code.Unimplemented:
      return t("status.internal");
    default: {
      const message = p.message.charAt(0).toUpperCase() + p.message.slice(1);
      return message.endsWith(".") ? message : `${message}.`;
    }
  }
}

/// Field violations beside their fields, and anything else as a sentence.
export function refusals(p: Problem): Refusal[] {
  return p.fields.length > 0 ? p.fields : [{ message: sentence(p) }];
}

/// Why a link cannot be used: one of `reasons` the server named, or what
/// its status says (unknown or malformed, or a paused account).
export function linkProblem(p: Problem, reasons: readonly string[]): string | undefined {
  if (p.reason && reasons.includes(p.reason)) return p.reason;
  if (p.code === Code.NotFound || p.code === Code.InvalidArgument) return "NOT_FOUND";
  if (p.code === Code.PermissionDenied) return "PAUSED";
  return undefined;
}

/// A page that could not load for a passing reason, with a button to try
/// again.
export function showUnavailable(title: string, p: Problem, again: () => void): void {
  const retry = h("button", { type: "button", class: "button" }, t("retry"));
  retry.addEventListener("click", again);
  show(title, paragraph(sentence(p), "notice"), retry);
}
