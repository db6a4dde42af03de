// Values from the API in words and local formats.

import { h } from "./dom.js";

/** {currencyCode, minorUnits} -> "€15.00" (minorUnits is an int64, so a string in JSON). */
export function money(value) {
  if (!value?.currencyCode) return "";
  const format = new Intl.NumberFormat(undefined, { style: "currency", currency: value.currencyCode });
  const digits = format.resolvedOptions().maximumFractionDigits;
  return format.format(Number(value.minorUnits ?? 0) / 10 ** digits);
}

/** An RFC 3339 timestamp as a <time> element with the local date and time to the second. */
export function time(value) {
  if (!value) return "";
  const date = new Date(value);
  const text = date.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  return h("time", { datetime: value, title: value }, text);
}

/** "ORDER_STATUS_CONFIRMED" -> "Confirmed", "reserve_stock" -> "Reserve stock". */
export function words(name, prefix = "") {
  const text = (name ?? "").replace(prefix, "").replace(/_/g, " ").toLowerCase().trim();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A coloured status badge whose text says the status (colour is never the only cue). */
export function badge(name, prefix) {
  const text = words(name, prefix) || "Unknown";
  return h("span", { class: `badge badge-${text.toLowerCase().replace(/\s+/g, "-")}` }, text);
}
