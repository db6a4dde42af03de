// One API error shown as a short paragraph: what happened in plain words, then the server's
// own message and any precondition failures (e.g. a SKU short of stock).

import { h } from "../dom.js";

export function problem(err) {
  if (!err?.plain) return h("div", { class: "problem", role: "alert" }, String(err));
  const preconditions = err.preconditionViolations;
  return h("div", { class: "problem", role: "alert" },
    h("p", {}, h("strong", {}, err.plain), " ", err.message ? `(${err.message})` : ""),
    preconditions.length
      ? h("ul", {}, preconditions.map((v) => h("li", {}, v.subject ? `${v.subject}: ` : "", v.description)))
      : null);
}
