// One person (seed 003's edit screen): their status and dates, the profile
// and access to edit, every email they can be sent, pause, reactivate and
// delete (after a confirmation), and what was sent to them.

import { type AccessGrant, UserStatus } from "../gen/onramp/v1/common_pb";
import type { Role, ServiceArea, User } from "../gen/onramp/v1/user_admin_pb";
import { problem, refusals } from "../api";
import { t } from "../text";
import { Errors, busy, field, h, paragraph, show, submitButton } from "../ui";
import { type Powers, admin, consoleSentence, here, invitations, redraw, say, takeFlash } from "./api";
import { confirmSend, kinds } from "./bulk";
import { deliveryTable } from "./deliveries";
import { confirm, failed, loading, notice, select, when } from "./parts";
import { displayName, personActions, statusChip } from "./people";

const PROFILE = ["email", "username", "first_name", "last_name", "mobile"] as const;
type ProfileField = (typeof PROFILE)[number];

export async function personPage(id: string, powers: Powers): Promise<void> {
  const title = t("console.personTitle");
  loading(title);
  let user: User;
  let areas: ServiceArea[];
  let roles: Role[];
  try {
    const [u, a, r] = await Promise.all([
      admin.getUser({ userId: id }, here()),
      admin.listServiceAreas({ pageSize: 1000 }, here()),
      admin.listRoles({ pageSize: 1000 }, here()),
    ]);
    [user, areas, roles] = [u, a.serviceAreas, r.roles];
  } catch (e) {
    failed(title, e);
    return;
  }
  const messages = h("div", { id: "person-notice", role: "status", "aria-live": "polite" });
  const flash = takeFlash();
  if (flash) notice(messages, flash);
  const facts = h(
    "dl",
    { class: "facts" },
    ...fact(t("console.statusColumn"), statusChip(user.status)),
    ...fact(t("console.created"), when(user.createTime)),
    ...(user.invitationExpireTime ? fact(t("console.invitationExpires"), when(user.invitationExpireTime)) : []),
    ...(user.activateTime ? fact(t("console.activated"), when(user.activateTime)) : []),
    ...(user.lastSignInTime ? fact(t("console.lastSignIn"), when(user.lastSignInTime)) : []),
    ...(user.deactivateTime ? fact(t("console.paused_at"), when(user.deactivateTime)) : []),
  );
  const sends = h("div", { id: "person-sends" });
  show(
    displayName(user),
    h("p", {}, h("a", { href: "#/people" }, t("console.backToPeople"))),
    facts,
    messages,
    actions(user, powers, messages, sends),
    sends,
    profileForm(user, powers, messages),
    accessForm(user, areas, roles, powers, messages),
    await sentTo(user),
    powers.users ? deleteArea(user) : null,
  );
}

function fact(term: string, value: Node | string): HTMLElement[] {
  return [h("dt", {}, term), h("dd", {}, value)];
}

/// The emails this person can be sent (seed 003's "Sending Welcome Email"
/// for one person), resend, pause and reactivate.
function actions(user: User, powers: Powers, messages: HTMLElement, sends: HTMLElement): HTMLElement {
  const bar = h("div", { class: "bulk", role: "group", "aria-label": t("console.actions") });
  const paused = user.status === UserStatus.INACTIVE;
  for (const kind of paused ? [] : kinds(powers)) {
    if (kind === "invitation" && user.status === UserStatus.ACTIVE) continue;
    const button = h("button", { type: "button", class: "button secondary", "data-send": kind }, t(`console.send.${kind}`));
    button.addEventListener("click", () => confirmSend(sends, kind, { userIds: [user.id] }, [user.email]));
    bar.append(button);
  }
  const act = (action: string, label: string, work: () => Promise<string>) => {
    const button = h("button", { type: "button", class: "button secondary", "data-action": action }, label);
    button.addEventListener("click", () =>
      void busy(button, async () => {
        try {
          redraw(await work());
        } catch (e) {
          notice(messages, say(e), true);
        }
      }),
    );
    bar.append(button);
  };
  for (const [action, label, work] of personActions(user, powers)) act(action, label, work);
  return bar;
}

