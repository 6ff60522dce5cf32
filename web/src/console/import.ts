// Import (seed 001): a CSV file in one request (ImportUsersCsv), per-row
// results as they arrive, then Invite Email or Password Email to the people
// imported, after a preview of the real email (a dry run of the send).

import { problem, refusals } from "../api";
import { ImportOutcome } from "../gen/onramp/v1/user_admin_pb";
import { t } from "../text";
import { Errors, append, busy, checkbox, errorSlot, h, paragraph, show, submitButton, withError } from "../ui";
import { type Powers, admin, here, left, say } from "./api";
import { type SendKind, emailView, preview, stream } from "./bulk";
import { failed, loading, select } from "./parts";
import { follow } from "./progress";

/// Refused rows listed by name; the rest are counted.
const LISTED = 1_000;

export async function importPage(powers: Powers): Promise<void> {
  const title = t("console.importTitle");
  loading(title);
  let areas;
  let roles;
  try {
    [areas, roles] = await Promise.all([admin.listServiceAreas({ pageSize: 1000 }, here()), admin.listRoles({ pageSize: 1000 }, here())]);
  } catch (e) {
    failed(title, e);
    return;
  }
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
  const area = select("f-default_service_area", t("console.defaultArea"), [["", t("console.noDefault")], ...areas.serviceAreas.map((a): [string, string] => [a.id, a.name])]);
  const role = select("f-default_role", t("console.defaultRole"), [["", t("console.noDefault")], ...roles.roles.map((r): [string, string] => [r.id, r.name])]);
  const upsert = checkbox("upsert", t("console.upsert"));
  const submit = submitButton(t("console.import"));
  const form = h("form", { novalidate: true }, wrap, h("div", { class: "two-columns" }, area.wrap, role.wrap), upsert.wrap, submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, async () => {
      const chosen = file.files?.[0];
      if (!chosen) {
        errors.show([{ field: "csv", message: t("console.csvMissing") }]);
        return;
      }
      const options = { upsert: upsert.input.checked, defaultServiceArea: area.select.value, defaultRole: role.select.value };
      await run(await chosen.text(), options, powers, errors);
    });
  });
  show(title, errors.box, form);
}

interface Options {
  upsert: boolean;
  defaultServiceArea: string;
  defaultRole: string;
}

async function run(csv: string, options: Options, powers: Powers, errors: Errors): Promise<void> {
  const status = h("p", { role: "status", "aria-live": "polite", id: "import-status" });
  const refused = h("ul", { id: "import-errors" });
  const created: string[] = [];
  let rows = 0;
  let listed = 0;
  let summary = null;
  try {
    for await (const message of admin.importUsersCsv({ options, csv }, here())) {
      if (message.item.case === "result") {
        const r = message.item.value;
        rows += 1;
        if (r.outcome === ImportOutcome.CREATED) created.push(r.userId);
        if (r.outcome === ImportOutcome.ERROR && listed < LISTED) {
          listed += 1;
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
    if (left(e)) return;
    if (rows === 0) {
      errors.show(refusals(problem(e)));
      return;
    }
    status.textContent = say(e);
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
  const more = summary.errors > listed ? paragraph(t("console.andMore", { n: summary.errors - listed })) : null;
  const next = h("div", { id: "import-next" });
  if (created.length > 0 && (powers.invitations || powers.credentials)) {
    next.append(paragraph(t("console.importNext", { n: created.length })));
    if (powers.invitations) {
      const invite = h("button", { type: "button", class: "button", "data-action": "invite-email" }, t("console.inviteEmail"));
      invite.addEventListener("click", () => void previewThenSend(created, "invitation", next));
      next.append(invite);
    }
    if (powers.credentials) {
      const password = h("button", { type: "button", class: "button", "data-action": "password-email" }, t("console.passwordEmail"));
      password.addEventListener("click", () => void previewThenSend(created, "credentials", next));
      next.append(password);
    }
  }
  show(t("console.importTitle"), status, refused, more, next);
}

/// Shows the real email as the server renders it (a dry run), and who
/// gets it, before anything is sent.
async function previewThenSend(userIds: string[], kind: SendKind, area: HTMLElement): Promise<void> {
  area.replaceChildren(paragraph(t("console.loading")));
  let email;
  try {
    email = await preview(kind, { userIds });
  } catch (e) {
    if (!left(e)) area.replaceChildren(paragraph(say(e), "notice error-text"));
    return;
  }
  const send = h("button", { type: "button", class: "button", "data-action": "send" }, t("console.sendTo", { n: userIds.length }));
  send.addEventListener("click", () =>
    void busy(send, async () => {
      const progress = h("div", { id: "send-progress" });
      area.replaceChildren(progress);
      try {
        await follow(stream(kind, { userIds }, false), progress);
      } catch (e) {
        area.replaceChildren(paragraph(say(e), "notice error-text"));
      }
    }),
  );
  area.replaceChildren(h("h2", {}, t("console.previewTitle")));
  append(area, [email ? emailView(email) : null, send]);
}
