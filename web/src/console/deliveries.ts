// Deliveries (seed 003's "Status Email"): every email with its state
// (queued, sending, sent, opened once its link is viewed, failed with the
// server's reply), filtered by state and kind; the recent bulk sends with
// their progress; and one batch followed live with WatchBatch, which any
// tab (or any replica behind it) can do while the batch runs.

import { DeliveryState, type Batch, type Delivery } from "../gen/onramp/v1/invitations_pb";
import { EmailKind } from "../gen/onramp/v1/common_pb";
import { t } from "../text";
import { append, h, paragraph, show } from "../ui";
import { here, invitations, say } from "./api";
import { address, chip, failed, loading, pager, row, select, table, when } from "./parts";
import { follow } from "./progress";

const PAGE_SIZE = 50;
const STATES = [DeliveryState.QUEUED, DeliveryState.SENDING, DeliveryState.SENT, DeliveryState.OPENED, DeliveryState.FAILED];
export const KINDS = [EmailKind.INVITATION, EmailKind.CREDENTIALS, EmailKind.WELCOME, EmailKind.PASSWORD_RESET, EmailKind.EMAIL_CODE];

export function kindText(kind: EmailKind): string {
  return t(`console.kind.${EmailKind[kind]}`);
}

function stateChip(state: DeliveryState): HTMLElement {
  return chip(`DELIVERY_${DeliveryState[state]}`, t(`console.delivery.${DeliveryState[state]}`));
}

export function deliveryTable(deliveries: Delivery[]): HTMLElement {
  const columns = [t("console.to"), t("console.kindColumn"), t("console.statusColumn"), t("console.when"), t("console.reply")];
  return table(
    columns,
    deliveries.map((d) =>
      row(
        columns,
        [
          d.email,
          kindText(d.kind),
          stateChip(d.state),
          d.openTime ? t("console.openedAt", { when: when(d.openTime) }) : d.sendTime ? t("console.sentAt", { when: when(d.sendTime) }) : d.nextAttemptTime ? t("console.nextTry", { when: when(d.nextAttemptTime) }) : when(d.createTime),
          d.lastError ? h("span", { class: "reply" }, d.lastError, d.attempts > 1 ? ` ${t("console.attempts", { n: d.attempts })}` : "") : "",
        ],
        { "data-email": d.email, "data-state": DeliveryState[d.state] },
      ),
    ),
    { id: "deliveries" },
  );
}

function batchRows(batches: Batch[]): HTMLElement {
  const columns = [t("console.started"), t("console.kindColumn"), t("console.progressColumn"), t("console.counts"), ""];
  return table(
    columns,
    batches.map((b) => {
      const done = b.total - b.outstanding;
      const bar = h("progress", { class: "progress small", max: String(Math.max(b.total, 1)), value: String(done), "aria-label": t("console.batchProgress", { done, total: b.total }) });
      return row(
        columns,
        [
          when(b.createTime),
          kindText(b.kind),
          h("span", {}, bar, " ", b.completeTime ? t("console.batchDone") : t("console.batchRunning", { done, total: b.total })),
          t("console.batchCounts", { sent: b.sent, failed: b.failed, other: b.total - b.outstanding - b.sent - b.failed }),
          h("a", { href: address("/deliveries", { batch: b.id }) }, b.completeTime ? t("console.open") : t("console.follow")),
        ],
        { "data-batch": b.id },
      );
    }),
    { id: "batches" },
  );
}

function kindOf(name: string): EmailKind {
  return EmailKind[name as keyof typeof EmailKind] ?? EmailKind.UNSPECIFIED;
}

function stateOf(name: string): DeliveryState {
  return DeliveryState[name as keyof typeof DeliveryState] ?? DeliveryState.UNSPECIFIED;
}

export async function deliveriesPage(params: URLSearchParams): Promise<void> {
  const batch = params.get("batch") ?? "";
  if (batch) {
    await batchPage(batch, params);
    return;
  }
  const title = t("console.deliveriesTitle");
  const state = params.get("state") ?? "";
  const kind = params.get("kind") ?? "";
  const pageToken = params.get("page") ?? "";
  loading(title);
  let batches;
  let found;
  try {
    [batches, found] = await Promise.all([
      invitations.listBatches({ pageSize: 10 }, here()),
      invitations.listDeliveries({ pageSize: PAGE_SIZE, pageToken, state: stateOf(state), kind: kindOf(kind) }, here()),
    ]);
  } catch (e) {
    failed(title, e);
    return;
  }
  const filters = filterForm("/deliveries", { state, kind });
  show(
    title,
    h(
      "section",
      { class: "section", "aria-labelledby": "batches-title" },
      h("h2", { id: "batches-title" }, t("console.recentBatches")),
      batches.batches.length ? batchRows(batches.batches) : paragraph(t("console.noBatches")),
    ),
    h(
      "section",
      { class: "section", "aria-labelledby": "emails-title" },
      h("h2", { id: "emails-title" }, t("console.everyEmail")),
      filters,
      found.deliveries.length ? deliveryTable(found.deliveries) : paragraph(state || kind ? t("console.noDeliveriesFilter") : t("console.noDeliveries"), "notice"),
      pager(found.deliveries.length, undefined, pageToken, found.nextPageToken, (page) => address("/deliveries", { state, kind, page })),
    ),
  );
}

function filterForm(path: string, current: { state: string; kind: string }, extra: Record<string, string> = {}): HTMLElement {
  const state = select("f-state", t("console.statusColumn"), [["", t("console.anyState")], ...STATES.map((s): [string, string] => [DeliveryState[s], t(`console.delivery.${DeliveryState[s]}`)])], current.state);
  const kind = select("f-kind", t("console.kindColumn"), [["", t("console.anyKind")], ...KINDS.map((k): [string, string] => [EmailKind[k], kindText(k)])], current.kind);
  const form = h("form", { class: "filters", role: "search" }, state.wrap, kind.wrap, h("button", { type: "submit", class: "button secondary" }, t("console.apply")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    window.location.hash = address(path, { ...extra, state: state.select.value, kind: kind.select.value });
  });
  return form;
}

/// One batch, live: WatchBatch replays what happened and follows the rest,
/// then its emails with their states.
async function batchPage(batchId: string, params: URLSearchParams): Promise<void> {
  const title = t("console.batchTitle");
  const state = params.get("state") ?? "";
  const progress = h("div", { id: "watch" });
  const emails = h("section", { class: "section", "aria-labelledby": "batch-emails-title" });
  show(title, h("p", {}, h("a", { href: "#/deliveries" }, t("console.backToDeliveries"))), progress, emails);
  progress.append(paragraph(t("console.loading")));
  try {
    await follow(invitations.watchBatch({ batchId }, here()), progress);
  } catch (e) {
    failed(title, e);
    return;
  }
  try {
    const found = await invitations.listDeliveries({ batchId, pageSize: PAGE_SIZE, state: stateOf(state) }, here());
    emails.replaceChildren();
    append(emails, [
      h("h2", { id: "batch-emails-title" }, t("console.batchEmails")),
      filterForm("/deliveries", { state, kind: "" }, { batch: batchId }),
      found.deliveries.length ? deliveryTable(found.deliveries) : paragraph(t("console.noDeliveriesFilter")),
      found.nextPageToken ? paragraph(t("console.firstOnly", { n: found.deliveries.length })) : null,
    ]);
  } catch (e) {
    emails.replaceChildren(paragraph(say(e), "notice error-text"));
  }
}
