// /reset-password: ask for a link (?organization=…), or with ?token=… choose
// the new password; the end page shows the username (seed 000).

import { Code } from "@connectrpc/connect";
import { credentials, problem, refusals } from "./api";
import { t } from "./text";
import { Errors, busy, field, h, link, paragraph, passwordField, show, submitButton, takeParam } from "./ui";

const TOKEN_KEY = "onramp.reset.token";

export function resetPage(): void {
  const token = takeParam("token") ?? sessionStorage.getItem(TOKEN_KEY);
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    choosePassword(token);
    return;
  }
  const organization = new URLSearchParams(window.location.search).get("organization");
  if (!organization) {
    show(t("missingOrganization.title"), paragraph(t("missingOrganization.body")));
    return;
  }
  requestLink(organization);
}

export function resetAddress(organization: string): string {
  return `/reset-password?organization=${encodeURIComponent(organization)}`;
}

function requestLink(organization: string): void {
  const errors = new Errors();
  const login = field({ name: "email", label: t("reset.login"), autocomplete: "username", type: "text" });
  errors.add(login);
  const submit = submitButton(t("reset.requestSubmit"));
  const form = h("form", { novalidate: true }, login.wrap, submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, async () => {
      const value = login.input.value.trim();
      try {
        // The same neutral answer whether or not the account exists.
        await credentials.requestPasswordReset(
          value.includes("@") ? { organizationId: organization, email: value } : { organizationId: organization, username: value },
        );
        show(t("reset.requestedTitle"), paragraph(t("reset.requestedBody")));
      } catch (e) {
        errors.show(refusals(problem(e)).map((r) => (r.field === "username" ? { ...r, field: "email" } : r)));
      }
    });
  });
  show(t("reset.requestTitle"), paragraph(t("reset.requestLead")), errors.box, form);
}

function choosePassword(token: string): void {
  const errors = new Errors();
  const password = passwordField({ name: "new_password", label: t("reset.newPassword"), autocomplete: "new-password", hint: t("reset.newPasswordHint") });
  errors.add(password);
  const submit = submitButton(t("reset.setSubmit"));
  const form = h("form", { novalidate: true }, password.wrap, submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, async () => {
      try {
        const done = await credentials.completePasswordReset({ token, newPassword: password.input.value });
        sessionStorage.removeItem(TOKEN_KEY);
        show(
          t("reset.doneTitle"),
          h("div", { class: "panel" }, h("p", {}, t("reset.doneUsername")), h("p", { class: "username", id: "username" }, done.username)),
          paragraph(t("reset.doneBody")),
          done.continueUrl ? link(done.continueUrl, t("continue")) : null,
        );
      } catch (e) {
        const p = problem(e);
        // A spent, expired or unknown link: the server's sentence says which.
        if (p.code === Code.NotFound || p.code === Code.FailedPrecondition) sessionStorage.removeItem(TOKEN_KEY);
        errors.show(refusals(p));
      }
    });
  });
  show(t("reset.setTitle"), errors.box, form);
}
