// People (seed 004's user list): counts per status, filters kept in the
// address, a page of people with a status chip (a word as well as a colour),
// and per person the paper plane (resend), pause and reactivate.

import { problem, sentence } from "../api";
import { UserStatus } from "../gen/onramp/v1/common_pb";
import type { User } from "../gen/onramp/v1/user_admin_pb";
import { t } from "../text";
import { busy, h, paragraph, show } from "../ui";
import { type Powers, admin, invitations } from "./api";

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

  const rows = page.users.map((user) => personRow(user, notice, powers));
  const table =
    rows.length === 0
      ? paragraph(query || status ? t("console.emptyFilter") : t("console.empty"), "notice")
      : h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            {},
            h("thead", {}, h("tr", {}, ...[t("console.name"), t("console.email"), t("console.statusColumn"), t("console.actions")].map((c) => h("th", { scope: "col" }, c)))),
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
  show(t("console.peopleTitle"), readOnly, countLinks, filters, notice, table, paging);
}

function personRow(user: User, notice: HTMLElement, powers: Powers): HTMLTableRowElement {
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
  return h("tr", { "data-email": user.email }, h("td", {}, name), h("td", {}, user.email), h("td", {}, chip(user.status)), actions);
}