function profileForm(user: User, powers: Powers, messages: HTMLElement): HTMLElement {
  const errors = new Errors();
  const values: Record<ProfileField, string> = {
    email: user.email,
    username: user.username,
    first_name: user.firstName,
    last_name: user.lastName,
    mobile: user.mobile,
  };
  const autocomplete: Record<ProfileField, string> = { email: "off", username: "off", first_name: "off", last_name: "off", mobile: "off" };
  const fields = PROFILE.map((name) =>
    field({
      name: `user.${name}`,
      label: t(`fields.${name}`),
      type: name === "email" ? "email" : name === "mobile" ? "tel" : "text",
      autocomplete: autocomplete[name],
      value: values[name],
      readonly: !powers.users,
      hint: name === "mobile" ? t("register.mobileHint") : undefined,
    }),
  );
  errors.add(...fields);
  const section = h("section", { class: "section", "aria-labelledby": "profile-title" }, h("h2", { id: "profile-title" }, t("console.profile")), errors.box);
  if (!powers.users) {
    section.append(...fields.map((f) => f.wrap));
    return section;
  }
  const submit = submitButton(t("console.saveProfile"));
  const form = h("form", { novalidate: true, id: "profile" }, ...fields.map((f) => f.wrap), submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, async () => {
      const changed = PROFILE.filter((name, i) => fields[i].input.value.trim() !== values[name]);
      if (changed.length === 0) {
        notice(messages, t("console.nothingChanged"));
        return;
      }
      const value = (name: ProfileField) => fields[PROFILE.indexOf(name)].input.value.trim();
      try {
        await admin.updateUser({
          userId: user.id,
          user: { email: value("email"), username: value("username"), firstName: value("first_name"), lastName: value("last_name"), mobile: value("mobile") },
          updateMask: { paths: changed },
        });
        redraw(t("console.profileSaved", { email: value("email") }));
      } catch (e) {
        const p = problem(e);
        errors.show(p.fields.length ? p.fields : [{ message: consoleSentence(p) }]);
      }
    });
  });
  section.append(form);
  return section;
}

/// The access grants, each removable, and one to add.
function accessForm(user: User, areas: ServiceArea[], roles: Role[], powers: Powers, messages: HTMLElement): HTMLElement {
  const grants: AccessGrant[] = [...user.accessGrants];
  const list = h("ul", { class: "grants", id: "grants" });
  const errors = new Errors();
  const save = async (next: AccessGrant[]) => {
    try {
      const updated = await admin.updateUser({
        userId: user.id,
        user: { accessGrants: next.map((g) => ({ serviceAreaId: g.serviceAreaId, roleId: g.roleId })) },
        updateMask: { paths: ["access_grants"] },
      });
      grants.splice(0, grants.length, ...updated.accessGrants);
      draw();
      notice(messages, t("console.accessSaved"));
    } catch (e) {
      errors.show(refusals(problem(e)).map((r) => ({ message: r.message })));
    }
  };
  const draw = () => {
    list.replaceChildren(
      ...(grants.length === 0
        ? [h("li", {}, t("console.noAccess"))]
        : grants.map((g, i) => {
            const item = h("li", {}, t("console.grant", { role: g.roleName, area: g.serviceAreaName }), " ");
            if (powers.users) {
              const remove = h("button", { type: "button", class: "link-button", "data-action": "remove-grant" }, t("console.remove"), h("span", { class: "visually-hidden" }, ` ${g.roleName} ${g.serviceAreaName}`));
              remove.addEventListener("click", () => void busy(remove, () => save(grants.filter((_, j) => j !== i))));
              item.append(remove);
            }
            return item;
          })),
    );
  };
  draw();
  const section = h("section", { class: "section", "aria-labelledby": "access-title" }, h("h2", { id: "access-title" }, t("console.access")), errors.box, list);
  if (powers.users && areas.length && roles.length) {
    const area = select("f-grant-area", t("console.area"), areas.map((a): [string, string] => [a.id, a.name]));
    const role = select("f-grant-role", t("console.role"), roles.map((r): [string, string] => [r.id, r.name]));
    const add = submitButton(t("console.addAccess"));
    const form = h("form", { novalidate: true, id: "add-grant" }, h("div", { class: "two-columns" }, area.wrap, role.wrap), add);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void busy(add, () => save([...grants, { serviceAreaId: area.select.value, roleId: role.select.value } as AccessGrant]));
    });
    section.append(form);
  }
  return section;
}

/// The emails sent to this person, newest first.
async function sentTo(user: User): Promise<HTMLElement> {
  const section = h("section", { class: "section", "aria-labelledby": "sent-title" }, h("h2", { id: "sent-title" }, t("console.emailsToPerson")));
  try {
    const found = await invitations.listDeliveries({ userId: user.id, pageSize: 20 }, here());
    section.append(found.deliveries.length ? deliveryTable(found.deliveries) : paragraph(t("console.noDeliveries")));
  } catch (e) {
    section.append(paragraph(say(e), "notice error-text"));
  }
  return section;
}

function deleteArea(user: User): HTMLElement {
  const area = h("div", { id: "delete-confirm" });
  const button = h("button", { type: "button", class: "button danger", "data-action": "delete" }, t("console.delete"));
  button.addEventListener("click", () =>
    confirm(area, {
      label: t("console.delete"),
      question: t("console.confirmDelete", { name: displayName(user) }),
      items: [user.email],
      yes: t("console.deleteYes"),
      danger: true,
      go: async () => {
        try {
          await admin.deleteUser({ userId: user.id });
          window.location.hash = `#/people?deleted=${encodeURIComponent(user.email)}`;
        } catch (e) {
          notice(area, say(e), true);
        }
      },
    }),
  );
  return h("section", { class: "section", "aria-labelledby": "delete-title" }, h("h2", { id: "delete-title" }, t("console.deleteTitle")), paragraph(t("console.deleteLead")), button, area);
}
