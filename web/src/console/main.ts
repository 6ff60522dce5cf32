// The admin console: one script, routed by the address's hash (#/people,
// #/invite), so that a view and its filters can be shared as a link.

import "../pages.css";
import "./console.css";
import { Code } from "@connectrpc/connect";
import { problem, sentence } from "../api";
import { t } from "../text";
import { Errors, busy, field, h, paragraph, show, submitButton } from "../ui";
import { type Powers, admin, forgetKey, keepKey, keyPowers, storedKey } from "./api";
import { importPage } from "./import";
import { invitePage } from "./invite";
import { peoplePage } from "./people";

function signIn(): void {
  const errors = new Errors();
  const key = field({ name: "api_key", label: t("console.apiKey"), type: "password", autocomplete: "off", hint: t("console.apiKeyHint") });
  errors.add(key);
  const submit = submitButton(t("console.signIn"));
  const form = h("form", { novalidate: true }, key.wrap, submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, async () => {
      keepKey(key.input.value.trim());
      try {
        await admin.listUsers({ pageSize: 1 });
        await route();
      } catch (e) {
        forgetKey();
        const p = problem(e);
        errors.show([
          p.code === Code.Unauthenticated || p.code === Code.PermissionDenied
            ? { field: "api_key", message: t("console.badKey") }
            : { message: sentence(p) },
        ]);
      }
    });
  });
  show(t("console.signInTitle"), paragraph(t("console.signInLead")), errors.box, form);
}

/// The navigation above every screen, with the current one marked; a screen
/// the key cannot use is not offered.
function nav(current: string, powers: Powers): HTMLElement {
  const item = (href: string, label: string) =>
    h("li", {}, h("a", { href, "aria-current": current === href ? "page" : undefined }, label));
  const out = h("button", { type: "button", class: "link-button" }, t("console.signOut"));
  out.addEventListener("click", () => {
    forgetKey();
    window.location.hash = "";
    signIn();
  });
  return h("nav", { class: "console-nav", "aria-label": t("console.title") },
    h(
      "ul",
      {},
      item("#/people", t("console.navPeople")),
      powers.invitations ? item("#/invite", t("console.navInvite")) : null,
      powers.users ? item("#/import", t("console.navImport")) : null,
    ),
    out);
}

export async function route(): Promise<void> {
  if (!storedKey()) {
    signIn();
    return;
  }
  let powers: Powers;
  try {
    powers = await keyPowers();
  } catch {
    forgetKey();
    signIn();
    return;
  }
  const [path, query] = window.location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query ?? "");
  const bar = document.getElementById("console-bar") as HTMLElement;
  if (path === "/invite" && powers.invitations) {
    bar.replaceChildren(nav("#/invite", powers));
    invitePage();
  } else if (path === "/import" && powers.users) {
    bar.replaceChildren(nav("#/import", powers));
    importPage();
  } else {
    bar.replaceChildren(nav("#/people", powers));
    void peoplePage(params, powers);
  }
}

window.addEventListener("hashchange", () => void route());
void route();
