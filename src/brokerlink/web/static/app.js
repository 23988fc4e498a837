/* brokerlink web app: plain JavaScript, no build step, no inline handlers.
 *
 * Pages are rendered by the server; this script signs in and out, runs the provider's connection
 * flow in a popup, refreshes connections (with the cost guard's window and an override that
 * states its cost), syncs everything, and drives the order ticket. Every request that changes
 * data carries the CSRF header the API requires.
 */
(function () {
  "use strict";

  var CSRF_HEADER = document.body.getAttribute("data-csrf-header") || "X-Brokerlink-CSRF";
  var FLASH_KEY = "brokerlink.flash";
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var PROVIDERS = { snaptrade: "SnapTrade", plaid: "Plaid", manual: "Manual" };

  // -- helpers -----------------------------------------------------------------------------

  function $(selector, root) {
    return (root || document).querySelector(selector);
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      node.setAttribute(name, attrs[name]);
    });
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  /** The server's format: `28 Nov 2026, 19:07 UTC`. */
  function formatWhen(iso) {
    if (!iso) return "never";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return iso;
    return d.getUTCDate() + " " + MONTHS[d.getUTCMonth()] + " " + d.getUTCFullYear() + ", " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + " UTC";
  }

  function money(value, currency) {
    var n = Number(value);
    if (value === null || value === undefined || isNaN(n)) return "–";
    try {
      return new Intl.NumberFormat("en-US", { style: "currency", currency: currency || "USD" })
        .format(n);
    } catch (e) {
      return n.toFixed(2) + " " + (currency || "");
    }
  }

  function providerLabel(provider) {
    return PROVIDERS[provider] || provider;
  }

  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return pad16(b); }).join("");
  }

  function pad16(b) {
    return (b < 16 ? "0" : "") + b.toString(16);
  }

  // -- the API ----------------------------------------------------------------------------

  function ApiError(status, body) {
    var error = (body && body.error) || {};
    this.name = "ApiError";
    this.status = status;
    this.code = error.code || "http_" + status;
    this.reason = error.reason || null;
    this.nextAllowedAt = error.next_allowed_at || null;
    this.canOverride = error.can_override !== false;
    this.message = error.message || "the server answered " + status;
  }
  ApiError.prototype = Object.create(Error.prototype);

  async function api(method, path, body, headers) {
    var init = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    Object.keys(headers || {}).forEach(function (name) { init.headers[name] = headers[name]; });
    if (method !== "GET") init.headers[CSRF_HEADER] = "1";
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    var response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, { error: { code: "network", message: "the server could not be reached" } });
    }
    var text = await response.text();
    var data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (response.status === 401 && path.indexOf("/api/auth/") !== 0) {
      toLogin();
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  async function fetchHtml(path) {
    var response = await fetch(path, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (response.status === 401) toLogin();
    if (!response.ok) throw new ApiError(response.status, null);
    return response.text();
  }

  function toLogin() {
    location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
  }

  // -- messages ---------------------------------------------------------------------------

  function flash(message, kind) {
    var box = $("#flash");
    if (!box) return;
    box.textContent = "";
    if (message) box.appendChild(el("p", { class: "flash-" + (kind || "info") }, message));
  }

  function flashAfterReload(message, kind) {
    try {
      sessionStorage.setItem(FLASH_KEY, JSON.stringify({ message: message, kind: kind }));
    } catch (e) { /* storage off: the message is lost, the page still reloads */ }
  }

  function showStoredFlash() {
    try {
      var stored = sessionStorage.getItem(FLASH_KEY);
      if (!stored) return;
      sessionStorage.removeItem(FLASH_KEY);
      var item = JSON.parse(stored);
      flash(item.message, item.kind);
    } catch (e) { /* nothing stored */ }
  }

  /** A modal confirmation; resolves true when the user confirms. */
  function confirmDialog(title, text, okLabel, danger) {
    var dialog = $("#confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") {
      return Promise.resolve(window.confirm(title + "\n\n" + text));
    }
    $("#confirm-title", dialog).textContent = title;
    $("#confirm-text", dialog).textContent = text;
    var ok = $("#confirm-ok", dialog);
    ok.textContent = okLabel;
    ok.className = "button " + (danger ? "danger" : "primary");
    dialog.returnValue = "";
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function onClose() {
        dialog.removeEventListener("close", onClose);
        resolve(dialog.returnValue === "ok");
      });
      dialog.showModal();
      $("#confirm-cancel", dialog).focus();
    });
  }

  // -- sign in, sign out ------------------------------------------------------------------

  function initLogin() {
    var form = $("#login-form");
    if (!form) return;
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      var error = $("#login-error");
      var button = $("button[type=submit]", form);
      error.hidden = true;
      button.disabled = true;
      try {
        await api("POST", "/api/auth/login", {
          email: form.elements.email.value.trim(),
          password: form.elements.password.value,
        });
        location.assign(form.getAttribute("data-next") || "/");
      } catch (e) {
        if (e.status === 401 || e.status === 403) {
          error.textContent = "That email and password do not match an account.";
        } else if (e.code === "sign_in_throttled") {
          // The server says when, in words: "Too many failed sign-ins. Try again in 15 minutes."
          error.textContent = e.message;
        } else {
          error.textContent = "Could not sign in: " + e.message;
        }
        error.hidden = false;
        form.elements.password.focus();
        button.disabled = false;
      }
    });
  }

  function initSignOut() {
    var button = $("#sign-out");
    if (!button) return;
    button.addEventListener("click", async function () {
      button.disabled = true;
      try {
        await api("POST", "/api/auth/logout");
      } catch (e) { /* signed out either way */ }
      location.assign("/login");
    });
  }

  // -- connecting: the provider's page in a popup ------------------------------------------

  var activeFlow = null;

  function flowBox() {
    var box = $("#flow-status");
    box.hidden = false;
    box.textContent = "";
    return box;
  }

  function showProgress(message) {
    var box = flowBox();
    box.appendChild(el("p", { class: "progress", role: "status" }, message));
  }

  function showProblem(flow, kind, message) {
    var box = flowBox();
    var panel = el("div", { class: "problem", role: "alert", "data-problem": kind });
    panel.appendChild(el("p", { class: "problem-message" }, message));
    var actions = el("div", { class: "actions" });
    var retry = el("button", { type: "button", class: "button primary retry" }, "Try again");
    retry.addEventListener("click", function () { runFlow(flow); });
    var dismiss = el("button", { type: "button", class: "button subtle" }, "Dismiss");
    dismiss.addEventListener("click", function () {
      box.hidden = true;
      box.textContent = "";
      if (flow.trigger && document.body.contains(flow.trigger)) flow.trigger.focus();
    });
    actions.appendChild(retry);
    actions.appendChild(dismiss);
    panel.appendChild(actions);
    box.appendChild(panel);
    retry.focus();
  }

  /** Resolves with what /connect/callback posted, or {status: "CLOSED"} if the popup closed
   * without finishing. */
  function watchPopup(popup) {
    return new Promise(function (resolve) {
      var done = false;
      var closedAt = null;
      function finish(result) {
        if (done) return;
        done = true;
        window.removeEventListener("message", onMessage);
        clearInterval(timer);
        resolve(result);
      }
      function onMessage(event) {
        if (event.origin !== location.origin) return;
        var data = event.data || {};
        if (data.type !== "brokerlink.connect") return;
        try { popup.close(); } catch (e) { /* already closing itself */ }
        finish({ status: String(data.status || "SUCCESS").toUpperCase(),
          connection_id: data.connection_id || null, error_code: data.error_code || null });
      }
      window.addEventListener("message", onMessage);
      var timer = setInterval(function () {
        if (!popup.closed) return;
        // The callback page posts, then closes itself: give its message a moment to arrive.
        if (closedAt === null) closedAt = Date.now();
        else if (Date.now() - closedAt > 500) finish({ status: "CLOSED" });
      }, 200);
    });
  }

  async function waitForAccounts(connectionId, timeoutMs) {
    var deadline = Date.now() + (timeoutMs || 30000);
    while (Date.now() < deadline) {
      var connections = await api("GET", "/api/connections");
      var found = connections.filter(function (c) { return c.id === connectionId; })[0];
      if (found && found.accounts.every(function (a) { return a.status !== "pending"; })) {
        return found;
      }
      await sleep(250);
    }
    return null;
  }

  async function runFlow(flow) {
    if (activeFlow) return;
    // Opened in the click itself, so popup blockers let it through; pointed at the provider later.
    // A new name each time: a window still closing from the last attempt is never reused.
    var popup = window.open("", "brokerlink-connect-" + Date.now(), "popup=yes,width=520,height=720");
    if (!popup) {
      showProblem(flow, "blocked",
        "Your browser blocked the window for connecting " + flow.label +
        ". Allow pop-ups for this site, then try again.");
      return;
    }
    activeFlow = flow;
    try {
      try {
        popup.document.title = "Connecting " + flow.label;
        popup.document.body.textContent = "Opening " + flow.label + "…";
      } catch (e) { /* not ours to write: fine */ }
      showProgress("Opening " + flow.label + "…");
      var started;
      try {
        started = await flow.start();
      } catch (e) {
        popup.close();
        showProblem(flow, "failed", "Could not start connecting " + flow.label + ": " + e.message);
        return;
      }
      var provider = providerLabel(started.provider);
      showProgress("Connecting " + flow.label + " through " + provider +
        ": finish in the window that opened. " + started.reason + ".");
      popup.location.href = started.url;
      var outcome = await watchPopup(popup);
      // What went wrong in the provider's window, in plain words (static/connect.js).
      var problem = window.brokerlinkConnect.problem(outcome, provider, flow.label);
      if (problem) {
        showProblem(flow, problem.kind, problem.message);
        if (problem.code) $("#flow-status .problem").setAttribute("data-error-code", problem.code);
        return;
      }
      showProgress("Saving the connection to " + flow.label + "…");
      var connection;
      try {
        connection = await api("POST", "/api/connections/complete", {
          state: started.state,
          status: outcome.status,
          connection_id: outcome.connection_id,
        });
      } catch (e) {
        showProblem(flow, "failed", flow.label + " could not be connected: " + e.message);
        return;
      }
      showProgress("Connected. Fetching your " + flow.label + " accounts from " + provider + "…");
      await waitForAccounts(connection.id);
      await flow.done(connection, started);
    } finally {
      activeFlow = null;
    }
  }

  async function showConnected(connection, started) {
    var box = flowBox();
    var head = el("div", { class: "result-head", role: "status" });
    head.appendChild(el("h2", { id: "connected-title", tabindex: "-1" },
      "Connected " + connection.institution + " through " + providerLabel(connection.provider)));
    var monthly = Number(started.monthly_cost || 0);
    head.appendChild(el("p", { class: "small" }, connection.accounts.length + " account" +
      (connection.accounts.length === 1 ? "" : "s") + " found." +
      (monthly > 0 ? " Keeping this connection adds about " + money(monthly, "USD") + " a month." : "")));
    var link = el("a", { href: "/", class: "button" }, "Go to all accounts");
    head.appendChild(link);
    box.appendChild(head);
    try {
      var html = await fetchHtml("/fragments/connections/" + connection.id);
      var holder = el("div", { class: "new-accounts" });
      holder.innerHTML = html; // our own server-rendered, escaped markup
      box.appendChild(holder);
    } catch (e) {
      box.appendChild(el("p", {}, "Your accounts are on the Accounts page."));
    }
    $("#connected-title").focus();
  }

  function initConnect() {
    document.addEventListener("click", function (event) {
      var button = event.target.closest("button.connect");
      if (!button) return;
      var institution = button.getAttribute("data-institution");
      var label = button.getAttribute("data-name") || institution;
      runFlow({
        label: label,
        trigger: button,
        start: function () {
          // No institution: the provider's own search ("Other institution…").
          if (!institution) return api("POST", "/api/connections", { provider_search: true });
          return api("POST", "/api/connections", {
            institution: institution,
            need_trading: button.getAttribute("data-need-trading") === "true",
          });
        },
        done: showConnected,
      });
    });
    document.addEventListener("click", function (event) {
      var button = event.target.closest("button.reconnect");
      if (!button) return;
      var id = button.getAttribute("data-connection-id");
      var label = button.getAttribute("data-institution");
      runFlow({
        label: label,
        trigger: button,
        start: function () { return api("POST", "/api/connections/" + id + "/reconnect"); },
        done: async function () {
          $("#flow-status").hidden = true;
          await rerenderConnections();
          flash(label + " is reconnected.", "ok");
        },
      });
    });
  }

  // -- accounts: refresh, sync all, remove --------------------------------------------------

  async function rerenderConnections() {
    var region = $("#connections");
    if (!region) return;
    var focusedId = document.activeElement && document.activeElement.id;
    var html = await fetchHtml("/fragments/connections");
    region.innerHTML = html; // our own server-rendered, escaped markup
    var sync = $("#sync-all");
    if (sync) sync.disabled = !$(".connection", region);
    if (focusedId) {
      var again = document.getElementById(focusedId);
      if (again) again.focus();
    }
  }

  async function connectionNow(id) {
    var connections = await api("GET", "/api/connections");
    return connections.filter(function (c) { return String(c.id) === String(id); })[0] || null;
  }

  async function waitForConnectionSync(id, before, timeoutMs) {
    var deadline = Date.now() + (timeoutMs || 20000);
    while (Date.now() < deadline) {
      await sleep(250);
      var found = await connectionNow(id);
      if (!found) return;
      if (found.last_synced_at && found.last_synced_at !== before) return;
    }
  }

  function refreshInfo(button) {
    return {
      id: button.getAttribute("data-connection-id"),
      institution: button.getAttribute("data-institution"),
      provider: button.getAttribute("data-provider-label"),
      cost: button.getAttribute("data-cost"),
      hours: button.getAttribute("data-window-hours"),
      nextAt: button.getAttribute("data-next-allowed-at"),
      lastSynced: button.getAttribute("data-last-synced-at"),
    };
  }

  /** A result written where the user acted: the connection's own note, under its buttons. */
  function connectionNote(id, message, kind) {
    var slot = document.getElementById("refresh-note-" + id);
    if (!slot) return null;
    slot.textContent = "";
    if (!message) return slot;
    var box = el("div", { class: "connection-result result-" + (kind || "info"),
      role: kind === "error" ? "alert" : "status" });
    box.appendChild(el("p", {}, message));
    slot.appendChild(box);
    return slot;
  }

  function showRefreshBlocked(button, reason, canOverride, message) {
    var info = refreshInfo(button);
    var slot = connectionNote(info.id, "");
    var box = el("div", { class: "notice refresh-blocked", role: "alert" });
    var when = info.nextAt ? " Next refresh allowed at " + formatWhen(info.nextAt) + "." : "";
    if (canOverride === false || button.getAttribute("data-can-override") === "false") {
      // The provider itself refuses: no override could help, so none is offered.
      box.appendChild(el("p", {}, message || ((reason || info.provider + " is not refreshing " +
        info.institution + " yet") + "." + when + " Nothing was charged.")));
      slot.appendChild(box);
      return;
    }
    box.appendChild(el("p", {}, Number(info.hours) > 0
      ? "Refresh blocked: " + info.provider + " allows one refresh of " + info.institution +
        " every " + info.hours + " hours." + when
      : "Refresh blocked: " + info.provider + " refused to refresh " + info.institution +
        " this soon." + when));
    if (reason) box.appendChild(el("p", { class: "small muted" }, reason));
    var cost = money(info.cost, "USD");
    var override = el("button", { type: "button", class: "button override" },
      "Refresh anyway (" + cost + ")");
    override.addEventListener("click", async function () {
      var ok = await confirmDialog(
        "Refresh " + info.institution + " now for " + cost + "?",
        "Refreshing now costs " + cost + ": " + info.provider + " bills each refresh brokerlink asks for. " +
          "It is free to wait: " + info.provider + " updates " + info.institution +
          " by itself about once a day at no charge" +
          (info.nextAt ? ", and from " + formatWhen(info.nextAt) + " a refresh needs no confirmation (it still costs " + cost + ")." : "."),
        "Refresh for " + cost);
      if (ok) {
        slot.textContent = "";
        await refresh(button, true);
      } else {
        override.focus();
      }
    });
    box.appendChild(override);
    slot.appendChild(box);
  }

  async function refresh(button, override) {
    var info = refreshInfo(button);
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    connectionNote(info.id, "Refreshing " + info.institution + "…");
    try {
      var result = await api("POST", "/api/connections/" + info.id + "/refresh", { override: override });
      connectionNote(info.id, result.accepted
        ? info.provider + " is refreshing " + info.institution + "; syncing…"
        : info.provider + " did not refresh " + info.institution + " (" + (result.detail || "no reason given") + "); syncing what it has…");
      await waitForConnectionSync(info.id, info.lastSynced);
      await rerenderConnections();
      var after = document.getElementById("refresh-" + info.id);
      connectionNote(info.id, info.institution + " refreshed" + (override ? " (billed " + money(info.cost, "USD") + ")" : "") +
        "." + (after && after.getAttribute("data-next-allowed-at")
          ? " Next refresh allowed at " + formatWhen(after.getAttribute("data-next-allowed-at")) + "."
          : ""), "ok");
    } catch (e) {
      button.disabled = false;
      button.removeAttribute("aria-busy");
      if (e.code === "refresh_too_soon") {
        if (e.nextAllowedAt) button.setAttribute("data-next-allowed-at", e.nextAllowedAt);
        if (!e.canOverride) button.setAttribute("data-can-override", "false");
        showRefreshBlocked(button, e.reason, e.canOverride, e.message);
      } else if (e.code === "refresh_not_supported") {
        // The provider can never refresh this institution on demand: stop offering it.
        button.hidden = true;
        connectionNote(info.id, e.message, "info");
      } else if (e.code === "refresh_in_flight") {
        connectionNote(info.id, "A refresh of " + info.institution + " is already on its way; its result will show here.", "info");
      } else {
        connectionNote(info.id, "Could not refresh " + info.institution + ": " + e.message, "error");
      }
    }
  }

  /** What one connection's sync did, in words: from its accounts' status after the sync. */
  function syncOutcome(before, after) {
    if (!after) return { kind: "info", text: "Removed while syncing." };
    var synced = after.last_synced_at && after.last_synced_at !== (before && before.last_synced_at);
    var failed = after.accounts.filter(function (a) { return a.status === "stale" || a.status === "broken"; });
    if (after.status === "broken" || failed.some(function (a) { return a.status === "broken"; })) {
      return { kind: "error", text: after.institution + " needs you to sign in again: use Reconnect." };
    }
    if (failed.length) {
      var why = failed[0].last_error ? " (" + failed[0].last_error + ")" : "";
      return { kind: "error", text: "Sync of " + after.institution + " failed for " + failed.length + " of " +
        after.accounts.length + " account" + (after.accounts.length === 1 ? "" : "s") + why + "; showing the last good data." };
    }
    if (!synced) return { kind: "info", text: after.institution + " was not synced this time; it shows its last sync." };
    return { kind: "ok", text: "Synced " + after.institution + ": " + after.accounts.length + " account" +
      (after.accounts.length === 1 ? "" : "s") + " up to date." };
  }

  /** The "Sync all" summary, beside the button the user pressed. */
  function syncStatusBox(button) {
    var box = $("#sync-summary");
    if (!box) {
      box = el("p", { id: "sync-summary", class: "sync-summary small", role: "status" });
      button.parentNode.appendChild(box);
    }
    box.className = "sync-summary small";
    return box;
  }

  function initAccounts() {
    document.addEventListener("click", function (event) {
      var button = event.target.closest("button.refresh");
      if (!button || button.disabled) return;
      var nextAt = button.getAttribute("data-next-allowed-at");
      if (nextAt && new Date(nextAt) > new Date()) {
        // Inside the cost window: say so and offer the (billed) override, asking nothing yet.
        showRefreshBlocked(button, null, button.getAttribute("data-can-override") !== "false");
        return;
      }
      refresh(button, false);
    });

    document.addEventListener("click", async function (event) {
      var button = event.target.closest("button.remove");
      if (!button) return;
      var id = button.getAttribute("data-connection-id");
      var name = button.getAttribute("data-institution");
      var ok = await confirmDialog("Remove " + name + "?",
        "This disconnects " + name + " at " + button.getAttribute("data-provider-label") +
        " (ending its monthly cost) and removes its accounts from brokerlink.", "Remove " + name, true);
      if (!ok) { button.focus(); return; }
      try {
        await api("DELETE", "/api/connections/" + id);
        await rerenderConnections();
        flash(name + " was removed.", "ok");
        var main = $("#main");
        if (main) main.focus();
      } catch (e) {
        flash("Could not remove " + name + ": " + e.message, "error");
      }
    });

    var sync = $("#sync-all");
    if (sync) {
      sync.addEventListener("click", async function () {
        sync.disabled = true;
        sync.setAttribute("aria-busy", "true");
        var status = syncStatusBox(sync);
        status.textContent = "Syncing every connection…";
        try {
          var before = await api("GET", "/api/connections");
          await api("POST", "/api/sync");
          var deadline = Date.now() + 60000;
          while (Date.now() < deadline) {
            await sleep(250);
            var now = await api("GET", "/api/sync");
            if (now.status !== "running") break;
          }
          var after = await api("GET", "/api/connections");
          await rerenderConnections();
          var problems = 0;
          // Manual entries are typed in by the person: nothing syncs them, nothing is counted.
          var synced = after.filter(function (c) { return c.provider !== "manual"; });
          synced.forEach(function (c) {
            var outcome = syncOutcome(before.filter(function (b) { return b.id === c.id; })[0], c);
            if (outcome.kind === "error") problems += 1;
            connectionNote(c.id, outcome.text, outcome.kind);
          });
          status.textContent = "Synced " + synced.length + " connection" + (synced.length === 1 ? "" : "s") +
            (problems ? "; " + problems + " with a problem (see below)." : ": all up to date.");
          status.className = "sync-summary small " + (problems ? "result-error" : "result-ok");
        } catch (e) {
          status.textContent = "Could not sync: " + e.message;
          status.className = "sync-summary small result-error";
        } finally {
          sync.disabled = !$(".connection");
          sync.removeAttribute("aria-busy");
        }
      });
    }
  }

  // -- the order ticket -------------------------------------------------------------------

  var FINAL = ["filled", "canceled", "rejected", "expired"];

  function orderBody(form) {
    var body = {
      side: form.elements.side.value,
      symbol: form.elements.symbol.value.trim().toUpperCase(),
      order_type: form.elements.order_type.value,
      time_in_force: form.elements.time_in_force.value,
      quantity: form.elements.quantity.value,
    };
    if (body.order_type === "limit") body.limit_price = form.elements.limit_price.value;
    return body;
  }

  function describeOrder(order) {
    return (order.side ? order.side.charAt(0).toUpperCase() + order.side.slice(1) + " " : "") +
      (order.quantity ? Number(order.quantity) + " " : "") + (order.symbol || "") +
      " · " + order.status.replace("_", " ");
  }

  function orderItem(ticket, account, order) {
    var item = el("li", { "data-order-id": order.order_id, "data-status": order.status });
    item.appendChild(el("span", { class: "order-line" }, describeOrder(order)));
    if (order.placed_at) item.appendChild(el("span", { class: "muted small" }, formatWhen(order.placed_at)));
    if (FINAL.indexOf(order.status) < 0) {
      var cancel = el("button", { type: "button", class: "button subtle cancel-order" }, "Cancel");
      cancel.setAttribute("aria-label", "Cancel order " + describeOrder(order));
      cancel.addEventListener("click", async function () {
        cancel.disabled = true;
        try {
          var after = await api("DELETE", "/api/accounts/" + account + "/orders/" + encodeURIComponent(order.order_id));
          $(".order-status", ticket).textContent = "Order " + describeOrder(after) + ".";
        } catch (e) {
          orderStatus(ticket, "Could not cancel: " + e.message, true);
        }
        await loadOrders(ticket);
      });
      item.appendChild(cancel);
    }
    return item;
  }

  /** The broker's recent orders; `placed` (just answered by the broker) is shown even if the
   * broker's list does not carry it yet. */
  async function loadOrders(ticket, placed) {
    var list = $(".order-list", ticket);
    var account = ticket.getAttribute("data-account-id");
    try {
      var orders = await api("GET", "/api/accounts/" + account + "/orders");
      if (placed && !orders.some(function (o) { return o.order_id === placed.order_id; })) {
        orders.unshift(placed);
      }
      list.textContent = "";
      if (!orders.length) list.appendChild(el("li", { class: "muted small" }, "No orders yet."));
      orders.slice(0, 10).forEach(function (order) {
        list.appendChild(orderItem(ticket, account, order));
      });
    } catch (e) {
      list.textContent = "";
      list.appendChild(el("li", { class: "problem-text small" }, "Could not load orders: " + e.message));
    }
  }

  function showPreview(ticket, form, body, preview) {
    var box = $(".order-preview", ticket);
    box.textContent = "";
    box.appendChild(el("h4", { tabindex: "-1", class: "preview-title" }, "Review your order"));
    var dl = el("dl", {});
    function row(term, value) {
      dl.appendChild(el("dt", {}, term));
      dl.appendChild(el("dd", {}, value));
    }
    var currency = preview.currency || "USD";
    var qty = Number(preview.quantity || body.quantity);
    row("Order", (body.side === "buy" ? "Buy " : "Sell ") + qty + " " + (preview.symbol || body.symbol));
    row("Type", body.order_type === "limit" ? "Limit at " + money(body.limit_price, currency) : "Market");
    row("Estimated price", money(preview.price, currency));
    if (preview.price !== null && preview.price !== undefined) {
      row("Estimated " + (body.side === "buy" ? "cost" : "proceeds"), money(Number(preview.price) * qty, currency));
    }
    row("Commission", money(preview.estimated_commission, currency));
    if (preview.remaining_cash !== null && preview.remaining_cash !== undefined) {
      row("Cash after", money(preview.remaining_cash, currency));
    }
    box.appendChild(dl);
    var warning = previewWarning(body, preview, qty, currency);
    if (warning) {
      box.appendChild(el("p", { class: "problem-text order-warning", role: "alert" }, warning));
    }
    var actions = el("div", { class: "actions" });
    var place = el("button", { type: "button", class: "button primary place-order" }, "Place order");
    // What the broker's own check says will fail is not offered for placing.
    place.disabled = Boolean(warning);
    var change = el("button", { type: "button", class: "button subtle" }, "Change");
    var key = newKey(); // one order per preview, however often "Place order" is pressed
    place.addEventListener("click", async function () {
      place.disabled = true;
      place.setAttribute("aria-busy", "true");
      var status = orderStatus(ticket, "Placing…");
      try {
        var order = await api("POST", "/api/accounts/" + ticket.getAttribute("data-account-id") + "/orders",
          body, { "Idempotency-Key": key });
        box.hidden = true;
        form.hidden = false;
        form.reset();
        syncLimitField(form);
        orderStatus(ticket, "Order placed: " + describeOrder(order) + ".");
        status.setAttribute("data-order-id", order.order_id);
        await loadOrders(ticket, order);
        if (order.status === "filled" || order.status === "partially_filled") {
          await refreshAccountAfterFill(ticket);
        }
      } catch (e) {
        // The same key is kept where the outcome is open, so pressing again can never place a
        // second order: it asks how the first one ended.
        if (e.code === "order_in_flight") {
          status.textContent = "The order is still being placed. Press Place order again in a moment to see how it ended.";
        } else if (e.code === "order_in_doubt") {
          status.textContent = "The order was sent but the broker's answer was lost, so it may have been placed. " +
            "Press Place order again to check with the broker (it will not be placed twice).";
        } else if (e.code === "order_not_placed") {
          orderStatus(ticket, "The broker has no record of this order: nothing was placed. You can place it again.", true);
          key = newKey();
        } else {
          orderStatus(ticket, "The order was not placed: " + e.message, true);
          key = newKey();
        }
        place.disabled = false;
        place.removeAttribute("aria-busy");
      }
    });
    change.addEventListener("click", function () {
      box.hidden = true;
      form.hidden = false;
      form.elements.symbol.focus();
    });
    actions.appendChild(place);
    actions.appendChild(change);
    box.appendChild(actions);
    form.hidden = true;
    box.hidden = false;
    $(".preview-title", box).focus();
  }

  /** Why the previewed order would be refused, from the broker's order check (cash after the
   * trade) and, for a sell, the quantity held; null when nothing stands in the way. */
  function previewWarning(body, preview, qty, currency) {
    var remaining = Number(preview.remaining_cash);
    if (body.side === "buy" && preview.remaining_cash !== null && preview.remaining_cash !== undefined && remaining < 0) {
      return "Not enough buying power: this order needs " + money(-remaining, currency) +
        " more than the account's cash, so the broker would refuse it. Lower the quantity.";
    }
    if (body.side === "sell" && preview.held !== undefined && qty > preview.held) {
      return "You hold " + preview.held + " " + (preview.symbol || body.symbol) +
        " in this account, so the broker would refuse selling " + qty + ".";
    }
    return null;
  }

  /** Shares of `symbol` the account holds, from its last sync. */
  async function heldQuantity(account, symbol) {
    var positions = await api("GET", "/api/accounts/" + account + "/positions");
    return positions
      .filter(function (p) { return (p.ticker || "").toUpperCase() === symbol.toUpperCase(); })
      .reduce(function (sum, p) { return sum + Number(p.quantity); }, 0);
  }

  /** Errors look like errors; progress and results do not. */
  function orderStatus(ticket, message, isError) {
    var status = $(".order-status", ticket);
    status.textContent = message;
    status.classList.toggle("problem-text", Boolean(isError));
    status.setAttribute("role", isError ? "alert" : "status");
    return status;
  }

  /** After a fill the broker's cash and positions changed: sync, then redraw the balances. */
  async function refreshAccountAfterFill(ticket) {
    var account = ticket.getAttribute("data-account-id");
    try {
      await api("POST", "/api/sync");
      var deadline = Date.now() + 30000;
      while (Date.now() < deadline) {
        await sleep(250);
        if ((await api("GET", "/api/sync")).status !== "running") break;
      }
      var holder = el("div", {});
      holder.innerHTML = await fetchHtml("/fragments/connections"); // our own escaped markup
      var fresh = $("#account-" + account + " .balances", holder);
      var card = document.getElementById("account-" + account);
      var old = card && $(".balances", card);
      if (fresh && old) old.replaceWith(fresh);
    } catch (e) { /* the balances update at the next sync */ }
  }

  function syncLimitField(form) {
    var limit = $(".limit-field", form);
    var isLimit = form.elements.order_type.value === "limit";
    limit.hidden = !isLimit;
    form.elements.limit_price.required = isLimit;
  }

  function initTickets() {
    document.addEventListener("click", function (event) {
      var toggle = event.target.closest("button.ticket-toggle");
      if (!toggle) return;
      var ticket = toggle.closest(".ticket");
      var body = document.getElementById(toggle.getAttribute("aria-controls"));
      var open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      toggle.textContent = open ? "Close ticket" : "Trade";
      body.hidden = !open;
      if (open) {
        loadOrders(ticket);
        var symbol = $("input[name=symbol]", body);
        if (symbol) symbol.focus();
      }
    });
    document.addEventListener("change", function (event) {
      if (event.target.name === "order_type" && event.target.form && event.target.form.classList.contains("order-form")) {
        syncLimitField(event.target.form);
      }
    });
    document.addEventListener("submit", async function (event) {
      var form = event.target;
      if (!form.classList || !form.classList.contains("order-form")) return;
      event.preventDefault();
      var ticket = form.closest(".ticket");
      var status = $(".order-status", ticket);
      var body = orderBody(form);
      var button = $("button[type=submit]", form);
      button.disabled = true;
      status.textContent = "Checking the order with the broker…";
      try {
        var account = ticket.getAttribute("data-account-id");
        var preview = await api("POST", "/api/accounts/" + account + "/orders/preview", body);
        if (body.side === "sell") {
          preview = Object.assign({}, preview, { held: await heldQuantity(account, preview.symbol || body.symbol) });
        }
        orderStatus(ticket, "");
        showPreview(ticket, form, body, preview);
      } catch (e) {
        orderStatus(ticket, "Could not preview the order: " + e.message, true);
      } finally {
        button.disabled = false;
      }
    });
  }

  // -- portfolio: duplicated accounts -------------------------------------------------------

  function initDuplicates() {
    document.addEventListener("click", async function (event) {
      var button = event.target.closest("button.keep-account");
      if (!button) return;
      button.disabled = true;
      try {
        await api("PUT", "/api/duplicates/preference", {
          keep_account_id: Number(button.getAttribute("data-account-id")),
        });
        flashAfterReload(
          "Now counting the " + button.getAttribute("data-label") + ". Total value: " +
            button.getAttribute("data-total-after") + ".",
          "ok"
        );
        location.reload();
      } catch (e) {
        button.disabled = false;
        flash("Could not change the duplicated account: " + e.message, "error");
      }
    });
  }

  // What the feature scripts loaded after this one (manual.js) share instead of copying.
  window.brokerlink = Object.freeze({ $: $, el: el, money: money, api: api, ApiError: ApiError });

  showStoredFlash();
  initLogin();
  initSignOut();
  initConnect();
  initAccounts();
  initTickets();
  initDuplicates();
})();
