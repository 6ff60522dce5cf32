// /register?token=…: what the invitation offers, then profile, password,
// second factor and terms in one form, then the confirmation.

import { Code } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { linkProblem, registration, problem, refusals, sentence, showUnavailable, type Problem } from "./api";
import { SecondFactorMethod } from "./gen/onramp/v1/common_pb";
import type { RegistrationInfo } from "./gen/onramp/v1/registration_pb";
import { choices, methodLabel, showBegun } from "./factor";
import { formatTime, t } from "./text";
import { passwordRules } from "./rules";
import { termsParts } from "./terms";
import { Errors, type Field, busy, errorSlot, field, h, link, paragraph, passwordField, show, submitButton, takeParam, withError } from "./ui";

// Kept for a reload of the page, after the token has left the address bar;
// per tab, and gone when the tab closes.
const TOKEN_KEY = "onramp.register.token";

export async function registerPage(): Promise<void> {
  const token = takeParam("token") ?? sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    show(t("missingToken.title"), paragraph(t("missingToken.body")));
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  show(t("loading"));
  try {
    const info = await registration.getRegistration({ token });
    registrationForm(token, info);
  } catch (e) {
    refused(token, problem(e));
  }
}

/// A link that cannot register: each state with its own way forward.
function refused(token: string, p: Problem): void {
  const reason = linkProblem(p, ["INVITATION_EXPIRED", "INVITATION_REVOKED", "INVITATION_USED", "ALREADY_REGISTERED"]);
  if (!reason) {
    showUnavailable(t("register.unavailableTitle"), p, () => void registerPage());
    return;
  }
  if (reason !== "INVITATION_EXPIRED") sessionStorage.removeItem(TOKEN_KEY);
  const key = `register.errors.${reason}`;
  if (reason !== "INVITATION_EXPIRED") {
    show(t(`${key}.title`), paragraph(t(`${key}.body`)));
    return;
  }
  const status = h("div", { role: "status", "aria-live": "polite" });
  const ask = h("button", { type: "button", class: "button" }, t(`${key}.action`));
  ask.addEventListener("click", () =>
    void busy(ask, async () => {
      try {
        await registration.requestNewInvitation({ token });
        sessionStorage.removeItem(TOKEN_KEY);
        ask.remove();
        status.replaceChildren(paragraph(t(`${key}.sent`), "notice"));
      } catch (e) {
        status.replaceChildren(paragraph(sentence(problem(e)), "notice error-text"));
      }
    }),
  );
  show(t(`${key}.title`), paragraph(t(`${key}.body`)), status, ask);
}

function accessLine(info: RegistrationInfo): string | null {
  const role = info.roleName;
  const area = info.serviceAreaName;
  if (role && area) return t("register.access", { role, area });
  if (role) return t("register.accessRole", { role });
  if (area) return t("register.accessArea", { area });
  return null;
}

function termsBlock(info: RegistrationInfo): { block: HTMLElement; accepted: Field } | null {
  const terms = info.terms;
  if (!terms || terms.version === 0) return null;
  const { parts, accepted } = termsParts(terms, "accepted_terms_version");
  const title = terms.title || t("register.termsDefault");
  return { block: h("fieldset", { class: "section" }, h("legend", {}, t("register.termsHeading", { title })), ...parts), accepted };
}

