// Small DOM helpers: the pages are plain TypeScript, so that a person on a
// phone downloads the API client and little else.

import { fieldLabel, t } from "./text";

type Child = Node | string | null | undefined | false;
type Props = Record<string, string | boolean | number | EventListener | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = String(value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child);
  }
}

/// Replaces the page's content and title, and moves focus to the heading so
/// that a screen reader announces the new step.
export function show(title: string, ...children: Child[]): HTMLElement {
  const app = document.getElementById("app") as HTMLElement;
  const heading = h("h1", { tabindex: "-1" }, title);
  app.replaceChildren(heading);
  append(app, children);
  document.title = `${title} – ${t("product")}`;
  heading.focus();
  return app;
}

export function paragraph(text: string, cls?: string): HTMLParagraphElement {
  return h("p", { class: cls }, text);
}

export interface Field {
  name: string;
  wrap: HTMLElement;
  input: HTMLInputElement;
  setError(message?: string): void;
}

export interface FieldOptions {
  name: string;
  label: string;
  type?: string;
  autocomplete?: string;
  hint?: string;
  value?: string;
  readonly?: boolean;
  inputmode?: string;
  maxlength?: number;
  extra?: Child[];
}

/// A labelled input with its hint and its error above it (GOV.UK's order),
/// both tied to the input by `aria-describedby`.
export function field(o: FieldOptions): Field {
  const id = fieldId(o.name);
  const hint = o.hint ? h("p", { class: "hint", id: `${id}-hint` }, o.hint) : null;
  const error = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const input = h("input", {
    id,
    name: o.name,
    type: o.type ?? "text",
    autocomplete: o.autocomplete,
    inputmode: o.inputmode,
    readonly: o.readonly,
    maxlength: o.maxlength,
    spellcheck: o.type === "password" || o.autocomplete === "one-time-code" ? "false" : undefined,
    "aria-describedby": [hint ? `${id}-hint` : "", `${id}-error`].join(" ").trim(),
  });
  input.value = o.value ?? "";
  const wrap = h("div", { class: "field" }, h("label", { for: id }, o.label), hint, error, input);
  append(wrap, o.extra ?? []);
  return withError(o.name, wrap, input, error);
}

/// A field whose error is written into `error` and marked on `wrap`.
export function withError(name: string, wrap: HTMLElement, input: HTMLInputElement, error: HTMLElement): Field {
  return {
    name,
    wrap,
    input,
    setError(message?: string) {
      error.hidden = !message;
      error.textContent = message ?? "";
      wrap.classList.toggle("has-error", Boolean(message));
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    },
  };
}

export function errorSlot(name: string): HTMLParagraphElement {
  return h("p", { class: "field-error", id: `${fieldId(name)}-error`, hidden: true });
}

/// The input id of a field named by its request path (`user.email` gives
/// `f-user-email`), so that it can be written in a CSS selector.
export function fieldId(name: string): string {
  return `f-${name.replace(/[.[\]]+/g, "-").replace(/-$/, "")}`;
}

/// A checkbox with its label beside it, and its error above.
export function checkbox(name: string, label: string): Field {
  const box = h("input", { type: "checkbox", id: fieldId(name), name, "aria-describedby": `${fieldId(name)}-error` });
  const error = errorSlot(name);
  const wrap = h("div", { class: "field" }, error, h("div", { class: "choice" }, box, h("label", { for: box.id }, label)));
  return withError(name, wrap, box, error);
}

/// A password input with a show/hide toggle.
export function passwordField(o: FieldOptions): Field {
  const f = field({ ...o, type: "password" });
  const toggle = h("button", { type: "button", class: "link-button", "aria-controls": f.input.id }, t("showPassword"));
  toggle.addEventListener("click", () => {
    const hidden = f.input.type === "password";
    f.input.type = hidden ? "text" : "password";
    toggle.textContent = hidden ? t("hidePassword") : t("showPassword");
  });
  f.wrap.append(toggle);
  return f;
}

export interface Refusal {
  field?: string;
  message: string;
}

/// The error summary at the top of a form: each refusal links to its field,
/// and the summary takes focus so that it is read out.
export class Errors {
  readonly box: HTMLDivElement;
  private fields = new Map<string, Field>();

  constructor() {
    this.box = h("div", { class: "error-summary", tabindex: "-1", hidden: true, "aria-labelledby": "error-summary-title" });
  }

  add(...fields: Field[]): void {
    for (const f of fields) this.fields.set(f.name, f);
  }

  clear(): void {
    this.box.hidden = true;
    this.box.replaceChildren();
    for (const f of this.fields.values()) f.setError();
  }

  show(refusals: Refusal[]): void {
    this.clear();
    const list = h("ul");
    for (const r of refusals) {
      const f = r.field ? this.fields.get(r.field) : undefined;
      const sentence = r.field ? fieldSentence(r.field, r.message) : r.message;
      if (f) {
        f.setError(sentence);
        const link = h("a", { href: `#${f.input.id}` }, sentence);
        link.addEventListener("click", (e) => {
          e.preventDefault();
          f.input.focus();
        });
        list.append(h("li", {}, link));
      } else {
        list.append(h("li", {}, sentence));
      }
    }
    this.box.replaceChildren(h("h2", { id: "error-summary-title" }, t("errorSummaryTitle")), list);
    this.box.hidden = false;
    this.box.setAttribute("role", "alert");
    this.box.focus();
  }
}

/// A field violation as a sentence: the server writes its descriptions to
/// follow the field's name ("is required", "must be at least 12 characters").
export function fieldSentence(field: string, description: string): string {
  const predicate = /^(is|are|must|has|have|was|were|does|do|cannot|can't|should|needs|contains)\b/;
  if (predicate.test(description)) return `${fieldLabel(field)} ${description}`;
  return description.charAt(0).toUpperCase() + description.slice(1);
}

/// Disables a form's button while a call is in flight, and says so.
export async function busy<T>(button: HTMLButtonElement, work: () => Promise<T>): Promise<T> {
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = t("sending");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = label;
  }
}

export function submitButton(label: string): HTMLButtonElement {
  return h("button", { type: "submit", class: "button" }, label);
}

export function link(href: string, text: string, cls = "button"): HTMLAnchorElement {
  return h("a", { href, class: cls }, text);
}

/// Reads a query parameter, then takes it out of the address bar, so that a
/// token is not left in history, bookmarks or a shared screen.
export function takeParam(name: string): string | null {
  const url = new URL(window.location.href);
  const value = url.searchParams.get(name);
  if (value !== null) {
    url.searchParams.delete(name);
    history.replaceState(null, "", url.pathname + (url.search ? url.search : "") + url.hash);
  }
  return value;
}
