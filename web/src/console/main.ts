// The admin console: one script, routed by the address's hash (#/people,
// #/invite, #/deliveries?batch=…), so that a view and its filters can be
// shared as a link.

import "../pages.css";
import "./console.css";
import { Code } from "@connectrpc/connect";
import { problem, sentence } from "../api";
import { t } from "../text";
import { Errors, busy, field, h, paragraph, show, submitButton } from "../ui";
import { type Powers, forgetKey, keepKey, keyPowers, newScreen, storedKey } from "./api";
import { auditPage } from "./audit";
import { catalogPage } from "./catalog";
import { deliveriesPage } from "./deliveries";
import { emailPage, emailsPage } from "./emails";
import { importPage } from "./import";
import { invitePage } from "./invite";
import { keysPage } from "./keys";
import { organisationPage } from "./organisation";
import { peoplePage } from "./people";
import { personPage } from "./person";

function signIn(): void {
  (document.getElementById("console-bar") as HTMLElement).replaceChildren();
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
        await keyPowers();
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
    newScreen();
    forgetKey();
    history.replaceState(null, "", window.location.pathname);
    signIn();
  });
  return h(
    "nav",
    { class: "console-nav", "aria-label": t("console.title") },
    h(
      "ul",
      {},
      item("#/people", t("console.navPeople")),
      powers.invitations ? item("#/invite", t("console.navInvite")) : null,
      powers.users ? item("#/import", t("console.navImport")) : null,
      item("#/emails", t("console.navEmails")),
      item("#/deliveries", t("console.navDeliveries")),
      item("#/organisation", t("console.navOrganisation")),
    ),
    out,
  );
}

/// The screen an address names, if the key may see it: [nav entry, draw].
function screen(path: string, params: URLSearchParams, powers: Powers): [string, () => unknown] {
  const [, first = "", second = ""] = path.split("/");
  switch (first) {
    case "invite":
      if (powers.invitations) return ["#/invite", () => invitePage()];
      break;
    case "import":
      if (powers.users) return ["#/import", () => importPage(powers)];
      break;
    case "emails":
      return ["#/emails", () => (second ? emailPage(second, powers) : emailsPage())];
    case "deliveries":
      return ["#/deliveries", () => deliveriesPage(params)];
    case "organisation":
      if (second === "catalog") return ["#/organisation", () => catalogPage(powers)];
      if (second === "keys" && powers.admin) return ["#/organisation", () => keysPage(powers)];
      if (second === "audit" && powers.audit) return ["#/organisation", () => auditPage(params, powers)];
      return ["#/organisation", () => organisationPage(powers)];
    case "people":
      if (second) return ["#/people", () => personPage(second, powers)];
      break;
    default:
      break;
  }
  return ["#/people", () => peoplePage(params, powers)];
}

export async function route(): Promise<void> {
  newScreen();
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
  const [current, draw] = screen(path ?? "", new URLSearchParams(query ?? ""), powers);
  (document.getElementById("console-bar") as HTMLElement).replaceChildren(nav(current, powers));
  void draw();
}

window.addEventListener("hashchange", () => void route());
void route();
