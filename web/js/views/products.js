// Products and their stock (InventoryService.ListProducts).

import { h, fill } from "../dom.js";
import { api } from "../api.js";
import { money } from "../format.js";
import { problem } from "./problem.js";

/** Render the section; returns refresh() -> Promise<products[]>. */
export function renderProducts(section, onLoaded) {
  const body = h("div", { "aria-live": "polite" });
  const refresh = async () => {
    button.disabled = true;
    try {
      const products = [];
      let token = "";
      do {
        const page = await api.listProducts(token || undefined);
        products.push(...(page.products ?? []));
        token = page.nextPageToken ?? "";
      } while (token);
      fill(body, products.length ? table(products) : h("p", {}, "No products yet."));
      onLoaded(products);
      return products;
    } catch (err) {
      fill(body, problem(err));
      return [];
    } finally {
      button.disabled = false;
    }
  };
  const button = h("button", { type: "button", class: "secondary", onclick: refresh }, "Refresh products");
  fill(section,
    h("div", { class: "section-head" }, h("h2", { id: "products-title" }, "Products and stock"), button),
    body);
  return refresh;
}

function table(products) {
  return h("table", { class: "stack" },
    h("caption", { class: "visually-hidden" }, "Products with price and stock"),
    h("thead", {}, h("tr", {}, ["SKU", "Name", "Price", "Available", "Reserved"].map(
      (title) => h("th", { scope: "col" }, title)))),
    h("tbody", {}, products.map((p) => {
      const available = p.availableQuantity ?? 0;
      const low = available <= (p.lowStockThreshold ?? 0);
      return h("tr", {},
        h("td", { "data-label": "SKU" }, h("code", {}, p.sku)),
        h("td", { "data-label": "Name" }, p.name),
        h("td", { "data-label": "Price", class: "num" }, money(p.price)),
        h("td", { "data-label": "Available", class: "num" }, String(available),
          low ? h("span", { class: "badge badge-low" }, "low") : null),
        h("td", { "data-label": "Reserved", class: "num" }, String(p.reservedQuantity ?? 0)));
    })));
}
