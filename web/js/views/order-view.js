// One order followed live: WatchOrder over Server-Sent Events renders every change of status
// and every saga step as it happens; once terminal, the audit trail (QueryAudit by subject)
// and the notifications sent (ListNotifications) are shown.

import { h, fill, announce } from "../dom.js";
import { api, watchOrder } from "../api.js";
import { badge, money, time, words } from "../format.js";
import { problem } from "./problem.js";

const TERMINAL = new Set(["ORDER_STATUS_CONFIRMED", "ORDER_STATUS_CANCELLED"]);
const FINAL_EVENTS = { ORDER_STATUS_CONFIRMED: "OrderConfirmed", ORDER_STATUS_CANCELLED: "OrderCancelled" };

/** Render the section; returns show(orderId) to follow an order. */
export function renderOrderView(section, onChange = () => {}) {
  let watching = null;
  const lookup = h("input", { id: "order-id", type: "text", autocomplete: "off", spellcheck: "false",
    placeholder: "order id (UUID)", "aria-describedby": "order-lookup-error" });
  const lookupError = h("p", { id: "order-lookup-error", class: "field-error" });
  const form = h("form", { class: "inline", novalidate: true },
    h("label", { for: "order-id" }, "Order id"), lookup,
    h("button", { type: "submit", class: "secondary" }, "Show order"), lookupError);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = lookup.value.trim();
    lookupError.textContent = id ? "" : "Enter an order id.";
    if (id) show(id);
  });
  const live = h("p", { id: "live", class: "live", "aria-live": "polite" });
  const summary = h("div", { id: "order-summary" });
  const steps = h("ol", { id: "saga-steps", class: "steps", "aria-label": "Saga steps" });
  const audit = h("div", { id: "audit" });
  const notifications = h("div", { id: "notifications" });
  const extras = h("div", { class: "columns" },
    h("div", {}, h("div", { class: "section-head" }, h("h3", {}, "Audit trail"),
      h("button", { type: "button", class: "secondary", onclick: () => loadAudit(current) }, "Refresh audit trail")), audit),
    h("div", {}, h("div", { class: "section-head" }, h("h3", {}, "Notifications sent"),
      h("button", { type: "button", class: "secondary", onclick: () => loadNotifications(current) }, "Refresh notifications")), notifications));
  const body = h("div", { id: "order-body", hidden: true },
    live, summary, h("h3", {}, "Saga"), steps, extras);
  let current = "";

  fill(section, h("h2", { id: "order-title", tabindex: "-1" }, "Order"), form,
    h("p", { id: "order-empty", class: "hint" }, "Place an order, or pick one from Recent orders, to follow it here."),
    body);

  async function show(orderId) {
    watching?.abort();
    const controller = new AbortController();
    watching = controller;
    current = orderId;
    lastStatus = "";
    lookup.value = orderId;
    section.querySelector("#order-empty").hidden = true;
    body.hidden = false;
    fill(summary);
    fill(steps);
    fill(audit, h("p", { class: "hint" }, "Shown when the saga has finished."));
    fill(notifications, h("p", { class: "hint" }, "Shown when the saga has finished."));
    setLive("connecting", "Connecting to the live stream...");
    let last = null;
    try {
      await watchOrder(orderId, (order) => {
        last = order;
        render(order);
      }, controller.signal);
      if (watching !== controller) return;
      setLive("done", last && TERMINAL.has(last.status)
        ? "Saga finished: the live stream has ended."
        : "The live stream ended.");
    } catch (err) {
      if (err.name === "AbortError" || watching !== controller) return;
      setLive("error", "The live stream stopped.");
      summary.append(problem(err));
      return;
    }
    if (last && TERMINAL.has(last.status)) await loadFinished(orderId, last.status, controller);
  }

  function setLive(state, text) {
    live.dataset.state = state;
    fill(live, state === "live" ? h("span", { class: "dot", "aria-hidden": "true" }) : null, text);
  }

  let lastStatus = "";
  function render(order) {
    if (TERMINAL.has(order.status)) setLive("done", "Saga finished.");
    else setLive("live", "Live: updates appear here as the saga runs.");
    if (order.status !== lastStatus) {
      announce(`Order is ${words(order.status, "ORDER_STATUS_")}`);
      lastStatus = order.status;
    }
    fill(summary, h("dl", { class: "facts" },
      fact("Order id", h("code", { id: "shown-order-id" }, order.orderId)),
      fact("Status", h("span", { id: "order-status" }, badge(order.status, "ORDER_STATUS_"))),
      fact("Customer", order.customerId),
      fact("Total", money(order.total)),
      fact("Lines", (order.lines ?? []).map((l) => `${l.quantity} x ${l.sku}`).join(", ")),
      order.paymentId ? fact("Payment", h("code", {}, order.paymentId)) : null,
      order.cancelReason ? fact("Cancel reason", order.cancelReason) : null,
      fact("Updated", time(order.updateTime)),
      fact("Version", order.version ?? "")));
    fill(steps, (order.steps ?? []).map((step) => h("li", { class: "step", "data-step": step.name },
      h("span", { class: "step-name" }, words(step.name)),
      badge(step.outcome, "STEP_OUTCOME_"),
      time(step.time),
      step.detail ? h("span", { class: "step-detail" }, step.detail) : null)));
    onChange(order);
  }

  async function loadFinished(orderId, status, controller) {
    // Audit and notifications consume the events asynchronously: poll briefly until the
    // final event and a notification have arrived.
    for (let attempt = 0; attempt < 15 && watching === controller; attempt += 1) {
      const [events, sent] = await Promise.all([loadAudit(orderId), loadNotifications(orderId)]);
      const done = events?.some((e) => e.type?.endsWith(FINAL_EVENTS[status])) && sent?.length;
      if (done) return;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  async function loadAudit(orderId) {
    if (!orderId) return null;
    try {
      const { events = [] } = await api.queryAudit(orderId);
      fill(audit, events.length ? auditTable(events) : h("p", {}, "No events recorded yet."));
      return events;
    } catch (err) {
      fill(audit, problem(err));
      return null;
    }
  }

  async function loadNotifications(orderId) {
    if (!orderId) return null;
    try {
      const { notifications: sent = [] } = await api.listNotifications(orderId);
      fill(notifications, sent.length
        ? h("ul", { class: "notes" }, sent.map((n) => h("li", {},
          h("strong", {}, n.subject || words(n.eventType)), " ",
          h("span", { class: "hint" }, `${words(n.channel, "CHANNEL_")} to ${n.recipient}, `), time(n.sendTime),
          n.body ? h("p", {}, n.body) : null)))
        : h("p", {}, "No notifications sent yet."));
      return sent;
    } catch (err) {
      fill(notifications, problem(err));
      return null;
    }
  }

  return show;
}

function fact(term, value) {
  return h("div", {}, h("dt", {}, term), h("dd", {}, value));
}

function auditTable(events) {
  return h("table", { class: "stack", id: "audit-table" },
    h("caption", { class: "visually-hidden" }, "Events recorded for this order"),
    h("thead", {}, h("tr", {}, ["Event", "Time", "Trace id"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, events.map((e) => h("tr", {},
      h("td", { "data-label": "Event", title: e.type ?? "" }, e.type?.split(".").pop() ?? ""),
      h("td", { "data-label": "Time" }, time(e.time)),
      h("td", { "data-label": "Trace id" }, h("code", { class: "wrap" }, e.traceId || "none"))))));
}
