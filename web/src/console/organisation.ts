// Organisation: the onboarding policy (how long links work, the second
// factor, the password length) and the terms with every published version.
// Its other screens (service areas and roles, API keys, the audit log) sit
// beside it under the same heading.

import { SecondFactorMethod } from "../gen/onramp/v1/common_pb";
import type { Organization, Terms } from "../gen/onramp/v1/user_admin_pb";
import { problem } from "../api";
import { t } from "../text";
import { Errors, busy, checkbox, field, h, paragraph, show, submitButton, withError, errorSlot } from "../ui";
import { type Powers, admin, consoleSentence, here, redraw, takeFlash } from "./api";
import { failed, loading, notice, row, table, when } from "./parts";

/// The screens under Organisation, as links above each of them.
export function organisationTabs(current: string, powers: Powers): HTMLElement {
  const tabs: [string, string, boolean][] = [
    ["#/organisation", t("console.policyTitle"), true],
    ["#/organisation/catalog", t("console.catalogTitle"), true],
    ["#/organisation/keys", t("console.keysTitle"), powers.admin],
    ["#/organisation/audit", t("console.auditTitle"), powers.audit],
  ];
  return h(
    "nav",
    { class: "tabs", "aria-label": t("console.navOrganisation") },
    h("ul", {}, ...tabs.filter(([, , shown]) => shown).map(([href, label]) => h("li", {}, h("a", { href, "aria-current": href === current ? "page" : undefined }, label)))),
  );
}

const DAY = 86_400;
const HOUR = 3_600;

/// A lifetime typed as a number and a unit, sent as seconds.
function lifetime(name: string, label: string, seconds: number, units: [number, string][], editable: boolean) {
  const unit = units.find(([size]) => seconds % size === 0 && seconds / size >= 1) ?? units[units.length - 1];
  const id = `f-policy-${name}`;
  const amount = h("input", { type: "number", id, name, min: "1", inputmode: "numeric", readonly: !editable, class: "short", "aria-describedby": `${id}-error` });
  amount.value = String(seconds / unit[0]);
  const choose = h("select", { id: `${id}-unit`, "aria-label": t("console.unitOf", { what: label }), disabled: !editable });
  for (const [size, word] of units) {
    const option = h("option", { value: String(size) }, word);
    option.selected = size === unit[0];
    choose.append(option);
  }
  const error = errorSlot(`policy.${name}`);
  const wrap = h("div", { class: "field" }, h("label", { for: id }, label), error, h("div", { class: "inline" }, amount, choose));
  return { field: withError(`policy.${name}`, wrap, amount, error), seconds: () => Math.round(Number(amount.value) * Number(choose.value)) };
}

export async function organisationPage(powers: Powers): Promise<void> {
  const title = t("console.organisationTitle");
  loading(title);
  let org: Organization;
  let history: Terms[];
  try {
    [org, history] = await Promise.all([admin.getOrganization({}, here()), admin.listTerms({ pageSize: 20 }, here()).then((r) => r.terms)]);
  } catch (e) {
    failed(title, e);
    return;
  }
  show(`${title}: ${org.name}`, organisationTabs("#/organisation", powers), policyForm(org, powers.admin), termsSection(org, history, powers.admin));
}