function registrationForm(token: string, info: RegistrationInfo): void {
  const organization = info.organizationName;
  const errors = new Errors();
  const email = field({ name: "email", label: t("register.email"), type: "email", autocomplete: "username", value: info.email, readonly: true, hint: t("register.emailHint") });
  const first = field({ name: "first_name", label: t("register.firstName"), autocomplete: "given-name", value: info.firstName, maxlength: 200 });
  const last = field({ name: "last_name", label: t("register.lastName"), autocomplete: "family-name", value: info.lastName, maxlength: 200 });
  const mobile = field({ name: "mobile", label: t("register.mobile"), type: "tel", autocomplete: "tel", value: info.mobile, hint: t("register.mobileHint") });
  const password = passwordField({ name: "password", label: t("register.password"), autocomplete: "new-password" });
  const rules = passwordRules(info.password, password.input);
  errors.add(email, first, last, mobile, password);

  const factor = secondFactor(token, info, mobile, errors);
  const terms = termsBlock(info);
  if (terms) errors.add(terms.accepted);

  const submit = submitButton(t("register.submit"));
  const form = h("form", { novalidate: true },
    h("fieldset", { class: "section" }, h("legend", {}, t("register.aboutYou")), email.wrap, first.wrap, last.wrap, mobile.wrap),
    h("fieldset", { class: "section" }, h("legend", {}, t("register.passwordHeading")), rules, password.wrap),
    factor?.block,
    terms?.block,
    submit,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, async () => {
      try {
        const user = await registration.completeRegistration({
          token,
          firstName: first.input.value,
          lastName: last.input.value,
          mobile: mobile.input.value,
          password: password.input.value,
          secondFactorMethod: factor?.method() ?? SecondFactorMethod.UNSPECIFIED,
          secondFactorCode: factor?.code.input.value ?? "",
          acceptedTermsVersion: terms?.accepted.input.checked ? (info.terms?.version ?? 0) : 0,
        });
        sessionStorage.removeItem(TOKEN_KEY);
        done(organization, user.username, info.continueUrl);
      } catch (e) {
        const p = problem(e);
        if (p.reason && p.reason !== "" && p.fields.length === 0 && p.code === Code.FailedPrecondition) {
          refused(token, p);
          return;
        }
        errors.show(refusals(p));
      }
    });
  });

  const expires = info.expireTime ? paragraph(t("register.expires", { when: formatTime(timestampDate(info.expireTime)) }), "hint") : null;
  show(t("register.title", { organization }), paragraph(t("register.lead", { organization })), accessLine(info) ? paragraph(accessLine(info) ?? "") : null, expires, errors.box, form);
}

/// The second-factor part of the form, when the organisation offers one:
/// choose a method, set it up (QR code and key, or a code sent), then type
/// the code.
function secondFactor(token: string, info: RegistrationInfo, mobile: Field, errors: Errors) {
  const step = info.secondFactor;
  if (!step || step.methods.length === 0) return null;
  const options: [string, string][] = step.methods.map((m) => [String(m), methodLabel(m)]);
  if (!step.required) options.push([String(SecondFactorMethod.UNSPECIFIED), t("register.methodNone")]);
  const choice = choices("second_factor_method", t("register.secondFactorMethod"), options);
  const code = field({ name: "second_factor_code", label: t("register.code"), autocomplete: "one-time-code", inputmode: "numeric", maxlength: 6, hint: t("register.codeHint") });
  code.wrap.hidden = true;
  errors.add(choice, code);
  const setUpArea = h("div", { class: "setup", "aria-live": "polite" });
  const setUp = h("button", { type: "button", class: "button secondary setup-button" }, t("register.setUp"));
  let begun = SecondFactorMethod.UNSPECIFIED;
  const chosen = (): SecondFactorMethod => Number(choice.value() || "0") as SecondFactorMethod;
  choice.wrap.addEventListener("change", () => {
    setUp.hidden = chosen() === SecondFactorMethod.UNSPECIFIED;
    if (chosen() !== begun) {
      code.wrap.hidden = true;
      setUpArea.replaceChildren();
    } else if (begun !== SecondFactorMethod.UNSPECIFIED) {
      code.wrap.hidden = false;
    }
  });
  setUp.addEventListener("click", () =>
    void busy(setUp, async () => {
      const method = chosen();
      if (method === SecondFactorMethod.UNSPECIFIED) return;
      errors.clear();
      try {
        const begin = await registration.beginSecondFactor({
          token,
          method,
          mobile: method === SecondFactorMethod.SMS ? mobile.input.value : "",
        });
        begun = method;
        showBegun(setUpArea, begin);
        if (method !== SecondFactorMethod.TOTP) setUp.textContent = t("register.sendAgain");
        code.wrap.hidden = false;
        code.input.focus();
      } catch (e) {
        errors.show(refusals(problem(e)).map((r) => (r.field === "method" ? { ...r, field: "second_factor_method" } : r)));
      }
    }),
  );
  setUp.hidden = chosen() === SecondFactorMethod.UNSPECIFIED;
  const intro = step.required
    ? t("register.secondFactorRequired", { organization: info.organizationName })
    : t("register.secondFactorOptional");
  return {
    block: h("fieldset", { class: "section" }, h("legend", {}, t("register.secondFactorHeading")), paragraph(intro), choice.wrap, setUp, setUpArea, code.wrap),
    code,
    method: (): SecondFactorMethod => (code.wrap.hidden ? SecondFactorMethod.UNSPECIFIED : begun),
  };
}

function done(organization: string, username: string, continueUrl: string): void {
  show(
    t("register.doneTitle"),
    h("div", { class: "panel" }, h("p", {}, t("register.doneUsername")), h("p", { class: "username", id: "username" }, username)),
    paragraph(t("register.doneBody", { organization })),
    continueUrl ? link(continueUrl, t("continue")) : null,
  );
}
