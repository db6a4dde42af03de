// Recent orders from the read model (OrderService.ListOrders), each one a button to follow it.

import { h, fill } from "../dom.js";
import { api } from "../api.js";
import { badge, money, time } from "../format.js";
import { problem } from "./problem.js";

/** Render the section; returns refresh(). */
export function renderOrders(section, onPick) {
  const body = h("div", {});
  const refresh = async () => {
    try {
      const { orders = [] } = await api.listOrders();
      fill(body, orders.length ? table(orders, onPick) : h("p", {}, "No orders yet."));
    } catch (err) {
      fill(body, problem(err));
    }
  };
  fill(section,
    h("div", { class: "section-head" }, h("h2", { id: "orders-title" }, "Recent orders"),
      h("button", { type: "button", class: "secondary", onclick: refresh }, "Refresh orders")),
    body);
  return refresh;
}

function table(orders, onPick) {
  return h("table", { class: "stack" },
    h("caption", { class: "visually-hidden" }, "Most recent orders, newest first"),
    h("thead", {}, h("tr", {}, ["Order", "Customer", "Status", "Items", "Total", "Updated"].map(
      (t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, orders.map((o) => h("tr", {},
      h("td", { "data-label": "Order" }, h("button", {
        type: "button", class: "link", onclick: () => onPick(o.orderId),
        "aria-label": `Follow order ${o.orderId}`,
      }, o.orderId.slice(0, 8))),
      h("td", { "data-label": "Customer" }, o.customerId),
      h("td", { "data-label": "Status" }, badge(o.status, "ORDER_STATUS_")),
      h("td", { "data-label": "Items", class: "num" }, String(o.itemCount ?? 0)),
      h("td", { "data-label": "Total", class: "num" }, money(o.total)),
      h("td", { "data-label": "Updated" }, time(o.updateTime))))));
}
