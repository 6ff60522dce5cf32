// Service areas and roles: the places people work in and what they do
// there, each listed by name with a form to add one.

import type { Role, ServiceArea } from "../gen/onramp/v1/user_admin_pb";
import { problem } from "../api";
import { t } from "../text";
import { Errors, busy, field, h, paragraph, show, submitButton } from "../ui";
import { type Powers, admin, consoleSentence, here, redraw, takeFlash } from "./api";
import { failed, loading, notice, row, table } from "./parts";
import { organisationTabs } from "./organisation";

type Entry = ServiceArea | Role;

export async function catalogPage(powers: Powers): Promise<void> {
  const title = t("console.catalogTitle");
  loading(title);
  let areas: ServiceArea[];
  let roles: Role[];
  try {
    [areas, roles] = await Promise.all([
      admin.listServiceAreas({ pageSize: 1000 }, here()).then((r) => r.serviceAreas),
      admin.listRoles({ pageSize: 1000 }, here()).then((r) => r.roles),
    ]);
  } catch (e) {
    failed(title, e);
    return;
  }
  const messages = h("div", { role: "status", "aria-live": "polite", id: "catalog-notice" });
  const flash = takeFlash();
  if (flash) notice(messages, flash);
  show(
    title,
    organisationTabs("#/organisation/catalog", powers),
    messages,
    h("div", { class: "two-columns" }, part("area", areas, powers.users), part("role", roles, powers.users)),
  );
}

/// One list (`area` or `role`) and its form.
function part(which: "area" | "role", entries: Entry[], editable: boolean): HTMLElement {
  const columns = [t("console.name"), t("console.description")];
  const heading = t(which === "area" ? "console.areasTitle" : "console.rolesTitle");
  const section = h(
    "section",
    { class: "section", "aria-labelledby": `${which}-title` },
    h("h2", { id: `${which}-title` }, heading),
    entries.length ? table(columns, entries.map((e) => row(columns, [e.name, e.description])), { id: `${which}s` }) : paragraph(t(`console.no_${which}`)),
  );
  if (!editable) return section;
  const errors = new Errors();
  const name = field({ name: `${which}.name`, label: t(`console.new_${which}`), autocomplete: "off", maxlength: 200 });
  const description = field({ name: `${which}.description`, label: t("console.descriptionOptional"), autocomplete: "off" });
  errors.add(name, description);
  const add = submitButton(t(`console.add_${which}`));
  const form = h("form", { novalidate: true, id: `add-${which}` }, errors.box, name.wrap, description.wrap, add);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(add, async () => {
      const request = { name: name.input.value.trim(), description: description.input.value.trim() };
      try {
        const made = which === "area" ? await admin.createServiceArea(request) : await admin.createRole(request);
        redraw(t(`console.added_${which}`, { name: made.name }));
      } catch (e) {
        const p = problem(e);
        // The server names the request's fields; here they belong to this form.
        errors.show(p.fields.length ? p.fields.map((f) => ({ ...f, field: `${which}.${f.field}` })) : [{ message: consoleSentence(p) }]);
      }
    });
  });
  section.append(form);
  return section;
}
