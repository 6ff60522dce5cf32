// A bulk send as it happens: a progress bar with counts as the results
// stream in, then who was sent and who was not, and why. The same view
// follows a send this tab started and one followed with WatchBatch, so
// leaving a send and coming back (or watching it from another tab) looks
// the same. Only counts and the not-sent entries stay in memory, never a
// row per recipient, so a send of many thousands keeps the tab light.

import type { BatchEvent } from "../gen/onramp/v1/common_pb";
import { RecipientOutcome } from "../gen/onramp/v1/common_pb";
import { t } from "../text";
import { append, h, paragraph } from "../ui";
import { left, say } from "./api";
import { address } from "./parts";

/// The not-sent entries kept to show; the rest are counted (Deliveries and
/// WatchBatch have them all).
const KEPT = 1_000;
/// How often the counts are redrawn while results pour in.
const DRAW_EVERY_MS = 100;

export interface Tally {
  batchId: string;
  total: number;
  done: number;
  sent: number;
  notSent: number;
  complete: boolean;
}

interface NotSent {
  input: string;
  outcome: RecipientOutcome;
  reason: string;
}

export function reasonText(outcome: RecipientOutcome, reason: string): string {
  const key = `console.reason.RECIPIENT_OUTCOME_${RecipientOutcome[outcome]}`;
  const text = t(key);
  if (text === key) return reason;
  return outcome === RecipientOutcome.FAILED && reason ? `${text} (${reason})` : text;
}

export interface ProgressOptions {
  /// Called once the summary names the batch (to keep it in the address).
  onBatch?: (batchId: string) => void;
}

/// Draws `events` into `area` as they come; answers the final tally, or
/// null when the stream was refused before it began (the caller shows why).
export async function follow(events: AsyncIterable<BatchEvent>, area: HTMLElement, options: ProgressOptions = {}): Promise<Tally | null> {
  const bar = h("progress", { class: "progress", max: "1", value: "0", id: "batch-progress", "aria-labelledby": "batch-status" });
  const status = h("p", { id: "batch-status", role: "status", "aria-live": "polite" });
  const away = h("p", { class: "hint" });
  const tally: Tally = { batchId: "", total: 0, done: 0, sent: 0, notSent: 0, complete: false };
  const kept: NotSent[] = [];
  let drawn = 0;
  const draw = (force: boolean) => {
    const now = performance.now();
    if (!force && now - drawn < DRAW_EVERY_MS) return;
    drawn = now;
    bar.max = Math.max(tally.total, 1);
    bar.value = tally.done;
    const percent = tally.total ? Math.floor((tally.done * 100) / tally.total) : 100;
    status.textContent = t("console.progress", { done: tally.done, total: tally.total, percent, sent: tally.sent, notSent: tally.notSent });
  };
  let started = false;
  try {
    for await (const event of events) {
      switch (event.event.case) {
        case "summary": {
          const s = event.event.value;
          tally.batchId = s.batchId;
          tally.total = s.total;
          started = true;
          options.onBatch?.(s.batchId);
          away.replaceChildren(
            t("console.leaveAnyTime"),
            " ",
            h("a", { href: address("/deliveries", { batch: s.batchId }) }, t("console.followInDeliveries")),
          );
          area.replaceChildren(bar, status, away);
          draw(true);
          break;
        }
        case "result": {
          const r = event.event.value;
          tally.done += 1;
          if (r.outcome === RecipientOutcome.SENT) {
            tally.sent += 1;
          } else {
            tally.notSent += 1;
            if (kept.length < KEPT) kept.push({ input: r.input || r.email, outcome: r.outcome, reason: r.reason });
          }
          draw(false);
          break;
        }
        case "completion":
          tally.complete = true;
          break;
        default:
          break;
      }
    }
  } catch (e) {
    if (!started) throw e;
    if (left(e)) return tally;
    area.append(paragraph(say(e), "notice error-text"));
    return tally;
  }
  draw(true);
  bar.value = bar.max;
  away.remove();
  append(area, [
    h("p", { id: "sent-count", class: "count" }, t("console.sentCount", { n: tally.sent })),
    kept.length
      ? h(
          "section",
          { "aria-labelledby": "not-sent-title" },
          h("h2", { id: "not-sent-title" }, t("console.notSentTitle", { n: tally.notSent })),
          h("ul", { id: "not-sent" }, ...kept.map((n) => h("li", {}, `${n.input}: ${reasonText(n.outcome, n.reason)}`))),
          tally.notSent > kept.length ? paragraph(t("console.notSentMore", { n: tally.notSent - kept.length })) : null,
        )
      : null,
  ]);
  return tally;
}
