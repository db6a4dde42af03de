// Entry point: sign-in first, then the console's sections.

import { setUnauthenticatedHandler } from "./api.js";
import { load, clear } from "./session.js";
import { renderSignIn } from "./views/signin.js";
import { renderProducts } from "./views/products.js";
import { renderOrderForm } from "./views/order-form.js";
import { renderOrderView } from "./views/order-view.js";
import { renderOrders } from "./views/orders.js";
import { renderDeadLetters } from "./views/dlq.js";

const $ = (id) => document.getElementById(id);

function showSignIn(notice = "") {
  $("app").hidden = true;
  $("nav").hidden = true;
  $("who").hidden = true;
  $("signin").hidden = false;
  renderSignIn($("signin"), showConsole, notice).focus();
}

function showConsole() {
  const credentials = load();
  $("signin").hidden = true;
  $("app").hidden = false;
  $("nav").hidden = false;
  $("who").hidden = false;
  $("who-text").textContent = credentials?.kind === "jwt" ? "Signed in with a token" : "Signed in with an API key";

  let refreshOrders = () => {};
  const setProducts = renderOrderForm($("place"), (order) => {
    follow(order.orderId);
    refreshProducts();
  });
  const refreshProducts = renderProducts($("products"), setProducts);
  const follow = renderOrderView($("order"), (order) => {
    if (order.status !== "ORDER_STATUS_PENDING") {
      refreshOrders();
      refreshProducts();
    }
  });
  const pick = (orderId) => {
    follow(orderId);
    $("order-title").focus();
  };
  refreshOrders = renderOrders($("orders"), pick);
  renderDeadLetters($("dlq"));
  refreshProducts();
  refreshOrders();
}

setUnauthenticatedHandler(() => {
  if ($("app").hidden) return; // the sign-in form shows its own error
  clear();
  showSignIn("Your session was not accepted by the gateway. Sign in again.");
});

$("sign-out").addEventListener("click", () => {
  clear();
  showSignIn("Signed out.");
});

if (load()) showConsole();
else showSignIn();
