// People (seed 004's user list): counts per status, filters kept in the
// address, a page of people with a status chip (a word as well as a colour),
// and per person the paper plane (resend), pause and reactivate.

import { problem, sentence } from "../api";
import { RecipientOutcome, UserStatus } from "../gen/onramp/v1/common_pb";
import type { User } from "../gen/onramp/v1/user_admin_pb";
import { t } from "../text";
import { busy, h, paragraph, show } from "../ui";
import { type Powers, admin, credentials, invitations } from "./api";

const STATUSES = [UserStatus.STAGED, UserStatus.PENDING, UserStatus.EXPIRED, UserStatus.ACTIVE, UserStatus.INACTIVE];
const PAGE_SIZE = 50;

function statusName(status: UserStatus): string {
  return `USER_STATUS_${UserStatus[status]}`;
}

function address(params: Record<string, string>): string {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "")).toString();
  return `#/people${query ? `?${query}` : ""}`;
}

function chip(status: UserStatus): HTMLElement {
  const name = statusName(status);
  return h("span", { class: `chip chip-${name}` }, t(`console.status.${name}`));
}

export async function peoplePage(params: URLSearchParams, powers: Powers): Promise<void> {
  const status = params.get("status") ?? "";
  const query = params.get("q") ?? "";
  const pageToken = params.get("page") ?? "";
  const statusValue = status ? (UserStatus[status as keyof typeof UserStatus] ?? UserStatus.UNSPECIFIED) : UserStatus.UNSPECIFIED;
  const notice = h("div", { role: "status", "aria-live": "polite" });
  show(t("console.peopleTitle"), paragraph(t("console.loading")));
  let counts: number[];
  let page;
  try {
    counts = await Promise.all(
      [UserStatus.UNSPECIFIED, ...STATUSES].map(async (s) => (await admin.listUsers({ pageSize: 1, status: s, query })).totalSize),
    );
    page = await admin.listUsers({ pageSize: PAGE_SIZE, status: statusValue, query, pageToken });
  } catch (e) {
    show(t("console.peopleTitle"), paragraph(sentence(problem(e)), "notice error-text"));
    return;
  }

  const countLinks = h(
    "ul",
    { class: "counts" },
    ...[UserStatus.UNSPECIFIED, ...STATUSES].map((s, i) => {
      const key = s === UserStatus.UNSPECIFIED ? "" : UserStatus[s];
      const label = s === UserStatus.UNSPECIFIED ? t("console.all") : t(`console.status.${statusName(s)}`);
      return h("li", {}, h("a", { href: address({ status: key, q: query }), "aria-current": key === status ? "true" : undefined }, `${label} (${counts[i]})`));
    }),
  );

  const search = h("input", { type: "search", id: "f-q", name: "q", autocomplete: "off" });
  search.value = query;
  const filters = h(
    "form",
    { class: "filters", role: "search" },
    h("div", { class: "field" }, h("label", { for: "f-q" }, t("console.search")), search),
    h("button", { type: "submit", class: "button secondary" }, t("console.apply")),
  );
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    window.location.hash = address({ status, q: search.value.trim() });
  });

  const selected = new Map<string, string>();
  const rows = page.users.map((user) => personRow(user, notice, powers, selected));
  const bulk = bulkActions(powers, selected, notice);
  const table =
    rows.length === 0
      ? paragraph(query || status ? t("console.emptyFilter") : t("console.empty"), "notice")
      : h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            {},
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { scope: "col" }, selectAll(rows)),
                ...[t("console.name"), t("console.email"), t("console.statusColumn"), t("console.actions")].map((c) => h("th", { scope: "col" }, c)),
              ),
            ),
            h("tbody", {}, ...rows),
          ),
        );
  const paging = h(
    "p",
    {},
    `${t("console.showing", { count: page.users.length, total: page.totalSize })} `,
    pageToken ? h("a", { href: address({ status, q: query }) }, t("console.previous")) : null,
    " ",
    page.nextPageToken ? h("a", { href: address({ status, q: query, page: page.nextPageToken }) }, t("console.next")) : null,
  );
  const readOnly = !powers.users && !powers.invitations ? paragraph(t("console.readOnly"), "notice") : null;
  show(t("console.peopleTitle"), readOnly, countLinks, filters, bulk, notice, table, paging);
}

/// A box in the header that ticks or clears every row of the page.
function selectAll(rows: HTMLTableRowElement[]): HTMLElement {
  const box = h("input", { type: "checkbox", id: "select-all", "aria-label": t("console.selectAll") });
  box.addEventListener("change", () => {
    for (const row of rows) {
      const each = row.querySelector<HTMLInputElement>("input[type=checkbox]");
      if (each && each.checked !== box.checked) each.click();
    }
  });
  return box;
}

