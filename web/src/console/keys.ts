// API keys: who may call Onramp. Each key's name, scopes and dates, revoke
// after a confirmation, and a new key whose secret is shown once: only its
// hash is kept, so it cannot be shown again.

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ApiKeyScope, type ApiKey } from "../gen/onramp/v1/user_admin_pb";
import { problem } from "../api";
import { t } from "../text";
import { Errors, busy, errorSlot, field, h, paragraph, show, submitButton, withError } from "../ui";
import { type Powers, admin, consoleSentence, here, redraw, say, takeFlash } from "./api";
import { chip, confirm, failed, loading, notice, row, table, when } from "./parts";
import { organisationTabs } from "./organisation";

const SCOPES = [
  ApiKeyScope.ADMIN,
  ApiKeyScope.READ,
  ApiKeyScope.USERS_WRITE,
  ApiKeyScope.INVITATIONS_WRITE,
  ApiKeyScope.CREDENTIALS_WRITE,
  ApiKeyScope.AUDIT_READ,
];

function scopeText(scope: ApiKeyScope): string {
  return t(`console.scope.${ApiKeyScope[scope]}`);
}

export async function keysPage(powers: Powers): Promise<void> {
  const title = t("console.keysTitle");
  loading(title);
  let keys: ApiKey[];
  try {
    keys = (await admin.listApiKeys({ pageSize: 1000 }, here())).apiKeys;
  } catch (e) {
    failed(title, e);
    return;
  }
  const messages = h("div", { role: "status", "aria-live": "polite", id: "keys-notice" });
  const flash = takeFlash();
  if (flash) notice(messages, flash);
  const confirmArea = h("div", { id: "revoke-confirm" });
  const columns = [t("console.name"), t("console.keyPrefix"), t("console.scopes"), t("console.created"), t("console.statusColumn"), ""];
  const rows = keys.map((key) => {
    const revoked = Boolean(key.revokeTime);
    const expired = !revoked && key.expireTime !== undefined && Number(key.expireTime.seconds) * 1000 <= Date.now();
    const state = revoked
      ? chip("KEY_REVOKED", t("console.keyRevoked", { when: when(key.revokeTime) }))
      : expired
        ? chip("KEY_EXPIRED", t("console.keyExpired"))
        : chip("KEY_ACTIVE", key.expireTime ? t("console.keyUntil", { when: when(key.expireTime) }) : t("console.keyActive"));
    let action: HTMLElement | null = null;
    if (!revoked && powers.admin) {
      action = h("button", { type: "button", class: "icon-button", "data-action": "revoke" }, t("console.revoke"), h("span", { class: "visually-hidden" }, ` ${key.name}`));
      action.addEventListener("click", () =>
        confirm(confirmArea, {
          label: t("console.revoke"),
          question: t("console.confirmRevoke", { name: key.name }),
          items: [`${key.name} (${key.prefix}…)`],
          yes: t("console.revokeYes"),
          danger: true,
          go: async () => {
            try {
              await admin.revokeApiKey({ apiKeyId: key.id });
              redraw(t("console.revoked", { name: key.name }));
            } catch (e) {
              notice(confirmArea, say(e), true);
            }
          },
        }),
      );
    }
    return row(columns, [key.name, h("code", {}, `${key.prefix}…`), key.scopes.map(scopeText).join(", "), when(key.createTime), state, action], { "data-key": key.name });
  });
  show(title, organisationTabs("#/organisation/keys", powers), messages, confirmArea, table(columns, rows, { id: "keys" }), powers.admin ? newKeyForm() : null);
}

function newKeyForm(): HTMLElement {
  const errors = new Errors();
  const name = field({ name: "name", label: t("console.keyName"), hint: t("console.keyNameHint"), autocomplete: "off", maxlength: 200 });
  const boxes = SCOPES.map((scope) => {
    const box = h("input", { type: "checkbox", id: `f-scope-${ApiKeyScope[scope]}`, value: String(scope) });
    return { scope, box, wrap: h("div", { class: "choice" }, box, h("label", { for: box.id }, scopeText(scope))) };
  });
  const scopesError = errorSlot("scopes");
  const scopes = h("fieldset", { class: "field" }, h("legend", {}, t("console.scopes")), scopesError, ...boxes.map((b) => b.wrap));
  const expires = field({ name: "expire_time", label: t("console.keyExpires"), hint: t("console.keyExpiresHint"), type: "date", autocomplete: "off" });
  errors.add(name, withError("scopes", scopes, boxes[0].box, scopesError), expires);
  const shown = h("div", { id: "new-key", "aria-live": "polite" });
  const create = submitButton(t("console.createKey"));
  const form = h("form", { novalidate: true, id: "create-key" }, errors.box, name.wrap, scopes, expires.wrap, create);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(create, async () => {
      const day = expires.input.value;
      try {
        const made = await admin.createApiKey({
          name: name.input.value.trim(),
          scopes: boxes.filter((b) => b.box.checked).map((b) => b.scope),
          expireTime: day ? timestampFromDate(new Date(`${day}T23:59:59`)) : undefined,
        });
        errors.clear();
        form.reset();
        const done = h("button", { type: "button", class: "button", "data-action": "copied" }, t("console.keyCopied"));
        done.addEventListener("click", () => redraw(t("console.keyCreated", { name: made.apiKey?.name ?? "" })));
        shown.replaceChildren(
          h(
            "div",
            { class: "panel-plain secret-panel", role: "region", "aria-label": t("console.newKeyTitle") },
            h("h3", {}, t("console.newKeyTitle", { name: made.apiKey?.name ?? "" })),
            paragraph(t("console.newKeyOnce")),
            h("p", {}, h("code", { class: "secret", id: "new-key-secret" }, made.secret)),
            done,
          ),
        );
        done.focus();
      } catch (e) {
        const p = problem(e);
        errors.show(p.fields.length ? p.fields : [{ message: consoleSentence(p) }]);
      }
    });
  });
  return h("section", { class: "section", "aria-labelledby": "create-key-title" }, h("h2", { id: "create-key-title" }, t("console.createKeyTitle")), shown, form);
}
