// The organisation's password rules, shown before the person types and
// checked as they type (length here; the rest by the server on submit).

import type { PasswordRules } from "./gen/onramp/v1/common_pb";
import { h } from "./ui";
import { t } from "./text";

export function passwordRules(rules: PasswordRules | undefined, input: HTMLInputElement): HTMLElement {
  const list = h("ul", { class: "rules", id: `${input.id}-rules` });
  const checks: { item: HTMLLIElement; state: HTMLSpanElement; met: (n: number) => boolean }[] = [];
  const add = (text: string, met?: (n: number) => boolean) => {
    const state = h("span", { class: "rule-state" });
    const item = h("li", {}, text, " ", state);
    list.append(item);
    if (met) checks.push({ item, state, met });
  };
  if (rules && rules.minLength > 0) add(t("register.ruleMin", { n: rules.minLength }), (n) => n >= rules.minLength);
  if (rules && rules.maxLength > 0) add(t("register.ruleMax", { n: rules.maxLength }), (n) => n <= rules.maxLength);
  for (const rule of rules?.rules ?? []) add(rule);
  const update = () => {
    const length = [...input.value].length;
    for (const c of checks) {
      const met = length > 0 && c.met(length);
      c.item.classList.toggle("met", met);
      c.state.textContent = met ? t("register.ruleMet") : length > 0 ? t("register.ruleNotMet") : "";
    }
  };
  input.addEventListener("input", update);
  update();
  const described = input.getAttribute("aria-describedby") ?? "";
  input.setAttribute("aria-describedby", `${list.id} ${described}`.trim());
  return h("div", { class: "rules-box" }, h("p", {}, t("register.passwordRulesIntro")), list);
}
