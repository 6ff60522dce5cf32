// The four emails an admin sends to people who already exist (seeds 000 to
// 003): an invitation, a welcome with a link to set a password, a username
// with a temporary password, or a reset link. Each is one bulk RPC, sent
// after a confirmation that lists who it reaches, with a preview of the
// real email on request, and followed with a progress bar.

import type { BatchEvent, RenderedEmail } from "../gen/onramp/v1/common_pb";
import { EmailKind } from "../gen/onramp/v1/common_pb";
import { t } from "../text";
import { busy, h, paragraph } from "../ui";
import { type Powers, credentials, here, invitations, say } from "./api";
import { confirm } from "./parts";
import { follow } from "./progress";

export type SendKind = "invitation" | "welcome" | "credentials" | "reset";

/// Who a send goes to: named people, or every STAGED person (chosen by
/// the server, so no one added meanwhile is missed or doubled).
export interface Audience {
  userIds: string[];
  allStaged?: boolean;
}

export function kinds(powers: Powers): SendKind[] {
  const offered: SendKind[] = [];
  if (powers.invitations) offered.push("invitation");
  if (powers.credentials) offered.push("welcome", "credentials", "reset");
  return offered;
}

export function stream(kind: SendKind, to: Audience, dryRun: boolean): AsyncIterable<BatchEvent> {
  const common = { userIds: to.allStaged ? [] : to.userIds, allStaged: to.allStaged ?? false, dryRun };
  switch (kind) {
    case "invitation":
      return invitations.sendInvitations(common, here());
    case "credentials":
      return credentials.emailCredentials(common, here());
    case "welcome":
      return credentials.sendResetLinks({ ...common, kind: EmailKind.WELCOME }, here());
    case "reset":
      return credentials.sendResetLinks({ ...common, kind: EmailKind.PASSWORD_RESET }, here());
  }
}

/// The email the first recipient would get, as the server renders it (a
/// dry run: nothing is written or sent).
export async function preview(kind: SendKind, to: Audience): Promise<RenderedEmail | null> {
  for await (const event of stream(kind, to, true)) {
    if (event.event.case === "preview") return event.event.value;
  }
  return null;
}

export function emailView(email: RenderedEmail): HTMLElement {
  return h(
    "div",
    { class: "panel-plain email-preview", id: "email-preview" },
    h("p", {}, h("strong", {}, email.subject)),
    h("pre", { class: "email-text" }, email.textBody),
  );
}

/// A button that shows the real email under itself.
function previewButton(kind: SendKind, to: Audience): HTMLElement {
  const shown = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "button", class: "link-button", "data-action": "preview" }, t("console.showEmail"));
  button.addEventListener("click", () =>
    void busy(button, async () => {
      try {
        const email = await preview(kind, to);
        shown.replaceChildren(email ? emailView(email) : paragraph(t("console.noPreview")));
      } catch (e) {
        shown.replaceChildren(paragraph(say(e), "notice error-text"));
      }
    }),
  );
  return h("div", {}, button, shown);
}

/// Asks, listing `emails`, then sends and shows the progress in `area`.
export function confirmSend(area: HTMLElement, kind: SendKind, to: Audience, emails: string[], count = emails.length): void {
  confirm(area, {
    label: t(`console.send.${kind}`),
    question: t(`console.confirm_${kind}`, { n: count }),
    items: emails,
    yes: t("console.confirm"),
    go: async () => {
      const progress = h("div", { id: "send-progress" });
      area.replaceChildren(progress);
      try {
        await follow(stream(kind, to, false), progress);
      } catch (e) {
        area.replaceChildren(paragraph(say(e), "notice error-text"));
      }
    },
  });
  area.querySelector("[role=region]")?.insertBefore(previewButton(kind, to), area.querySelector("[data-action=confirm]"));
}
