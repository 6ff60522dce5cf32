// Pieces every console screen uses: times, status chips, tables that stack
// on a phone, confirmations that list what will happen, and paging.

import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import { formatTime, t } from "../text";
import { busy, h, paragraph, show } from "../ui";
import { left, say } from "./api";

type Cell = Node | string | null | undefined | false;

export function when(time?: Timestamp): string {
  return time ? formatTime(timestampDate(time)) : "";
}

/// A status with a word as well as a colour (never colour alone).
export function chip(kind: string, word: string): HTMLElement {
  return h("span", { class: `chip chip-${kind}` }, word);
}

/// One row; each cell carries its column's name, which a narrow screen
/// shows beside the value when the table stacks.
export function row(columns: string[], cells: Cell[], props: Record<string, string> = {}): HTMLTableRowElement {
  const tr = h("tr", props);
  cells.forEach((cell, i) => {
    const td = h("td", { "data-label": columns[i] ?? "" });
    if (cell !== null && cell !== undefined && cell !== false) td.append(cell);
    tr.append(td);
  });
  return tr;
}

export function table(columns: (string | Node)[], rows: HTMLTableRowElement[], props: Record<string, string> = {}): HTMLElement {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "stacking", ...props },
      // A column without a visible name (its buttons say what they do) is
      // still named for screen readers.
      h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { scope: "col" }, c === "" ? h("span", { class: "visually-hidden" }, t("console.actions")) : c)))),
      h("tbody", {}, ...rows),
    ),
  );
}

export function loading(title: string): void {
  show(title, paragraph(t("console.loading")));
}

/// A screen whose data could not be read; a screen being left says nothing.
export function failed(title: string, error: unknown): void {
  if (left(error)) return;
  show(title, paragraph(say(error), "notice error-text"));
}

export function notice(area: HTMLElement, text: string, error = false): void {
  area.replaceChildren(paragraph(text, error ? "notice error-text" : "notice"));
}

export interface Confirmation {
  /// Names the region for screen readers.
  label: string;
  question: string;
  /// Who or what it reaches; long lists show their first entries.
  items?: string[];
  yes: string;
  danger?: boolean;
  go: () => Promise<void>;
}

const LISTED = 50;

/// Asks before something that cannot be taken back, listing what it will
/// do; the Yes button takes the focus.
export function confirm(area: HTMLElement, c: Confirmation): void {
  const yes = h("button", { type: "button", class: c.danger ? "button danger" : "button", "data-action": "confirm" }, c.yes);
  const cancel = h("button", { type: "button", class: "button secondary", "data-action": "cancel" }, t("console.cancel"));
  cancel.addEventListener("click", () => area.replaceChildren());
  yes.addEventListener("click", () => void busy(yes, c.go));
  const items = c.items ?? [];
  const list = items.length
    ? h(
        "ul",
        { class: "confirm-list" },
        ...items.slice(0, LISTED).map((i) => h("li", {}, i)),
        items.length > LISTED ? h("li", {}, t("console.andMore", { n: items.length - LISTED })) : null,
      )
    : null;
  area.replaceChildren(h("div", { class: "panel-plain", role: "region", "aria-label": c.label }, paragraph(c.question), list, yes, cancel));
  yes.focus();
}

/// Links to the first and the next page of a list whose address is
/// `address(token)`.
export function pager(shown: number, total: number | undefined, token: string, next: string, address: (token: string) => string): HTMLElement {
  return h(
    "p",
    { class: "pager" },
    total === undefined ? "" : `${t("console.showing", { count: shown, total })} `,
    token ? h("a", { href: address("") }, t("console.previous")) : null,
    " ",
    next ? h("a", { href: address(next), rel: "next" }, t("console.next")) : null,
  );
}

/// A `#/path?query` address with the empty values left out.
export function address(path: string, params: Record<string, string>): string {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "")).toString();
  return `#${path}${query ? `?${query}` : ""}`;
}

/// A labelled select of `options` (value, text), with `chosen` selected.
export function select(id: string, label: string, options: [string, string][], chosen = ""): { wrap: HTMLElement; select: HTMLSelectElement } {
  const element = h("select", { id, name: id.replace(/^f-/, "") });
  for (const [value, text] of options) {
    const option = h("option", { value }, text);
    if (value === chosen) option.selected = true;
    element.append(option);
  }
  return { wrap: h("div", { class: "field" }, h("label", { for: id }, label), element), select: element };
}
