"""A self-contained interactive API page for ``/docs`` (no CDN: it works offline).

It reads ``/openapi.json`` and lists every operation with a form for its path and query
parameters and its JSON body, sends the request with the API key or bearer token typed in
once, and shows the status, headers and body of the response.
"""

from __future__ import annotations

__all__ = ["DOCS_HTML"]

DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>API docs</title>
<style>
body{font:14px system-ui,sans-serif;margin:2rem;max-width:70rem}
details{border:1px solid #ccc;border-radius:6px;margin:.5rem 0;padding:.5rem}
summary{cursor:pointer}code.m{display:inline-block;width:4.5rem;font-weight:bold}
label{display:block;margin:.25rem 0}input,textarea{font:13px monospace;width:100%}
pre{background:#f5f5f5;padding:.5rem;overflow:auto;max-height:20rem}
</style></head><body>
<h1 id="title">API</h1>
<label>X-API-Key <input id="apikey" autocomplete="off"></label>
<label>Bearer token <input id="bearer" autocomplete="off"></label>
<div id="ops">loading /openapi.json ...</div>
<script>
"use strict";
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  Object.assign(e, attrs);
  kids.forEach(k => e.append(k));
  return e;
};
async function send(method, path, op, form, out) {
  let url = path;
  const query = new URLSearchParams();
  for (const p of op.parameters || []) {
    const v = form.elements[p.in + ":" + p.name].value;
    if (p.in === "path") url = url.replace("{" + p.name + "}", encodeURIComponent(v));
    else if (v) v.split(",").forEach(x => query.append(p.name, x));
  }
  const headers = {"Accept": "application/json"};
  const key = document.getElementById("apikey").value;
  const token = document.getElementById("bearer").value;
  if (key) headers["X-API-Key"] = key;
  if (token) headers["Authorization"] = "Bearer " + token;
  const init = {method: method.toUpperCase(), headers};
  if (op.requestBody) {
    headers["Content-Type"] = "application/json";
    init.body = form.elements.body.value;
  }
  const qs = query.toString();
  const response = await fetch(url + (qs ? "?" + qs : ""), init);
  const text = await response.text();
  out.textContent = response.status + " " + response.statusText + "\\n" +
    [...response.headers].map(h => h.join(": ")).join("\\n") + "\\n\\n" + text;
}
fetch("/openapi.json").then(r => r.json()).then(doc => {
  document.getElementById("title").textContent = doc.info.title + " " + doc.info.version;
  const ops = document.getElementById("ops");
  ops.textContent = "";
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const form = el("form");
      for (const p of op.parameters || []) {
        const text = p.in + " " + p.name + (p.description ? " - " + p.description : "");
        form.append(el("label", {textContent: text}, el("input", {name: p.in + ":" + p.name})));
      }
      if (op.requestBody) {
        const area = el("textarea", {name: "body", rows: 6, value: "{}"});
        form.append(el("label", {textContent: "JSON body"}, area));
      }
      const out = el("pre");
      form.append(el("button", {type: "submit", textContent: "Send"}));
      form.onsubmit = ev => {
        ev.preventDefault();
        send(method, path, op, form, out).catch(e => out.textContent = String(e));
      };
      const verb = el("code", {className: "m", textContent: method.toUpperCase()});
      const title = path + "  " + (op.description || op.summary || "");
      ops.append(el("details", {}, el("summary", {}, verb, title), form, out));
    }
  }
});
</script></body></html>
"""
