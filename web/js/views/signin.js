// Sign-in with one of the gateway's API keys (x-api-key) or a JWT (Authorization: Bearer).

import { h, fill } from "../dom.js";
import { api } from "../api.js";
import { save, clear } from "../session.js";

/** Render the sign-in form into section; onSignedIn() once the gateway accepted the credentials. */
export function renderSignIn(section, onSignedIn, notice = "") {
  const error = h("p", { id: "secret-error", class: "field-error", role: "alert" });
  const secret = h("input", {
    id: "secret", name: "secret", type: "password", autocomplete: "off", spellcheck: "false",
    "aria-describedby": "secret-hint secret-error", required: true,
  });
  const secretLabel = h("label", { for: "secret" }, "API key");
  const hint = h("p", { id: "secret-hint", class: "hint" },
    "Kept only for this browser tab (sessionStorage) and sent to the gateway on this site only.");
  const kindChanged = (event) => {
    secretLabel.textContent = event.target.value === "jwt" ? "JSON Web Token" : "API key";
  };
  const radio = (value, label, checked) => h("label", { class: "choice" },
    h("input", { type: "radio", name: "kind", value, checked, onchange: kindChanged }), label);
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { class: "card narrow", novalidate: true },
    h("fieldset", {}, h("legend", {}, "Sign in with"),
      radio("apiKey", "API key (X-API-Key header)", true),
      radio("jwt", "JSON Web Token (Authorization: Bearer)", false)),
    h("div", { class: "field" }, secretLabel, hint, secret, error),
    button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = secret.value.trim();
    if (!value) {
      fail("Enter a key or token.");
      return;
    }
    save(form.elements.kind.value, value);
    button.disabled = true;
    try {
      await api.listProducts();
      secret.value = "";
      onSignedIn();
    } catch (err) {
      clear();
      fail(err.plain ? `${err.plain} (${err.message})` : String(err));
    } finally {
      button.disabled = false;
    }
  });

  function fail(text) {
    error.textContent = text;
    secret.setAttribute("aria-invalid", "true");
    secret.focus();
  }

  fill(section,
    h("h2", { id: "signin-title" }, "Sign in"),
    notice ? h("p", { class: "notice", role: "alert" }, notice) : null,
    form);
  return secret;
}
