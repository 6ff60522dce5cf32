// /sign-in?organization=…: username and password, then whatever the account
// still needs (a new password in place of an emailed temporary one, new
// terms, a second-factor code), then the continue link.

import { Code } from "@connectrpc/connect";
import { credentials, problem, refusals, registration } from "./api";
import { RequiredAction, type AuthenticateResponse } from "./gen/onramp/v1/credentials_pb";
import { SecondFactorMethod } from "./gen/onramp/v1/common_pb";
import { resetAddress } from "./reset";
import { passwordRules } from "./rules";
import { t } from "./text";
import { create } from "@bufbuild/protobuf";
import { TermsSchema } from "./gen/onramp/v1/user_admin_pb";
import { choices, methodLabel, showBegun } from "./factor";
import { termsParts } from "./terms";
import { Errors, busy, field, h, link, paragraph, passwordField, show, submitButton } from "./ui";

interface Session {
  organization: string;
  username: string;
  password: string;
}

export function signInPage(): void {
  const organization = new URLSearchParams(window.location.search).get("organization");
  if (!organization) {
    show(t("missingOrganization.title"), paragraph(t("missingOrganization.body")));
    return;
  }
  const errors = new Errors();
  const username = field({ name: "username", label: t("signIn.username"), autocomplete: "username" });
  const password = passwordField({ name: "password", label: t("signIn.password"), autocomplete: "current-password" });
  errors.add(username, password);
  const submit = submitButton(t("signIn.submit"));
  const form = h("form", { novalidate: true }, username.wrap, password.wrap, submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, async () => {
      const session = { organization, username: username.input.value.trim(), password: password.input.value };
      try {
        const answer = await credentials.authenticate({ organizationId: organization, username: session.username, password: session.password });
        next(session, answer, answer.requiredActions);
      } catch (e) {
        const p = problem(e);
        errors.show(p.code === Code.Unauthenticated ? [{ field: "password", message: t("signIn.wrong") }] : refusals(p));
      }
    });
  });
  show(
    t("signIn.title"),
    errors.box,
    form,
    h("p", {}, link(resetAddress(organization), t("signIn.forgot"), "")),
  );
}

/// The next step for what is still `pending`. A code is asked for last: the
/// first answer already sent it, and asking again would send another.
function next(s: Session, answer: AuthenticateResponse, pending: RequiredAction[]): void {
  const rest = (done: RequiredAction) => pending.filter((a) => a !== done);
  if (pending.includes(RequiredAction.CHANGE_PASSWORD)) {
    changePassword(s, answer, rest(RequiredAction.CHANGE_PASSWORD));
  } else if (pending.includes(RequiredAction.ACCEPT_TERMS)) {
    acceptTerms(s, answer, rest(RequiredAction.ACCEPT_TERMS));
  } else if (pending.includes(RequiredAction.SECOND_FACTOR)) {
    askCode(s, answer.secondFactorMethod);
  } else if (pending.includes(RequiredAction.ENROLL_SECOND_FACTOR)) {
    enroll(s, answer, rest(RequiredAction.ENROLL_SECOND_FACTOR));
  } else if (pending.length < answer.requiredActions.length) {
    // Steps were done since the last answer: ask again for the account's
    // state now.
    void confirm(s);
  } else {
    signedIn(answer);
  }
}

async function confirm(s: Session): Promise<void> {
  show(t("loading"));
  try {
    const answer = await credentials.authenticate({ organizationId: s.organization, username: s.username, password: s.password });
    next(s, answer, answer.requiredActions);
  } catch (e) {
    show(t("signIn.title"), paragraph(refusals(problem(e))[0]?.message ?? "", "notice error-text"));
  }
}

/// A hidden username beside a new password, so a password manager saves
/// the right pair.
function usernameForManagers(username: string): HTMLInputElement {
  const input = h("input", { type: "text", name: "username", autocomplete: "username", class: "visually-hidden", tabindex: "-1", "aria-hidden": "true", readonly: true });
  input.value = username;
  return input;
}

function changePassword(s: Session, answer: AuthenticateResponse, pending: RequiredAction[]): void {
  const errors = new Errors();
  const password = passwordField({ name: "new_password", label: t("signIn.newPassword"), autocomplete: "new-password" });
  const rules = passwordRules(answer.passwordRules, password.input);
  errors.add(password);
  const submit = submitButton(t("signIn.changeSubmit"));
  const form = h("form", { novalidate: true }, usernameForManagers(s.username), rules, password.wrap, submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, async () => {
      try {
        await credentials.changePassword({ organizationId: s.organization, username: s.username, password: s.password, newPassword: password.input.value });
        s.password = password.input.value;
        next(s, answer, pending);
      } catch (e) {
        errors.show(refusals(problem(e)));
      }
    });
  });
  show(t("signIn.changeTitle"), paragraph(t("signIn.changeLead")), errors.box, form);
}

