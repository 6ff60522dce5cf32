// People (seed 004's user list): counts per status, filters kept in the
// address so a view can be shared, a page of people with a status chip (a
// word as well as a colour), per person the paper plane (resend), pause and
// reactivate, and the four emails for the people selected (or everyone the
// filters match).

import { Code, ConnectError } from "@connectrpc/connect";
import { UserStatus } from "../gen/onramp/v1/common_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ListUsersRequestSchema, User } from "../gen/onramp/v1/user_admin_pb";
import { t } from "../text";
import { busy, h, paragraph, show } from "../ui";
import { type Powers, admin, here, invitations, say } from "./api";
import { type SendKind, confirmSend, kinds } from "./bulk";
import { address, chip, failed, loading, notice, pager, row, select, table } from "./parts";

export const STATUSES = [UserStatus.STAGED, UserStatus.PENDING, UserStatus.EXPIRED, UserStatus.ACTIVE, UserStatus.INACTIVE];
const PAGE_SIZE = 50;
/// Ids asked for at once when "everyone matching" is chosen.
const GATHER_PAGE = 1_000;

export function statusName(status: UserStatus): string {
  return `USER_STATUS_${UserStatus[status]}`;
}

export function statusChip(status: UserStatus): HTMLElement {
  const name = statusName(status);
  return chip(name, t(`console.status.${name}`));
}

export function displayName(user: User): string {
  return [user.firstName, user.lastName].filter(Boolean).join(" ") || user.username;
}

interface Filter {
  status: string;
  q: string;
  area: string;
  role: string;
}

function filterFrom(params: URLSearchParams): Filter {
  return { status: params.get("status") ?? "", q: params.get("q") ?? "", area: params.get("area") ?? "", role: params.get("role") ?? "" };
}

function request(f: Filter): MessageInitShape<typeof ListUsersRequestSchema> {
  const status = f.status ? (UserStatus[f.status as keyof typeof UserStatus] ?? UserStatus.UNSPECIFIED) : UserStatus.UNSPECIFIED;
  return { status, query: f.q, serviceAreaId: f.area, roleId: f.role };
}

const addressOf = (f: Filter, page = "") => address("/people", { ...f, page });

export async function peoplePage(params: URLSearchParams, powers: Powers): Promise<void> {
  const filter = filterFrom(params);
  const pageToken = params.get("page") ?? "";
  const title = t("console.peopleTitle");
  loading(title);
  let page;
  let areas;
  let roles;
  try {
    [page, areas, roles] = await Promise.all([
      admin.listUsers({ ...request(filter), pageSize: PAGE_SIZE, pageToken }, here()),
      admin.listServiceAreas({ pageSize: 1000 }, here()),
      admin.listRoles({ pageSize: 1000 }, here()),
    ]);
  } catch (e) {
    failed(title, e);
    return;
  }
  const counts = new Map(page.statusCounts.map((c) => [c.status, c.count]));
  const everyone = page.statusCounts.reduce((sum, c) => sum + c.count, 0);
  const countLinks = h(
    "ul",
    { class: "counts", "aria-label": t("console.byStatus") },
    ...[UserStatus.UNSPECIFIED, ...STATUSES].map((s) => {
      const key = s === UserStatus.UNSPECIFIED ? "" : UserStatus[s];
      const label = s === UserStatus.UNSPECIFIED ? t("console.all") : t(`console.status.${statusName(s)}`);
      const n = s === UserStatus.UNSPECIFIED ? everyone : (counts.get(s) ?? 0);
      return h("li", {}, h("a", { href: addressOf({ ...filter, status: key }), "aria-current": key === filter.status ? "true" : undefined }, `${label} (${n})`));
    }),
  );

  const search = h("input", { type: "search", id: "f-q", name: "q", autocomplete: "off" });
  search.value = filter.q;
  const area = select("f-area", t("console.area"), [["", t("console.anyArea")], ...areas.serviceAreas.map((a): [string, string] => [a.id, a.name])], filter.area);
  const role = select("f-role", t("console.role"), [["", t("console.anyRole")], ...roles.roles.map((r): [string, string] => [r.id, r.name])], filter.role);
  const filters = h(
    "form",
    { class: "filters", role: "search" },
    h("div", { class: "field grow" }, h("label", { for: "f-q" }, t("console.search")), search),
    area.wrap,
    role.wrap,
    h("button", { type: "submit", class: "button secondary" }, t("console.apply")),
  );
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    window.location.hash = addressOf({ ...filter, q: search.value.trim(), area: area.select.value, role: role.select.value });
  });

  const messages = h("div", { id: "people-notice", role: "status", "aria-live": "polite" });
  const deleted = params.get("deleted");
  if (deleted) notice(messages, t("console.deleted", { email: deleted }));
  const selected = new Map<string, string>();
  const rows = page.users.map((user) => personRow(user, messages, powers, selected));
  const bulk = bulkBar(powers, filter, page.totalSize, selected, rows);
  const columns = [t("console.name"), t("console.email"), t("console.statusColumn"), t("console.actions")];
  const list =
    rows.length === 0
      ? paragraph(filter.q || filter.status || filter.area || filter.role ? t("console.emptyFilter") : t("console.empty"), "notice")
      : table([selectAll(rows), ...columns], rows, { id: "people" });
  const readOnly = !powers.users && !powers.invitations && !powers.credentials ? paragraph(t("console.readOnly"), "notice") : null;
  show(
    title,
    readOnly,
    countLinks,
    filters,
    bulk,
    messages,
    list,
    pager(page.users.length, page.totalSize, pageToken, page.nextPageToken, (token) => addressOf(filter, token)),
  );
}

