// The organisation's terms, to read and accept: at registration and when
// newer ones are published.

import type { Terms } from "./gen/onramp/v1/user_admin_pb";
import { t } from "./text";
import { type Field, checkbox, h } from "./ui";

/// The terms' text (scrollable, reachable by keyboard), their link, and the
/// box that accepts them as the field `name`.
export function termsParts(terms: Terms, name: string): { parts: HTMLElement[]; accepted: Field } {
  const title = terms.title || t("register.termsDefault");
  const parts: HTMLElement[] = [];
  if (terms.text) {
    parts.push(h("div", { class: "terms", tabindex: "0", role: "region", "aria-label": title }, ...terms.text.split(/\n\s*\n/).map((p) => h("p", {}, p))));
  }
  if (terms.url) {
    parts.push(h("p", {}, h("a", { href: terms.url, target: "_blank", rel: "noopener noreferrer" }, t("register.termsLink"))));
  }
  const accepted = checkbox(name, t("register.termsAccept", { version: terms.version }));
  parts.push(accepted.wrap);
  return { parts, accepted };
}
