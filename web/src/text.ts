// All page text lives in `text/<language>.json`, one file per language; the
// build gathers every file there, so a new language needs no code change.

import locales from "./gen/locales";

type Tree = { [key: string]: string | Tree };

const english = locales["en"] as Tree;

function choose(): Tree {
  for (const wanted of navigator.languages ?? [navigator.language]) {
    const base = wanted.toLowerCase().split("-")[0];
    const found = locales[wanted.toLowerCase()] ?? locales[base];
    if (found) return found as Tree;
  }
  return english;
}

const chosen = choose();
document.documentElement.lang = String(chosen["lang"] ?? "en");

function lookup(tree: Tree, key: string): string | undefined {
  let node: string | Tree | undefined = tree;
  for (const part of key.split(".")) {
    if (typeof node !== "object") return undefined;
    node = node[part];
  }
  return typeof node === "string" ? node : undefined;
}

/// The text for `key` in the person's language (English when missing), with
/// `{name}` placeholders filled in.
export function t(key: string, values: Record<string, string | number> = {}): string {
  const text = lookup(chosen, key) ?? lookup(english, key) ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in values ? String(values[name]) : whole,
  );
}

/// Whether `key` has a text, for reasons the server may add later.
export function has(key: string): boolean {
  return lookup(chosen, key) !== undefined || lookup(english, key) !== undefined;
}

/// A field's name as a person reads it; a request path (`user.email`,
/// `access_grants[0].role_id`) is named by its last part.
export function fieldLabel(field: string): string {
  const name = field.replace(/\[\d+\]/g, "").split(".").pop() ?? field;
  return has(`fields.${name}`) ? t(`fields.${name}`) : name.replace(/_/g, " ");
}

export function formatTime(date: Date): string {
  return new Intl.DateTimeFormat(document.documentElement.lang, {
    dateStyle: "long",
    timeStyle: "short",
  }).format(date);
}
