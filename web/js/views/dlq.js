// Operators: a consumer group's dead-letter queue (why each message failed) and replay
// (DeadLetterService: GET /v1/admin/dlq/{group}, POST /v1/admin/dlq/{group}:replay).

import { h, fill, announce } from "../dom.js";
import { api } from "../api.js";
import { time } from "../format.js";
import { problem } from "./problem.js";

const GROUPS = ["inventory", "orders", "payments", "notifications", "audit"];

export function renderDeadLetters(section) {
  const group = h("select", { id: "dlq-group" }, GROUPS.map((g) => h("option", { value: g }, g)));
  const result = h("div", { id: "dlq-result", "aria-live": "polite" });
  const body = h("div", { id: "dlq-body" });
  const form = h("form", { class: "inline", novalidate: true },
    h("label", { for: "dlq-group" }, "Consumer group"), group,
    h("button", { type: "submit", class: "secondary" }, "Show dead letters"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    fill(result);
    load();
  });

  async function load() {
    const name = group.value;
    fill(body, h("p", { class: "hint" }, "Loading..."));
    try {
      const { deadLetters = [] } = await api.listDeadLetters(name);
      fill(body, deadLetters.length
        ? listing(name, deadLetters)
        : h("p", {}, `No dead letters in ${name}.`));
    } catch (err) {
      fill(body, problem(err));
    }
  }

  function listing(name, letters) {
    const boxes = [];
    const rows = letters.map((d, i) => {
      const box = h("input", { type: "checkbox", id: `dlq-pick-${i}`, value: d.eventId });
      boxes.push(box);
      return h("tr", {},
        h("td", { "data-label": "Replay" }, box,
          h("label", { for: box.id, class: "visually-hidden" }, `Select event ${d.eventId}`)),
        h("td", { "data-label": "Event" }, d.type?.split(".").pop() ?? "",
          h("code", { class: "block wrap" }, d.eventId), d.subject ? h("span", { class: "hint block" }, `subject ${d.subject}`) : null),
        h("td", { "data-label": "Why" }, h("strong", {}, d.errorType || "error"), " ", d.errorMessage ?? ""),
        h("td", { "data-label": "Attempts", class: "num" }, String(d.attempts ?? 0)),
        h("td", { "data-label": "Failed" }, time(d.failedTime)));
    });
    const replay = async (selection, button) => {
      button.disabled = true;
      try {
        const { replayed = 0, remaining = 0 } = await api.replayDeadLetters(name, selection);
        const text = `Replayed ${replayed} message${replayed === 1 ? "" : "s"} to ${name}; ${remaining} left in its dead-letter queue.`;
        fill(result, h("p", { class: "notice" }, text));
        announce(text);
        await load();
      } catch (err) {
        fill(result, problem(err));
      } finally {
        button.disabled = false;
      }
    };
    const selected = h("button", { type: "button", onclick: (e) => {
      const eventIds = boxes.filter((b) => b.checked).map((b) => b.value);
      if (!eventIds.length) {
        fill(result, h("p", { class: "field-error", role: "alert" }, "Select at least one message to replay."));
        return;
      }
      replay({ eventIds }, e.currentTarget);
    } }, "Replay selected");
    const all = h("button", { type: "button", class: "secondary",
      onclick: (e) => replay({ all: true }, e.currentTarget) }, `Replay all (${letters.length})`);
    return h("div", {},
      h("table", { class: "stack" },
        h("caption", { class: "visually-hidden" }, `Dead letters of ${name}`),
        h("thead", {}, h("tr", {}, ["Replay", "Event", "Why it failed", "Attempts", "Failed at"].map(
          (t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows)),
      h("div", { class: "actions" }, selected, all));
  }

  fill(section,
    h("h2", { id: "dlq-title" }, "Dead-letter queues (operators)"),
    h("p", { class: "hint" }, "Messages a consumer group gave up on after its retries. Replaying sends them back to the group."),
    form, result, body);
}