function acceptTerms(s: Session, answer: AuthenticateResponse, pending: RequiredAction[]): void {
  const terms = answer.terms;
  const version = terms?.version ?? 0;
  const errors = new Errors();
  const { parts, accepted } = termsParts(terms ?? create(TermsSchema), "terms_version");
  errors.add(accepted);
  const submit = submitButton(t("signIn.termsSubmit"));
  const form = h("form", { novalidate: true }, ...parts, submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!accepted.input.checked) {
      errors.show([{ field: "terms_version", message: t("signIn.termsRequired") }]);
      return;
    }
    void busy(submit, async () => {
      try {
        await registration.acceptTerms({ organizationId: s.organization, username: s.username, password: s.password, termsVersion: version });
        next(s, answer, pending);
      } catch (e) {
        errors.show(refusals(problem(e)));
      }
    });
  });
  show(t("signIn.termsTitle"), paragraph(t("signIn.termsLead")), errors.box, form);
}

/// Sets up the second factor the organisation requires: choose a method,
/// begin it (QR code and key, or a code sent), prove it with a code.
function enroll(s: Session, answer: AuthenticateResponse, pending: RequiredAction[]): void {
  const errors = new Errors();
  const methods = answer.secondFactorMethods;
  if (methods.length === 0) {
    show(t("signIn.enrollTitle"), paragraph(t("signIn.enrollUnavailable")));
    return;
  }
  const choice = choices("method", t("register.secondFactorMethod"), methods.map((m) => [String(m), methodLabel(m)]));
  const code = field({ name: "code", label: t("register.code"), autocomplete: "one-time-code", inputmode: "numeric", maxlength: 6 });
  code.wrap.hidden = true;
  errors.add(choice, code);
  const area = h("div", { class: "setup", "aria-live": "polite" });
  const setUp = h("button", { type: "button", class: "button secondary setup-button" }, t("register.setUp"));
  let begun = SecondFactorMethod.UNSPECIFIED;
  const chosen = (): SecondFactorMethod => Number(choice.value() || "0") as SecondFactorMethod;
  const credentialsOf = () => ({ organizationId: s.organization, username: s.username, password: s.password });
  setUp.addEventListener("click", () =>
    void busy(setUp, async () => {
      const method = chosen();
      if (method === SecondFactorMethod.UNSPECIFIED) {
        errors.show([{ field: "method", message: t("signIn.chooseMethod") }]);
        return;
      }
      errors.clear();
      try {
        showBegun(area, await credentials.beginSecondFactorEnrollment({ ...credentialsOf(), method }));
        begun = method;
        code.wrap.hidden = false;
        submit.hidden = false;
        code.input.focus();
      } catch (e) {
        errors.show(refusals(problem(e)));
      }
    }),
  );
  const submit = submitButton(t("signIn.enrollSubmit"));
  submit.hidden = true;
  const form = h("form", { novalidate: true }, choice.wrap, setUp, area, code.wrap, submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, async () => {
      try {
        await credentials.completeSecondFactorEnrollment({ ...credentialsOf(), method: begun, code: code.input.value.trim() });
        next(s, answer, pending);
      } catch (e) {
        errors.show(refusals(problem(e)));
      }
    });
  });
  show(t("signIn.enrollTitle"), paragraph(t("signIn.enrollLead")), errors.box, form);
}

function askCode(s: Session, method: SecondFactorMethod): void {
  const errors = new Errors();
  const code = field({ name: "second_factor_code", label: t("register.code"), autocomplete: "one-time-code", inputmode: "numeric", maxlength: 6 });
  errors.add(code);
  const submit = submitButton(t("signIn.codeSubmit"));
  const form = h("form", { novalidate: true }, code.wrap, submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, async () => {
      try {
        const answer = await credentials.authenticate({ organizationId: s.organization, username: s.username, password: s.password, secondFactorCode: code.input.value.trim() });
        next(s, answer, answer.requiredActions);
      } catch (e) {
        const p = problem(e);
        errors.show(p.code === Code.Unauthenticated ? [{ field: "second_factor_code", message: t("signIn.codeWrong") }] : refusals(p));
      }
    });
  });
  const lead =
    method === SecondFactorMethod.EMAIL ? t("signIn.codeEmail") : method === SecondFactorMethod.SMS ? t("signIn.codeSms") : t("signIn.codeTotp");
  show(t("signIn.codeTitle"), paragraph(lead), errors.box, form);
}

function signedIn(answer: AuthenticateResponse): void {
  const target = answer.continueUrl ? new URL(answer.continueUrl, window.location.href) : null;
  const elsewhere = target && target.pathname !== window.location.pathname;
  show(
    t("signIn.doneTitle"),
    paragraph(t("signIn.doneBody", { username: answer.user?.username ?? "" })),
    elsewhere ? link(target.href, t("continue")) : null,
  );
}
