// The REST API the gateway builds from the protos' google.api.http annotations (same origin).
// JSON is proto3's canonical mapping: lowerCamelCase names, int64 as strings, enums as names.

import { ApiError, networkError } from "./errors.js";
import { events } from "./sse.js";
import { authHeaders } from "./session.js";

let onUnauthenticated = () => {};

/** Called with the ApiError whenever the gateway answers 401 (e.g. to show sign-in again). */
export function setUnauthenticatedHandler(handler) {
  onUnauthenticated = handler;
}

async function call(method, path, { query, body, signal } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== "" && value !== null) url.searchParams.set(key, value);
  }
  const headers = { Accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (cause) {
    if (cause.name === "AbortError") throw cause;
    throw networkError(cause);
  }
  return response.ok ? response.json() : fail(response);
}

async function fail(response) {
  let status = null;
  try {
    status = await response.json();
  } catch {
    // A proxy's HTML error page: keep the HTTP status only.
  }
  const error = new ApiError(response.status, status);
  if (error.code === "UNAUTHENTICATED") onUnauthenticated(error);
  throw error;
}

export const api = {
  listProducts: (pageToken) => call("GET", "/v1/products", { query: { pageSize: 100, pageToken } }),
  createOrder: (order) => call("POST", "/v1/orders", { body: order }),
  getOrder: (orderId) => call("GET", `/v1/orders/${encodeURIComponent(orderId)}`),
  listOrders: () => call("GET", "/v1/orders", { query: { pageSize: 20 } }),
  queryAudit: (subject) => call("GET", "/v1/audit/events", { query: { subject, pageSize: 200 } }),
  listNotifications: (orderId) => call("GET", "/v1/notifications", { query: { orderId } }),
  listDeadLetters: (group) =>
    call("GET", `/v1/admin/dlq/${encodeURIComponent(group)}`, { query: { pageSize: 100 } }),
  replayDeadLetters: (group, selection) =>
    call("POST", `/v1/admin/dlq/${encodeURIComponent(group)}:replay`, { body: selection }),
};

/**
 * Follow WatchOrder as Server-Sent Events: onOrder(order) for every message until the stream
 * ends (the order reached a terminal status). Rejects with ApiError for an error answer or a
 * final "event: error" frame; abort with the signal.
 */
export async function watchOrder(orderId, onOrder, signal) {
  const url = `/v1/orders/${encodeURIComponent(orderId)}:watch`;
  let response;
  try {
    response = await fetch(url, {
      headers: { Accept: "text/event-stream", ...authHeaders() }, signal,
    });
  } catch (cause) {
    if (cause.name === "AbortError") throw cause;
    throw networkError(cause);
  }
  if (!response.ok) return fail(response);
  for await (const { event, data } of events(response)) {
    const value = JSON.parse(data);
    if (event === "error") throw new ApiError(response.status, value);
    onOrder(value);
  }
}
