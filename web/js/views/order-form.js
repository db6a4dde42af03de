// Place an order (OrderService.CreateOrder). Validation is the server's: its BadRequest field
// violations are shown next to the inputs they name ("customer_id", "lines[1].quantity", ...).

import { h, fill, announce } from "../dom.js";
import { api } from "../api.js";
import { fieldWords } from "../errors.js";
import { money } from "../format.js";
import { problem } from "./problem.js";

export const PAYMENT_METHODS = [
  ["pm_card", "Card that is authorized"],
  ["pm_decline", "Card that is declined (pm_decline: the saga compensates)"],
  ["pm_insufficient_funds", "Card with insufficient funds (declined)"],
];

/** Render the form; returns setProducts(products) to refresh the product choices. */
export function renderOrderForm(section, onPlaced) {
  let products = [];
  // One key per attempt: a retry after a lost answer reuses it, so it cannot order twice.
  let idempotencyKey = crypto.randomUUID();
  const summary = h("div", { id: "order-form-problems", tabindex: "-1" });
  const customer = input("customer-id", "customer_id", { autocomplete: "off", value: "customer-1" });
  const linesBox = h("div", { class: "lines" });
  const formErrors = new Map();
  const payment = h("select", { id: "payment", name: "payment", "aria-describedby": "err-payment_token" },
    PAYMENT_METHODS.map(([value, label]) => h("option", { value }, label)));
  const submit = h("button", { type: "submit" }, "Place order");
  const form = h("form", { class: "card", novalidate: true, "aria-describedby": "order-form-problems" },
    summary,
    field("Customer", customer, "customer_id"),
    h("fieldset", { id: "lines" }, h("legend", {}, "Lines"),
      errorSlot("lines"),
      linesBox,
      h("button", { type: "button", class: "secondary", onclick: () => addLine(true) }, "Add line")),
    field("Payment method", payment, "payment_token"),
    errorSlot("idempotency_key"),
    submit);

  function input(id, errorKey, attrs = {}) {
    return h("input", { id, name: id, type: "text", "aria-describedby": `err-${errorKey}`, ...attrs });
  }

  function errorSlot(key) {
    const slot = h("p", { id: `err-${key}`, class: "field-error" });
    formErrors.set(key, slot);
    return slot;
  }

  function field(label, control, key) {
    return h("div", { class: "field" }, h("label", { for: control.id }, label), control, errorSlot(key));
  }

  function addLine(focus = false) {
    const row = h("div", { class: "line" });
    linesBox.append(row);
    renumber();
    if (focus) row.querySelector("select").focus();
  }

  function renumber() {
    // Rebuild every row so ids, labels and error slots follow the line's index (the server's
    // field paths are lines[i]); keep what was chosen.
    const rows = [...linesBox.children];
    const values = rows.map((row) => ({
      sku: row.querySelector("select")?.value, quantity: row.querySelector("input")?.value ?? "1",
    }));
    for (const key of [...formErrors.keys()]) if (key.startsWith("lines[")) formErrors.delete(key);
    rows.forEach((row, i) => {
      const n = i + 1;
      const sku = h("select", { id: `line-${i}-sku`, "aria-describedby": `err-lines[${i}].sku` },
        products.map((p) => h("option", { value: p.sku }, `${p.name} (${p.sku}), ${money(p.price)}, ${p.availableQuantity ?? 0} available`)));
      if (values[i].sku) sku.value = values[i].sku;
      else if (products[i]) sku.value = products[i].sku;
      const quantity = h("input", {
        id: `line-${i}-quantity`, type: "number", inputmode: "numeric", min: "1", step: "1",
        value: values[i].quantity, "aria-describedby": `err-lines[${i}].quantity`,
      });
      const remove = h("button", {
        type: "button", class: "secondary", "aria-label": `Remove line ${n}`,
        disabled: rows.length === 1,
        onclick: () => { row.remove(); renumber(); linesBox.querySelector("select")?.focus(); },
      }, "Remove");
      fill(row,
        h("div", { class: "field" }, h("label", { for: sku.id }, "Product", h("span", { class: "visually-hidden" }, `, line ${n}`)), sku,
          errorSlot(`lines[${i}].sku`)),
        h("div", { class: "field" }, h("label", { for: quantity.id }, "Quantity", h("span", { class: "visually-hidden" }, `, line ${n}`)),
          quantity, errorSlot(`lines[${i}].quantity`)),
        remove);
    });
  }

  function clearErrors() {
    fill(summary);
    for (const slot of formErrors.values()) slot.textContent = "";
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  function showError(err) {
    const unplaced = [];
    for (const { field, description } of err.fieldViolations ?? []) {
      const key = formErrors.has(field) ? field : nearest(field);
      const slot = formErrors.get(key);
      if (!slot) {
        unplaced.push(`${fieldWords(field)}: ${description}`);
        continue;
      }
      slot.textContent = slot.textContent ? `${slot.textContent}; ${description}` : description;
      document.querySelector(`[aria-describedby~="err-${CSS.escape(key)}"]`)?.setAttribute("aria-invalid", "true");
    }
    fill(summary, problem(err), unplaced.length ? h("ul", {}, unplaced.map((t) => h("li", {}, t))) : null);
    const firstInvalid = form.querySelector('[aria-invalid="true"]');
    (firstInvalid ?? summary).focus();
  }

  function nearest(field) {
    // "lines[0]" or "lines[0].unit_price" -> the line's quantity slot; "lines" stays "lines".
    const line = /^lines\[(\d+)\]/.exec(field);
    if (line) return `lines[${line[1]}].quantity`;
    return field.split(/[.[]/)[0];
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const lines = [...linesBox.children].map((row) => ({
      sku: row.querySelector("select").value,
      quantity: Number(row.querySelector("input").value),
    }));
    submit.disabled = true;
    submit.textContent = "Placing order...";
    try {
      const order = await api.createOrder({
        idempotencyKey, customerId: customer.value.trim(), lines, paymentToken: payment.value,
      });
      idempotencyKey = crypto.randomUUID();
      announce(`Order ${order.orderId} placed`);
      onPlaced(order);
    } catch (err) {
      if (err.httpStatus >= 400 && err.httpStatus < 500) idempotencyKey = crypto.randomUUID();
      showError(err);
    } finally {
      submit.disabled = false;
      submit.textContent = "Place order";
    }
  });

  fill(section, h("h2", { id: "place-title" }, "Place an order"), form);
  addLine();
  return (list) => {
    products = list;
    renumber();
  };
}
