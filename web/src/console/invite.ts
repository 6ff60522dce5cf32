// Invite users (seed 004): pasted addresses counted by the server's own
// parser as the admin types (a dry run of SendInvitations), service area and
// role, Invite; then the results as they stream in, with a progress bar, and
// who was not sent and why.

import { problem, refusals } from "../api";
import { RecipientOutcome } from "../gen/onramp/v1/common_pb";
import { t } from "../text";
import { Errors, busy, errorSlot, h, paragraph, show, submitButton, withError } from "../ui";
import { admin, here, invitations, left, say } from "./api";
import { address } from "./parts";
import { follow } from "./progress";

const COUNT_AFTER_MS = 300;
/// Unrecognised entries listed by name; the rest are counted.
const LISTED = 100;

function picker(name: string, label: string, options: { id: string; name: string }[]) {
  const select = h("select", { id: `f-${name}`, name, "aria-describedby": `f-${name}-error` });
  for (const o of options) select.append(h("option", { value: o.id }, o.name));
  const error = errorSlot(name);
  const wrap = h("div", { class: "field" }, h("label", { for: select.id }, label), error, select);
  return { select, field: withError(name, wrap, select as unknown as HTMLInputElement, error) };
}

export function invitePage(): void {
  show(t("console.inviteTitle"), paragraph(t("console.loading")));
  void Promise.all([admin.listServiceAreas({ pageSize: 1000 }, here()), admin.listRoles({ pageSize: 1000 }, here())])
    .then(([areas, roles]) => form(areas.serviceAreas, roles.roles))
    .catch((e) => {
      if (!left(e)) show(t("console.inviteTitle"), paragraph(say(e), "notice error-text"));
    });
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
  let counting: AbortController | undefined;
  const count = async () => {
    // A newer count replaces one still streaming.
    counting?.abort();
    const mine = new AbortController();
    counting = mine;
    here().signal.addEventListener("abort", () => mine.abort());
    if (!text.value.trim()) {
      counted.replaceChildren();
      return;
    }
    const unrecognised: string[] = [];
    let recognised = 0;
    let invalid = 0;
    try {
      for await (const event of invitations.sendInvitations(
        { recipientsText: text.value, serviceAreaId: area.select.value, roleId: role.select.value, dryRun: true },
        { signal: mine.signal },
      )) {
        if (event.event.case === "summary") {
          recognised = event.event.value.recognized;
          invalid = event.event.value.invalid;
        } else if (event.event.case === "result" && event.event.value.outcome === RecipientOutcome.INVALID_ADDRESS) {
          if (unrecognised.length < LISTED) unrecognised.push(event.event.value.input);
        }
      }
    } catch {
      return;
    }
    if (mine !== counting) return;
    counted.replaceChildren(
      h("p", { class: "count" }, h("strong", { id: "recognised" }, t("console.recognised", { n: recognised })), ", ", h("strong", { id: "unrecognised" }, t("console.unrecognised", { n: invalid }))),
    );
    if (unrecognised.length) {
      counted.append(
        h(
          "div",
          {},
          paragraph(t("console.unrecognisedList")),
          h("ul", { id: "unrecognised-list" }, ...unrecognised.map((u) => h("li", {}, u))),
          invalid > unrecognised.length ? paragraph(t("console.andMore", { n: invalid - unrecognised.length })) : null,
        ),
      );
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
/// Once the batch exists its address replaces this one, so a reload (or
/// coming back) follows it with WatchBatch instead of sending again.
async function send(recipientsText: string, serviceAreaId: string, roleId: string, errors: Errors): Promise<void> {
  const area = h("div", { id: "send-progress" });
  const more = h("a", { href: "#/invite", class: "button" }, t("console.more"));
  more.addEventListener("click", (e) => {
    e.preventDefault();
    invitePage();
  });
  try {
    await follow(invitations.sendInvitations({ recipientsText, serviceAreaId, roleId }, here()), area, {
      onBatch: (batch) => {
        history.replaceState(null, "", address("/deliveries", { batch }));
        show(t("console.confirmationTitle"), area);
      },
    });
  } catch (e) {
    if (!left(e)) errors.show(refusals(problem(e)));
    return;
  }
  area.append(more);
}
