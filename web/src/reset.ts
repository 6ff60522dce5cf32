// /reset-password: ask for a link (?organization=…), or with ?token=… choose
// the new password; the end page shows the username (seed 000).

import { Code } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type Problem, credentials, linkProblem, problem, refusals, showUnavailable } from "./api";
import type { PasswordResetInfo } from "./gen/onramp/v1/credentials_pb";
import { passwordRules } from "./rules";
import { formatTime, t } from "./text";
import { Errors, busy, field, h, link, paragraph, passwordField, show, submitButton, takeParam } from "./ui";

const TOKEN_KEY = "onramp.reset.token";

export function resetPage(): void {
  const token = takeParam("token") ?? sessionStorage.getItem(TOKEN_KEY);
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    void choosePassword(token);
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

/// A reset link: the organisation and its password rules first (viewing
/// spends nothing), then the new password.
async function choosePassword(token: string): Promise<void> {
  show(t("loading"));
  let info: PasswordResetInfo;
  try {
    info = await credentials.getPasswordReset({ token });
  } catch (e) {
    linkRefused(token, problem(e));
    return;
  }
  const errors = new Errors();
  const password = passwordField({ name: "new_password", label: t("reset.newPassword"), autocomplete: "new-password" });
  const rules = passwordRules(info.passwordRules, password.input);
  errors.add(password);
  const submit = submitButton(t("reset.setSubmit"));
  const form = h("form", { novalidate: true }, rules, password.wrap, submit);
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
        if (p.fields.length === 0 && (p.code === Code.NotFound || p.code === Code.FailedPrecondition || p.code === Code.PermissionDenied)) {
          linkRefused(token, p);
          return;
        }
        errors.show(refusals(p));
      }
    });
  });
  const expires = info.expireTime ? paragraph(t("reset.expires", { when: formatTime(timestampDate(info.expireTime)) }), "hint") : null;
  show(t("reset.setTitle"), paragraph(t("reset.setLead", { organization: info.organizationName })), expires, errors.box, form);
}

/// A link that cannot set a password, each case with what to do instead.
function linkRefused(token: string, p: Problem): void {
  const reason = linkProblem(p, ["RESET_LINK_EXPIRED", "RESET_LINK_USED"]);
  if (!reason) {
    showUnavailable(t("reset.unavailableTitle"), p, () => void choosePassword(token));
    return;
  }
  sessionStorage.removeItem(TOKEN_KEY);
  show(t(`reset.errors.${reason}.title`), paragraph(t(`reset.errors.${reason}.body`)));
}