type Bulk = "credentials" | "reset" | "invitation";

/// Actions on the selected people, each behind a confirmation that lists
/// who it will reach.
function bulkActions(powers: Powers, selected: Map<string, string>, notice: HTMLElement): HTMLElement {
  const bar = h("div", { class: "bulk", id: "bulk" });
  const confirm = h("div", { id: "bulk-confirm" });
  const offer = (kind: Bulk, label: string) => {
    const button = h("button", { type: "button", class: "button secondary", "data-bulk": kind }, label);
    button.addEventListener("click", () => {
      if (selected.size === 0) {
        notice.replaceChildren(paragraph(t("console.selectFirst"), "notice error-text"));
        return;
      }
      const ids = [...selected.keys()];
      const go = h("button", { type: "button", class: "button", "data-action": "confirm" }, t("console.confirm"));
      const cancel = h("button", { type: "button", class: "button secondary" }, t("console.cancel"));
      cancel.addEventListener("click", () => confirm.replaceChildren());
      go.addEventListener("click", () =>
        void busy(go, async () => {
          try {
            const events =
              kind === "credentials"
                ? credentials.emailCredentials({ userIds: ids })
                : kind === "reset"
                  ? credentials.sendResetLinks({ userIds: ids })
                  : invitations.sendInvitations({ userIds: ids });
            let sent = 0;
            let notSent = 0;
            for await (const event of events) {
              if (event.event.case === "result") {
                if (event.event.value.outcome === RecipientOutcome.SENT) sent += 1;
                else notSent += 1;
              }
            }
            confirm.replaceChildren();
            notice.replaceChildren(paragraph(t("console.emailsSent", { sent, notSent }), "notice"));
          } catch (e) {
            notice.replaceChildren(paragraph(sentence(problem(e)), "notice error-text"));
          }
        }),
      );
      confirm.replaceChildren(
        h(
          "div",
          { class: "panel-plain", role: "region", "aria-label": label },
          paragraph(t(`console.confirm_${kind}`, { n: ids.length })),
          h("ul", {}, ...[...selected.values()].map((email) => h("li", {}, email))),
          go,
          cancel,
        ),
      );
      go.focus();
    });
    bar.append(button);
  };
  if (powers.credentials) {
    offer("credentials", t("console.emailCredentials"));
    offer("reset", t("console.sendResetLinks"));
  }
  if (powers.invitations) offer("invitation", t("console.sendInvitation"));
  return h("div", {}, bar, confirm);
}

function personRow(user: User, notice: HTMLElement, powers: Powers, selected: Map<string, string>): HTMLTableRowElement {
  const name = [user.firstName, user.lastName].filter(Boolean).join(" ") || user.username;
  const actions = h("td", {});
  const say = (text: string) => notice.replaceChildren(paragraph(text, "notice"));
  // The visible word, and for screen readers whose it is.
  const act = (action: string, shown: string, work: () => Promise<string>) => {
    const button = h("button", { type: "button", class: "icon-button", "data-action": action }, shown, h("span", { class: "visually-hidden" }, ` ${user.email}`));
    button.addEventListener("click", () =>
      void busy(button, async () => {
        try {
          say(await work());
        } catch (e) {
          notice.replaceChildren(paragraph(sentence(problem(e)), "notice error-text"));
        }
      }),
    );
    actions.append(button);
  };
  if (powers.invitations && (user.status === UserStatus.PENDING || user.status === UserStatus.EXPIRED)) {
    act("resend", t("console.resendShort"), async () => {
      const found = await invitations.listInvitations({ userId: user.id, pageSize: 100 });
      const latest = found.invitations[found.invitations.length - 1];
      if (!latest) throw new Error("no invitation");
      await invitations.resendInvitation({ invitationId: latest.id });
      return t("console.resent", { email: user.email });
    });
  }
  if (!powers.users) {
    // Nothing to offer.
  } else if (user.status === UserStatus.INACTIVE) {
    act("reactivate", t("console.reactivateShort"), async () => {
      await admin.reactivateUser({ userId: user.id });
      return t("console.reactivated", { email: user.email });
    });
  } else {
    act("pause", t("console.pauseShort"), async () => {
      await admin.deactivateUser({ userId: user.id });
      return t("console.paused", { email: user.email });
    });
  }
  const pick = h("input", { type: "checkbox", "aria-label": t("console.select", { email: user.email }) });
  pick.addEventListener("change", () => {
    if (pick.checked) selected.set(user.id, user.email);
    else selected.delete(user.id);
  });
  return h(
    "tr",
    { "data-email": user.email },
    h("td", {}, pick),
    h("td", {}, name),
    h("td", {}, user.email),
    h("td", {}, chip(user.status)),
    actions,
  );
}