/// A box in the header that ticks or clears every row of the page.
function selectAll(rows: HTMLTableRowElement[]): HTMLElement {
  const box = h("input", { type: "checkbox", id: "select-all", "aria-label": t("console.selectAll") });
  box.addEventListener("change", () => {
    for (const r of rows) {
      const each = r.querySelector<HTMLInputElement>("input[type=checkbox]");
      if (each && each.checked !== box.checked) each.click();
    }
  });
  return box;
}

/// Every id and address the filter matches, page by page.
async function everyoneMatching(filter: Filter): Promise<{ ids: string[]; emails: string[] }> {
  const ids: string[] = [];
  const emails: string[] = [];
  let pageToken = "";
  do {
    const page = await admin.listUsers({ ...request(filter), pageSize: GATHER_PAGE, pageToken }, here());
    for (const user of page.users) {
      ids.push(user.id);
      emails.push(user.email);
    }
    pageToken = page.nextPageToken;
  } while (pageToken);
  return { ids, emails };
}

/// The emails for the selected people, or for everyone the filters match,
/// each behind a confirmation that lists who it reaches.
function bulkBar(powers: Powers, filter: Filter, total: number, selected: Map<string, string>, rows: HTMLTableRowElement[]): HTMLElement | null {
  const offered = kinds(powers);
  if (offered.length === 0 || rows.length === 0) return null;
  const area = h("div", { id: "bulk-confirm" });
  const scope = h("input", { type: "checkbox", id: "f-everyone", name: "everyone" });
  const everyoneChoice = h("div", { class: "choice" }, scope, h("label", { for: scope.id }, t("console.everyoneMatching", { n: total })));
  const onlyStaged = filter.status === "STAGED" && !filter.q && !filter.area && !filter.role;
  const bar = h("div", { class: "bulk", id: "bulk", role: "group", "aria-label": t("console.bulkLabel") });
  for (const kind of offered) {
    const button = h("button", { type: "button", class: "button secondary", "data-bulk": kind }, t(`console.send.${kind}`));
    button.addEventListener("click", () =>
      void busy(button, async () => {
        if (scope.checked) {
          try {
            const all = await everyoneMatching(filter);
            confirmSend(area, kind as SendKind, { userIds: all.ids, allStaged: onlyStaged }, all.emails);
          } catch (e) {
            notice(area, say(e), true);
          }
          return;
        }
        if (selected.size === 0) {
          notice(area, t("console.selectFirst"), true);
          return;
        }
        confirmSend(area, kind as SendKind, { userIds: [...selected.keys()] }, [...selected.values()]);
      }),
    );
    bar.append(button);
  }
  return h("div", { class: "bulk-area" }, everyoneChoice, bar, area);
}

function personRow(user: User, messages: HTMLElement, powers: Powers, selected: Map<string, string>): HTMLTableRowElement {
  const actions = h("div", { class: "row-actions" });
  // The visible word, and for screen readers whose it is.
  const act = (action: string, shown: string, work: () => Promise<string>) => {
    const button = h("button", { type: "button", class: "icon-button", "data-action": action }, shown, h("span", { class: "visually-hidden" }, ` ${user.email}`));
    button.addEventListener("click", () =>
      void busy(button, async () => {
        try {
          notice(messages, await work());
        } catch (e) {
          notice(messages, say(e), true);
        }
      }),
    );
    actions.append(button);
  };
  for (const [action, label, work] of personActions(user, powers)) act(action, label, work);
  const pick = h("input", { type: "checkbox", "aria-label": t("console.select", { email: user.email }) });
  pick.addEventListener("change", () => {
    if (pick.checked) selected.set(user.id, user.email);
    else selected.delete(user.id);
  });
  const columns = ["", t("console.name"), t("console.email"), t("console.statusColumn"), t("console.actions")];
  return row(
    columns,
    [pick, h("a", { href: `#/people/${user.id}` }, displayName(user)), user.email, statusChip(user.status), actions],
    { "data-email": user.email },
  );
}

/// What can be done to one person from the list or their own page: the
/// paper plane (resend), pause or reactivate; each answers what it did.
export function personActions(user: User, powers: Powers): [string, string, () => Promise<string>][] {
  const offered: [string, string, () => Promise<string>][] = [];
  if (powers.invitations && (user.status === UserStatus.PENDING || user.status === UserStatus.EXPIRED)) {
    offered.push(["resend", t("console.resendShort"), () => resendLatest(user)]);
  }
  if (powers.users && user.status === UserStatus.INACTIVE) {
    offered.push([
      "reactivate",
      t("console.reactivateShort"),
      async () => {
        await admin.reactivateUser({ userId: user.id });
        return t("console.reactivated", { email: user.email });
      },
    ]);
  } else if (powers.users) {
    offered.push([
      "pause",
      t("console.pauseShort"),
      async () => {
        await admin.deactivateUser({ userId: user.id });
        return t("console.paused", { email: user.email });
      },
    ]);
  }
  return offered;
}

/// Resends the person's newest invitation (invitations list newest first):
/// a new link, the old one dead.
export async function resendLatest(user: User): Promise<string> {
  const found = await invitations.listInvitations({ userId: user.id, pageSize: 1 });
  const latest = found.invitations[0];
  if (!latest) throw new ConnectError(t("console.noInvitation"), Code.NotFound);
  await invitations.resendInvitation({ invitationId: latest.id });
  return t("console.resent", { email: user.email });
}
