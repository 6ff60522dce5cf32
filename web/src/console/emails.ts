// Emails (seed 001's "System Emails"): each kind of email the organisation
// sends, its own or the default; one edited with a live preview that the
// server renders (for a sample person or a real one), saved, or reset to
// the default.

import { EmailKind } from "../gen/onramp/v1/common_pb";
import type { Template } from "../gen/onramp/v1/invitations_pb";
import { problem } from "../api";
import { t } from "../text";
import { Errors, busy, errorSlot, field, fieldSentence, h, paragraph, show, submitButton, withError } from "../ui";
import { type Powers, admin, consoleSentence, here, invitations, left, redraw, takeFlash } from "./api";
import { KINDS, kindText } from "./deliveries";
import { chip, confirm, failed, loading, notice, row, table, when } from "./parts";

const PREVIEW_AFTER_MS = 400;

function canEdit(kind: EmailKind, powers: Powers): boolean {
  return kind === EmailKind.INVITATION ? powers.invitations : powers.credentials;
}

export async function emailsPage(): Promise<void> {
  const title = t("console.emailsTitle");
  loading(title);
  let templates: Template[];
  try {
    templates = (await invitations.listTemplates({}, here())).templates;
  } catch (e) {
    failed(title, e);
    return;
  }
  const columns = [t("console.kindColumn"), t("console.subject"), t("console.version"), ""];
  const ordered = KINDS.map((k) => templates.find((tpl) => tpl.kind === k)).filter((tpl): tpl is Template => tpl !== undefined);
  show(
    title,
    paragraph(t("console.emailsLead")),
    table(
      columns,
      ordered.map((tpl) =>
        row(
          columns,
          [
            h("strong", {}, kindText(tpl.kind)),
            tpl.subject,
            tpl.isDefault ? chip("DEFAULT", t("console.defaultTemplate")) : chip("OWN", t("console.ownTemplate", { when: when(tpl.updateTime) })),
            h("a", { href: `#/emails/${EmailKind[tpl.kind]}` }, t("console.edit"), h("span", { class: "visually-hidden" }, ` ${kindText(tpl.kind)}`)),
          ],
          { "data-kind": EmailKind[tpl.kind] },
        ),
      ),
      { id: "templates" },
    ),
  );
}

