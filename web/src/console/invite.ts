// Invite users (seed 004): pasted addresses counted by the server's own
// parser as the admin types (a dry run of SendInvitations), service area and
// role, Invite; then the results as they stream in, with a progress bar, and
// who was not sent and why.

import { problem, refusals, sentence } from "../api";
import { RecipientOutcome } from "../gen/onramp/v1/common_pb";
import { t } from "../text";
import { Errors, busy, errorSlot, h, paragraph, show, submitButton, withError } from "../ui";
import { admin, invitations } from "./api";

const COUNT_AFTER_MS = 300;

function picker(name: string, label: string, options: { id: string; name: string }[]) {
  const select = h("select", { id: `f-${name}`, name, "aria-describedby": `f-${name}-error` });
  for (const o of options) select.append(h("option", { value: o.id }, o.name));
  const error = errorSlot(name);
  const wrap = h("div", { class: "field" }, h("label", { for: select.id }, label), error, select);
  return { select, field: withError(name, wrap, select as unknown as HTMLInputElement, error) };
}

export function invitePage(): void {
  show(t("console.inviteTitle"), paragraph(t("console.loading")));
  void Promise.all([admin.listServiceAreas({}), admin.listRoles({})])
    .then(([areas, roles]) => form(areas.serviceAreas, roles.roles))
    .catch((e) => show(t("console.inviteTitle"), paragraph(sentence(problem(e)), "notice error-text")));
}

function form(areas: { id: string; name: string }[], roles: { id: string; name: string }[]): void {
  const errors = new Errors();
  const text = h("textarea", {
    id: "f-recipients_text",
    name: "recipients_text",
    spellcheck: "false",
    "aria-describedby": "f-recipients_text-hint f-recipients_text-error recipient-count",
  });
  const textError = errorSlot("recipients_text");
  const textWrap = h(
    "div",
    { class: "field" },
    h("label", { for: text.id }, t("console.recipients")),
    h("p", { class: "hint", id: "f-recipients_text-hint" }, t("console.recipientsHint")),
    textError,
    text,
  );
  const counted = h("div", { id: "recipient-count", "aria-live": "polite" });
  const area = picker("service_area_id", t("console.area"), areas);
  const role = picker("role_id", t("console.role"), roles);
  errors.add(withError("recipients_text", textWrap, text as unknown as HTMLInputElement, textError), area.field, role.field);

  // Counted by the server, so the console and the API never disagree on
  // what an address is.
  let timer: number | undefined;
  let asked = 0;
  const count = async () => {
    const mine = ++asked;
    if (!text.value.trim()) {
      counted.replaceChildren();
      return;
    }
    const unrecognised: string[] = [];
    let recognised = 0;
    let invalid = 0;
    try {
      for await (const event of invitations.sendInvitations({
        recipientsText: text.value,
        serviceAreaId: area.select.value,
        roleId: role.select.value,
        dryRun: true,
      })) {
        if (event.event.case === "summary") {
          recognised = event.event.value.recognized;
          invalid = event.event.value.invalid;
        } else if (event.event.case === "result" && event.event.value.outcome === RecipientOutcome.INVALID_ADDRESS) {
          unrecognised.push(event.event.value.input);
        }
      }
    } catch {
      return;
    }
    if (mine !== asked) return;
    counted.replaceChildren(
      h("p", { class: "count" }, h("strong", { id: "recognised" }, t("console.recognised", { n: recognised })), ", ", h("strong", { id: "unrecognised" }, t("console.unrecognised", { n: invalid }))),
    );
    if (unrecognised.length) {
      counted.append(h("div", {}, paragraph(t("console.unrecognisedList")), h("ul", { id: "unrecognised-list" }, ...unrecognised.map((u) => h("li", {}, u)))));
    }
  };
  text.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void count(), COUNT_AFTER_MS);
  });

  const submit = submitButton(t("console.invite"));
  const formEl = h("form", { novalidate: true }, textWrap, counted, h("div", { class: "two-columns" }, area.field.wrap, role.field.wrap), submit);
  formEl.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, () => send(text.value, area.select.value, role.select.value, errors));
  });
  show(t("console.inviteTitle"), errors.box, formEl);
}

/// Sends, showing progress as results stream in, then the confirmation.
async function send(recipientsText: string, serviceAreaId: string, roleId: string, errors: Errors): Promise<void> {
  const bar = h("progress", { class: "progress", max: "1", value: "0" });
  const status = h("p", { role: "status", "aria-live": "polite" });
  let total = 0;
  let done = 0;
  let sent = 0;
  const notSent: { input: string; outcome: RecipientOutcome; reason: string }[] = [];
  try {
    for await (const event of invitations.sendInvitations({ recipientsText, serviceAreaId, roleId })) {
      switch (event.event.case) {
        case "summary":
          total = event.event.value.total;
          bar.max = Math.max(total, 1);
          show(t("console.inviteTitle"), bar, status);
          break;
        case "result": {
          done += 1;
          const r = event.event.value;
          if (r.outcome === RecipientOutcome.SENT) sent += 1;
          else notSent.push({ input: r.input, outcome: r.outcome, reason: r.reason });
          // Counts, not rows, stay in memory: a send of many thousands
          // keeps the page light.
          if (done % 50 === 0 || done === total) {
            bar.value = done;
            status.textContent = t("console.progress", { done, total, sent, notSent: notSent.length });
          }
          break;
        }
        default:
          break;
      }
    }
  } catch (e) {
    if (total === 0) {
      errors.show(refusals(problem(e)));
      return;
    }
    status.textContent = sentence(problem(e));
    return;
  }
  bar.value = bar.max;
  const more = h("a", { href: "#/invite", class: "button" }, t("console.more"));
  more.addEventListener("click", (e) => {
    e.preventDefault();
    invitePage();
  });
  show(
    t("console.confirmationTitle"),
    bar,
    h("p", { id: "sent-count" }, t("console.sentCount", { n: sent })),
    notSent.length
      ? h(
          "section",
          { "aria-labelledby": "not-sent-title" },
          h("h2", { id: "not-sent-title" }, t("console.notSentTitle")),
          h(
            "ul",
            { id: "not-sent" },
            ...notSent.slice(0, 1000).map((n) =>
              h("li", {}, `${n.input}: ${reasonText(n.outcome, n.reason)}`),
            ),
          ),
        )
      : null,
    more,
  );
}

function reasonText(outcome: RecipientOutcome, reason: string): string {
  const key = `console.reason.RECIPIENT_OUTCOME_${RecipientOutcome[outcome]}`;
  const text = t(key);
  return text === key ? reason : outcome === RecipientOutcome.FAILED && reason ? `${text} (${reason})` : text;
}
