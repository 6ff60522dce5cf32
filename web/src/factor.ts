// Choosing and setting up a second factor: at registration, and at sign-in
// for an account whose organisation came to require one.

import { timestampDate } from "@bufbuild/protobuf/wkt";
import { SecondFactorMethod } from "./gen/onramp/v1/common_pb";
import type { BeginSecondFactorResponse } from "./gen/onramp/v1/registration_pb";
import { qrSvg } from "./qr";
import { formatTime, t } from "./text";
import { type Field, errorSlot, h, paragraph, withError } from "./ui";

export function methodLabel(m: SecondFactorMethod): string {
  switch (m) {
    case SecondFactorMethod.TOTP:
      return t("register.methodTotp");
    case SecondFactorMethod.EMAIL:
      return t("register.methodEmail");
    case SecondFactorMethod.SMS:
      return t("register.methodSms");
    default:
      return t("register.methodNone");
  }
}

/// A group of radio buttons that can carry a field error like an input.
export function choices(name: string, legend: string, options: [string, string][]): Field & { value(): string } {
  const error = errorSlot(name);
  const radios = options.map(([value, label], i) => {
    const input = h("input", { type: "radio", name, value, id: `f-${name}-${i}` });
    return { input, row: h("div", { class: "choice" }, input, h("label", { for: input.id }, label)) };
  });
  // One choice is no choice: it is made already.
  if (radios.length === 1 && radios[0]) radios[0].input.checked = true;
  const wrap = h(
    "fieldset",
    { class: "field", "aria-describedby": `f-${name}-error` },
    h("legend", {}, legend),
    error,
    ...radios.map((r) => r.row),
  );
  return {
    ...withError(name, wrap, radios[0]?.input ?? h("input"), error),
    value: () => radios.find((r) => r.input.checked)?.input.value ?? "",
  };
}

/// What a begun set-up shows: the QR code and key of an authenticator app,
/// or where a code was sent.
export function showBegun(area: HTMLElement, begin: BeginSecondFactorResponse): void {
  if (begin.method === SecondFactorMethod.TOTP) {
    area.replaceChildren(
      paragraph(t("register.totpScan")),
      qrSvg(begin.otpauthUri, t("register.totpQrLabel")),
      h("p", {}, t("register.totpSecret"), h("br"), h("code", { id: "totp-secret", class: "secret" }, begin.totpSecret)),
    );
  } else {
    const when = begin.codeExpireTime ? formatTime(timestampDate(begin.codeExpireTime)) : "";
    area.replaceChildren(paragraph(t("register.codeSentTo", { where: begin.codeSentTo, when })));
  }
}
