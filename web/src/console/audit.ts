// The audit log: who changed what, when and from where, newest first,
// filtered by action or by the person or thing changed, and paged.

import { t } from "../text";
import { h, paragraph, show } from "../ui";
import { type Powers, admin, here } from "./api";
import { address, failed, loading, pager, row, table, when } from "./parts";
import { organisationTabs } from "./organisation";

const PAGE_SIZE = 50;

export async function auditPage(params: URLSearchParams, powers: Powers): Promise<void> {
  const title = t("console.auditTitle");
  const action = params.get("action") ?? "";
  const target = params.get("target") ?? "";
  const pageToken = params.get("page") ?? "";
  loading(title);
  let found;
  try {
    found = await admin.listAuditEvents({ action, targetId: target, pageSize: PAGE_SIZE, pageToken }, here());
  } catch (e) {
    failed(title, e);
    return;
  }
  const actionInput = h("input", { type: "text", id: "f-action", name: "action", autocomplete: "off", "aria-describedby": "f-action-hint" });
  actionInput.value = action;
  const targetInput = h("input", { type: "text", id: "f-target", name: "target", autocomplete: "off" });
  targetInput.value = target;
  const filters = h(
    "form",
    { class: "filters", role: "search" },
    h("div", { class: "field grow" }, h("label", { for: "f-action" }, t("console.auditAction")), h("p", { class: "hint", id: "f-action-hint" }, t("console.auditActionHint")), actionInput),
    h("div", { class: "field grow" }, h("label", { for: "f-target" }, t("console.auditTarget")), targetInput),
    h("button", { type: "submit", class: "button secondary" }, t("console.apply")),
  );
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    window.location.hash = address("/organisation/audit", { action: actionInput.value.trim(), target: targetInput.value.trim() });
  });
  const columns = [t("console.when"), t("console.auditWho"), t("console.auditAction"), t("console.auditWhat"), t("console.auditFrom")];
  const rows = found.auditEvents.map((e) => {
    const details = Object.entries(e.details)
      .map(([k, v]) => `${k}: ${v}`)
      .join(", ");
    return row(
      columns,
      [
        when(e.createTime),
        e.actor,
        h("code", {}, e.action),
        h("span", {}, `${e.targetType} `, h("a", { href: address("/organisation/audit", { target: e.targetId }) }, e.targetId), details ? h("span", { class: "hint block" }, details) : null),
        e.clientAddress,
      ],
      { "data-action": e.action },
    );
  });
  show(
    title,
    organisationTabs("#/organisation/audit", powers),
    filters,
    rows.length ? table(columns, rows, { id: "audit" }) : paragraph(action || target ? t("console.noEventsFilter") : t("console.noEvents"), "notice"),
    pager(rows.length, undefined, pageToken, found.nextPageToken, (page) => address("/organisation/audit", { action, target, page })),
  );
}