function policyForm(org: Organization, editable: boolean): HTMLElement {
  const policy = org.policy;
  const errors = new Errors();
  const messages = h("div", { role: "status", "aria-live": "polite", id: "policy-notice" });
  const flash = takeFlash();
  if (flash) notice(messages, flash);
  const days: [number, string][] = [[DAY, t("console.days")], [HOUR, t("console.hours")]];
  const invitation = lifetime("invitation_ttl", t("console.invitationTtl"), Number(policy?.invitationTtl?.seconds ?? 7 * DAY), days, editable);
  const reset = lifetime("reset_link_ttl", t("console.resetTtl"), Number(policy?.resetLinkTtl?.seconds ?? HOUR), [[HOUR, t("console.hours")], [60, t("console.minutes")], [DAY, t("console.days")]], editable);
  const temporary = lifetime("temporary_password_ttl", t("console.temporaryTtl"), Number(policy?.temporaryPasswordTtl?.seconds ?? 7 * DAY), days, editable);
  const length = field({ name: "policy.password_min_length", label: t("console.passwordMin"), hint: t("console.passwordMinHint"), type: "number", value: String(policy?.passwordMinLength ?? 12), readonly: !editable });
  length.input.classList.add("short");
  const required = checkbox("policy.second_factor_required", t("console.secondFactorRequired"));
  required.input.checked = policy?.secondFactorRequired ?? false;
  required.input.disabled = !editable;
  const allowed = policy?.secondFactorMethods ?? [];
  const methods = [SecondFactorMethod.TOTP, SecondFactorMethod.EMAIL, SecondFactorMethod.SMS].map((m) => {
    const box = h("input", { type: "checkbox", id: `f-method-${SecondFactorMethod[m]}`, value: String(m), disabled: !editable });
    box.checked = allowed.length === 0 || allowed.includes(m);
    return { method: m, box, wrap: h("div", { class: "choice" }, box, h("label", { for: box.id }, t(`console.method.${SecondFactorMethod[m]}`))) };
  });
  const methodsError = errorSlot("policy.second_factor_methods");
  const methodsSet = h("fieldset", { class: "field", "aria-describedby": methodsError.id }, h("legend", {}, t("console.secondFactorMethods")), methodsError, ...methods.map((m) => m.wrap));
  errors.add(invitation.field, reset.field, temporary.field, length, required, withError("policy.second_factor_methods", methodsSet, methods[0].box, methodsError));
  const form = h(
    "form",
    { novalidate: true, id: "policy" },
    invitation.field.wrap,
    reset.field.wrap,
    temporary.field.wrap,
    length.wrap,
    required.wrap,
    methodsSet,
  );
  if (editable) {
    const save = submitButton(t("console.savePolicy"));
    form.append(save);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void busy(save, async () => {
        const chosen = methods.filter((m) => m.box.checked).map((m) => m.method);
        try {
          await admin.updateOrganization({
            organization: {
              policy: {
                invitationTtl: { seconds: BigInt(invitation.seconds()) },
                resetLinkTtl: { seconds: BigInt(reset.seconds()) },
                temporaryPasswordTtl: { seconds: BigInt(temporary.seconds()) },
                passwordMinLength: Number(length.input.value),
                secondFactorRequired: required.input.checked,
                // Every method ticked is stored as "all", so methods added
                // later are offered too.
                secondFactorMethods: chosen.length === methods.length ? [] : chosen,
              },
            },
            updateMask: {
              paths: [
                "policy.invitation_ttl",
                "policy.reset_link_ttl",
                "policy.temporary_password_ttl",
                "policy.password_min_length",
                "policy.second_factor_required",
                "policy.second_factor_methods",
              ],
            },
          });
          errors.clear();
          notice(messages, t("console.policySaved"));
        } catch (e) {
          const p = problem(e);
          errors.show(p.fields.length ? p.fields : [{ message: consoleSentence(p) }]);
        }
      });
    });
  }
  return h("section", { class: "section", "aria-labelledby": "policy-title" }, h("h2", { id: "policy-title" }, t("console.policyTitle")), messages, errors.box, form);
}

function termsSection(org: Organization, history: Terms[], editable: boolean): HTMLElement {
  const current = org.policy?.terms;
  const columns = [t("console.version"), t("console.termsTitleColumn"), t("console.published")];
  const list = history.length
    ? table(columns, history.map((v) => row(columns, [String(v.version), v.title || v.url, when(v.publishTime)], { "data-version": String(v.version) })), { id: "terms-versions" })
    : paragraph(t("console.noTerms"));
  const section = h(
    "section",
    { class: "section", "aria-labelledby": "terms-title" },
    h("h2", { id: "terms-title" }, t("console.termsTitle")),
    paragraph(current && current.version > 0 ? t("console.termsCurrent", { version: current.version }) : t("console.noTerms")),
    list,
  );
  if (!editable) return section;
  const errors = new Errors();
  const titleField = field({ name: "policy.terms.title", label: t("console.termsTitleColumn"), value: current?.title ?? "", autocomplete: "off" });
  const text = h("textarea", { id: "f-policy-terms-text", name: "text", rows: "8", "aria-describedby": "f-policy-terms-text-error" });
  text.value = current?.text ?? "";
  const textError = errorSlot("policy.terms.text");
  const textField = withError("policy.terms.text", h("div", { class: "field" }, h("label", { for: text.id }, t("console.termsText")), textError, text), text as unknown as HTMLInputElement, textError);
  const url = field({ name: "policy.terms.url", label: t("console.termsUrl"), hint: t("console.termsUrlHint"), type: "url", value: current?.url ?? "", autocomplete: "off" });
  errors.add(titleField, textField, url);
  const publish = submitButton(t("console.publishTerms"));
  const form = h("form", { novalidate: true, id: "terms" }, h("h3", {}, t("console.publishTitle")), paragraph(t("console.publishLead"), "hint"), errors.box, titleField.wrap, textField.wrap, url.wrap, publish);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(publish, async () => {
      try {
        await admin.updateOrganization({
          organization: { policy: { terms: { title: titleField.input.value.trim(), text: text.value, url: url.input.value.trim() } } },
          updateMask: { paths: ["policy.terms"] },
        });
        redraw(t("console.termsPublished"));
      } catch (e) {
        const p = problem(e);
        errors.show(p.fields.length ? p.fields : [{ message: consoleSentence(p) }]);
      }
    });
  });
  section.append(form);
  return section;
}
