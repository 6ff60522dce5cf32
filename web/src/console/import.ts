// Import (seed 001): a CSV file in one request (ImportUsersCsv), per-row
// results as they arrive, then Invite Email or Password Email to the people
// imported, after a preview of the real email (a dry run of the send).

import { problem, refusals, sentence } from "../api";
import type { BatchEvent } from "../gen/onramp/v1/common_pb";
import { ImportOutcome } from "../gen/onramp/v1/user_admin_pb";
import { t } from "../text";
import { Errors, busy, errorSlot, h, paragraph, show, submitButton, withError } from "../ui";
import { admin, credentials, invitations } from "./api";

export function importPage(): void {
  const errors = new Errors();
  const file = h("input", { type: "file", id: "f-csv", name: "csv", accept: ".csv,text/csv", "aria-describedby": "f-csv-hint f-csv-error" });
  const error = errorSlot("csv");
  const wrap = h(
    "div",
    { class: "field" },
    h("label", { for: file.id }, t("console.csvFile")),
    h("p", { class: "hint", id: "f-csv-hint" }, t("console.csvHint")),
    error,
    file,
  );
  errors.add(withError("csv", wrap, file, error));
  const submit = submitButton(t("console.import"));
  const form = h("form", { novalidate: true }, wrap, submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, async () => {
      const chosen = file.files?.[0];
      if (!chosen) {
        errors.show([{ field: "csv", message: t("console.csvMissing") }]);
        return;
      }
      await run(await chosen.text(), errors);
    });
  });
  show(t("console.importTitle"), errors.box, form);
}

async function run(csv: string, errors: Errors): Promise<void> {
  const status = h("p", { role: "status", "aria-live": "polite", id: "import-status" });
  const refused = h("ul", { id: "import-errors" });
  const created: string[] = [];
  let rows = 0;
  let summary = null;
  try {
    for await (const message of admin.importUsersCsv({ options: {}, csv })) {
      if (message.item.case === "result") {
        const r = message.item.value;
        rows += 1;
        if (r.outcome === ImportOutcome.CREATED) created.push(r.userId);
        if (r.outcome === ImportOutcome.ERROR) {
          const why = r.errors.map((e) => `${e.field} ${e.description}`).join("; ");
          refused.append(h("li", {}, t("console.rowRefused", { row: r.rowNumber, email: r.email, why })));
        }
        if (rows === 1) show(t("console.importTitle"), status, refused);
        status.textContent = t("console.importProgress", { rows, created: created.length });
      } else if (message.item.case === "summary") {
        summary = message.item.value;
      }
    }
  } catch (e) {
    if (rows === 0) {
      errors.show(refusals(problem(e)));
      return;
    }
    status.textContent = sentence(problem(e));
    return;
  }
  if (!summary) return;
  status.textContent = t("console.importDone", {
    rows: summary.rows,
    created: summary.created,
    updated: summary.updated,
    skipped: summary.skippedExisting,
    errors: summary.errors,
  });
  const next = h("div", { id: "import-next" });
  if (created.length > 0) {
    const invite = h("button", { type: "button", class: "button", "data-action": "invite-email" }, t("console.inviteEmail"));
    const password = h("button", { type: "button", class: "button", "data-action": "password-email" }, t("console.passwordEmail"));
    invite.addEventListener("click", () => void preview(created, "invite", next));
    password.addEventListener("click", () => void preview(created, "password", next));
    next.append(paragraph(t("console.importNext", { n: created.length })), invite, password);
  }
  show(t("console.importTitle"), status, refused, next);
}

type Kind = "invite" | "password";

function stream(kind: Kind, userIds: string[], dryRun: boolean): AsyncIterable<BatchEvent> {
  return kind === "invite"
    ? invitations.sendInvitations({ userIds, dryRun })
    : credentials.emailCredentials({ userIds, dryRun });
}

/// Shows the real email as the server renders it, and who gets it, before
/// anything is sent.
async function preview(userIds: string[], kind: Kind, area: HTMLElement): Promise<void> {
  area.replaceChildren(paragraph(t("console.loading")));
  let email = null;
  try {
    for await (const event of stream(kind, userIds, true)) {
      if (event.event.case === "preview") email = event.event.value;
    }
  } catch (e) {
    area.replaceChildren(paragraph(sentence(problem(e)), "notice error-text"));
    return;
  }
  const send = h("button", { type: "button", class: "button", "data-action": "send" }, t("console.sendTo", { n: userIds.length }));
  send.addEventListener("click", () => void busy(send, () => sendNow(userIds, kind, area)));
  area.replaceChildren(h("h2", {}, t("console.previewTitle")));
  if (email) {
    area.append(
      h("div", { class: "panel-plain", id: "email-preview" }, h("p", {}, h("strong", {}, email.subject)), h("pre", { class: "email-text" }, email.textBody)),
    );
  }
  area.append(send);
}

async function sendNow(userIds: string[], kind: Kind, area: HTMLElement): Promise<void> {
  let sent = 0;
  let notSent = 0;
  try {
    for await (const event of stream(kind, userIds, false)) {
      if (event.event.case === "completion") {
        sent = event.event.value.sent;
        notSent = event.event.value.failed + event.event.value.invalid;
      }
    }
  } catch (e) {
    area.replaceChildren(paragraph(sentence(problem(e)), "notice error-text"));
    return;
  }
  area.replaceChildren(paragraph(t("console.emailsSent", { sent, notSent }), "notice"));
}