export async function emailPage(kindName: string, powers: Powers): Promise<void> {
  const kind = EmailKind[kindName as keyof typeof EmailKind] ?? EmailKind.UNSPECIFIED;
  const title = t("console.emailTitle", { kind: kindText(kind) });
  loading(title);
  let template: Template;
  try {
    template = await invitations.getTemplate({ kind }, here());
  } catch (e) {
    failed(title, e);
    return;
  }
  const editable = canEdit(kind, powers);
  const errors = new Errors();
  const messages = h("div", { role: "status", "aria-live": "polite", id: "email-notice" });
  const flash = takeFlash();
  if (flash) notice(messages, flash);
  const subject = field({ name: "template.subject", label: t("console.subject"), value: template.subject, readonly: !editable, autocomplete: "off" });
  const body = (name: string, label: string, value: string) => {
    const area = h("textarea", { id: `f-template-${name}`, name, rows: "14", spellcheck: "false", readonly: !editable, "aria-describedby": `f-template-${name}-error` });
    area.value = value;
    const error = errorSlot(`template.${name}`);
    const wrap = h("div", { class: "field" }, h("label", { for: area.id }, label), error, area);
    return withError(`template.${name}`, wrap, area as unknown as HTMLInputElement, error);
  };
  const text = body("text_body", t("console.textBody"), template.textBody);
  const html = body("html_body", t("console.htmlBody"), template.htmlBody);
  const person = field({ name: "preview_email", label: t("console.previewFor"), hint: t("console.previewForHint"), type: "email", autocomplete: "off" });
  errors.add(subject, text, html, person);

  const preview = h("div", { class: "email-preview-live", id: "live-preview", "aria-live": "polite" });
  let timer: number | undefined;
  let drawn = 0;
  const draw = async () => {
    const mine = ++drawn;
    let userId = "";
    const who = person.input.value.trim();
    try {
      if (who) {
        const found = await admin.listUsers({ query: who, pageSize: 1 }, here());
        const match = found.users.find((u) => u.email.toLowerCase() === who.toLowerCase());
        if (!match) {
          if (mine === drawn) person.setError(t("console.noSuchPerson"));
          return;
        }
        userId = match.id;
      }
      const rendered = await invitations.renderTemplate(
        { kind, userId, template: { kind, subject: subject.input.value, textBody: text.input.value, htmlBody: html.input.value } },
        here(),
      );
      if (mine !== drawn) return;
      for (const f of [subject, text, html, person]) f.setError();
      // The HTML part in a sandbox: no script runs and nothing it links to
      // loads, whatever the template holds.
      const frame = h("iframe", { class: "html-preview", sandbox: "", title: t("console.htmlPreview"), srcdoc: rendered.htmlBody });
      preview.replaceChildren(
        h("p", {}, h("span", { class: "label" }, `${t("console.to")}: `), rendered.to),
        h("p", {}, h("span", { class: "label" }, `${t("console.subject")}: `), h("strong", { id: "preview-subject" }, rendered.subject)),
        h("pre", { class: "email-text", id: "preview-text" }, rendered.textBody),
        frame,
      );
    } catch (e) {
      if (left(e) || mine !== drawn) return;
      const p = problem(e);
      for (const f of [subject, text, html, person]) f.setError();
      if (p.fields.length) {
        for (const v of p.fields) {
          const f = v.field === "user_id" ? person : [subject, text, html].find((each) => each.name === v.field);
          f?.setError(fieldSentence(v.field ?? "", v.message));
        }
        preview.replaceChildren(paragraph(t("console.previewBroken"), "notice error-text"));
      } else {
        preview.replaceChildren(paragraph(consoleSentence(p), "notice error-text"));
      }
    }
  };
  const later = () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void draw(), PREVIEW_AFTER_MS);
  };
  for (const f of [subject, text, html, person]) f.input.addEventListener("input", later);

  const placeholders = paragraph(t("console.placeholders", { list: t(`console.vars.${EmailKind[kind]}`) }), "hint");
  const form = h("form", { novalidate: true, id: "template-form" }, subject.wrap, placeholders, text.wrap, html.wrap);
  const confirmArea = h("div", { id: "reset-confirm" });
  if (editable) {
    const save = submitButton(t("console.saveTemplate"));
    form.append(save);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void busy(save, async () => {
        try {
          template = await invitations.updateTemplate({
            template: { kind, locale: template.locale, subject: subject.input.value, textBody: text.input.value, htmlBody: html.input.value },
            updateMask: { paths: ["subject", "text_body", "html_body"] },
          });
          errors.clear();
          notice(messages, t("console.templateSaved", { kind: kindText(kind) }));
        } catch (e) {
          const p = problem(e);
          errors.show(p.fields.length ? p.fields : [{ message: consoleSentence(p) }]);
        }
      });
    });
    const reset = h("button", { type: "button", class: "button secondary", "data-action": "reset-template" }, t("console.resetTemplate"));
    reset.addEventListener("click", () =>
      confirm(confirmArea, {
        label: t("console.resetTemplate"),
        question: t("console.confirmReset", { kind: kindText(kind) }),
        yes: t("console.resetYes"),
        danger: true,
        go: async () => {
          try {
            template = await invitations.updateTemplate({ template: { kind, locale: template.locale }, resetToDefault: true });
            redraw(t("console.templateReset", { kind: kindText(kind) }));
          } catch (e) {
            notice(confirmArea, consoleSentence(problem(e)), true);
          }
        },
      }),
    );
    form.append(reset);
  }
  show(
    title,
    h("p", {}, h("a", { href: "#/emails" }, t("console.backToEmails"))),
    editable ? null : paragraph(t("console.templateReadOnly"), "notice"),
    messages,
    errors.box,
    h(
      "div",
      { class: "editor" },
      h("div", { class: "editor-form" }, form, confirmArea),
      h("section", { class: "editor-preview", "aria-labelledby": "preview-title" }, h("h2", { id: "preview-title" }, t("console.livePreview")), person.wrap, preview),
    ),
  );
  void draw();
}
