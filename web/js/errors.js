// google.rpc.Status from the gateway, turned into words a person can act on.

const CODE_NAMES = [
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
  "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
  "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
];

const PLAIN = {
  INVALID_ARGUMENT: "Some of what was entered is not valid.",
  FAILED_PRECONDITION: "This cannot be done right now.",
  NOT_FOUND: "That was not found.",
  ALREADY_EXISTS: "That exists already.",
  UNAUTHENTICATED: "You are not signed in, or your key or token was not accepted. Sign in again.",
  PERMISSION_DENIED: "Your key or token is not allowed to do this.",
  RESOURCE_EXHAUSTED: "Too many requests, or the request is too large. Wait a moment and try again.",
  DEADLINE_EXCEEDED: "The shop took too long to answer. Try again.",
  UNAVAILABLE: "A part of the shop is not reachable right now. Try again shortly.",
  ABORTED: "Someone else changed this at the same time. Try again.",
  OUT_OF_RANGE: "A value is out of range.",
  UNIMPLEMENTED: "The shop does not offer this.",
  CANCELLED: "The request was cancelled.",
  INTERNAL: "Something went wrong in the shop.",
  UNKNOWN: "Something went wrong in the shop.",
  DATA_LOSS: "Something went wrong in the shop.",
};

const BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest";
const PRECONDITION = "type.googleapis.com/google.rpc.PreconditionFailure";

/** An error answer from the API: the HTTP status and its google.rpc.Status. */
export class ApiError extends Error {
  constructor(httpStatus, status) {
    super(status?.message || `HTTP ${httpStatus}`);
    this.name = "ApiError";
    this.httpStatus = httpStatus;
    this.status = status ?? {};
  }

  /** The canonical code name, e.g. "INVALID_ARGUMENT". */
  get code() {
    const code = this.status.code;
    if (typeof code === "string") return code;
    return CODE_NAMES[code] ?? fromHttp(this.httpStatus);
  }

  /** One sentence for the person. */
  get plain() {
    return PLAIN[this.code] ?? "Something went wrong.";
  }

  /** [{field, description}] from BadRequest details; field in snake_case. */
  get fieldViolations() {
    return this.#details(BAD_REQUEST).flatMap((d) => d.fieldViolations ?? []).map((v) => ({
      field: snake(v.field ?? ""),
      description: v.description ?? "is not valid",
    }));
  }

  /** [{type, subject, description}] from PreconditionFailure details. */
  get preconditionViolations() {
    return this.#details(PRECONDITION).flatMap((d) => d.violations ?? []);
  }

  #details(type) {
    return (this.status.details ?? []).filter((d) => d["@type"] === type);
  }
}

/** A network failure (no answer at all) as an ApiError the views can show. */
export function networkError(cause) {
  return new ApiError(0, { code: 14, message: `no answer from the gateway (${cause.message})` });
}

function fromHttp(status) {
  return { 400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
    404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED" }[status] ?? "UNKNOWN";
}

/** "lines[0].unitPrice" -> "lines[0].unit_price": the gateway may report either form. */
export function snake(path) {
  return path.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** "customer_id" -> "Customer id": a field path in words for the summary list. */
export function fieldWords(path) {
  const text = path
    .replace(/\[(\d+)\]/g, (_, i) => ` ${Number(i) + 1}`)
    .replace(/[._]/g, " ")
    .trim();
  return text.charAt(0).toUpperCase() + text.slice(1);
}
