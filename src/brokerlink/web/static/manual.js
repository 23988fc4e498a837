/* brokerlink web app: manual accounts and positions on the accounts page.
 *
 * Lists each manual account's entries (type, quantity, price, value) with Edit and Delete, and
 * one dialog to add or edit an entry: type, quantity, a unit price or a total value, currency,
 * and the account (the default manual account, another of the user's own, or a new one). A
 * second entry for a ticker the account already holds asks whether to add to it or replace it
 * (the API refuses it with `manual_position_exists` until one is chosen).
 */
(function () {
  "use strict";

  var shared = window.brokerlink;  // app.js, loaded first
  var $ = shared.$;
  var el = shared.el;
  var money = shared.money;
  var api = shared.api;
  var TYPES = {
    equity: "Stock", etf: "ETF", mutual_fund: "Mutual fund", bond: "Bond", crypto: "Crypto",
    cash: "Cash", option: "Option", other: "Other",
  };

  function quantity(value) {
    var text = Number(value).toLocaleString("en-US", { maximumFractionDigits: 8 });
    return text;
  }

  var entries = [];

  function describe(p) {
    if (p.type === "cash") return money(p.quantity, p.currency) + " cash";
    var line = quantity(p.quantity) + " × " + money(p.price, p.currency);
    if (p.type === "option") line += " × 100 shares";
    return line + " = " + money(p.market_value, p.currency);
  }

  function renderAccount(box) {
    var id = Number(box.getAttribute("data-account-id"));
    var list = box.querySelector("ul.manual-list");
    if (list) list.remove();
    list = el("ul", { class: "manual-list", "aria-label": "Entries in " + box.getAttribute("data-account-name") });
    entries.filter(function (p) { return p.account_id === id; }).forEach(function (p) {
      var item = el("li", { class: "manual-entry", "data-position-id": String(p.id), "data-ticker": p.ticker });
      var what = el("span", { class: "manual-what" });
      what.appendChild(el("strong", {}, p.type === "cash" ? p.currency + " cash" : p.ticker));
      what.appendChild(el("span", { class: "muted small" }, " " + (TYPES[p.type] || p.type)));
      item.appendChild(what);
      item.appendChild(el("span", { class: "manual-figures" }, describe(p)));
      var actions = el("span", { class: "manual-actions" });
      var edit = el("button", { type: "button", class: "button subtle manual-edit", "data-position-id": String(p.id) }, "Edit");
      edit.setAttribute("aria-label", "Edit " + p.ticker);
      var del = el("button", { type: "button", class: "button subtle manual-delete", "data-position-id": String(p.id) }, "Delete");
      del.setAttribute("aria-label", "Delete " + p.ticker);
      actions.appendChild(edit);
      actions.appendChild(del);
      item.appendChild(actions);
      list.appendChild(item);
    });
    box.insertBefore(list, box.firstChild);
  }

  function renderAll() {
    document.querySelectorAll(".manual-entries").forEach(renderAccount);
  }

  async function load() {
    if (!document.querySelector(".manual-entries")) return;
    entries = await api("GET", "/api/manual-positions");
    renderAll();
  }

  function manualAccounts() {
    return Array.prototype.map.call(document.querySelectorAll(".manual-entries"), function (box) {
      return { id: box.getAttribute("data-account-id"), name: box.getAttribute("data-account-name") };
    });
  }

  function showError(text) {
    var box = $("#manual-error");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function openDialog(accountId, position) {
    var dialog = $("#manual-dialog");
    var form = $("#manual-form");
    form.reset();
    showError("");
    $("#manual-existing").hidden = true;
    var select = $("#manual-account");
    select.querySelectorAll("option[data-own]").forEach(function (o) { o.remove(); });
    var newOption = select.querySelector('option[value="new"]');
    manualAccounts().forEach(function (a) {
      var option = el("option", { value: a.id, "data-own": "1" }, a.name);
      select.insertBefore(option, newOption);
    });
    var fallback = select.querySelector('option[value=""]');
    fallback.hidden = manualAccounts().length > 0;
    select.value = accountId || (manualAccounts()[0] || { id: "" }).id;
    $("#manual-new-account").hidden = true;
    form.elements.position_id.value = position ? String(position.id) : "";
    $("#manual-title").textContent = position ? "Edit " + position.ticker : "Add a manual entry";
    $("#manual-account-field").hidden = Boolean(position);
    $("#manual-ticker").disabled = Boolean(position);
    $("#manual-currency").disabled = Boolean(position);
    if (position) {
      form.elements.ticker.value = position.ticker;
      form.elements.kind.value = position.type in TYPES ? position.type : "other";
      form.elements.quantity.value = position.quantity;
      form.elements.amount.value = position.price === null ? "" : position.price;
      form.elements.currency.value = position.currency;
    }
    dialog.showModal();
    (position ? $("#manual-quantity") : $("#manual-ticker")).focus();
  }

  function body(form) {
    var amount = form.elements.amount.value.trim();
    var mode = form.querySelector('input[name="price_mode"]:checked').value;
    var out = {
      quantity: form.elements.quantity.value.trim(),
      kind: form.elements.kind.value,
    };
    if (amount) out[mode] = amount;
    return out;
  }

  function askExisting(form, error, payload) {
    var box = $("#manual-existing");
    box.textContent = "";
    box.appendChild(el("p", {}, "This account already has " + payload.ticker + " entered by hand. " +
      "Add " + payload.quantity + " to it, or replace it?"));
    var add = el("button", { type: "button", class: "button primary", id: "manual-existing-add" }, "Add to it");
    var replace = el("button", { type: "button", class: "button", id: "manual-existing-replace" }, "Replace it");
    add.addEventListener("click", function () { save(form, "add"); });
    replace.addEventListener("click", function () { save(form, "replace"); });
    var actions = el("div", { class: "actions" });
    actions.appendChild(add);
    actions.appendChild(replace);
    box.appendChild(actions);
    box.hidden = false;
  }

  async function save(form, onExisting) {
    showError("");
    var payload = body(form);
    if (!payload.kind) { showError("Choose a type."); return; }
    if (!payload.quantity) { showError("Enter a quantity."); return; }
    var button = $("#manual-save");
    button.disabled = true;
    try {
      var positionId = form.elements.position_id.value;
      if (positionId) {
        await api("PATCH", "/api/manual-positions/" + positionId, payload);
      } else {
        payload.ticker = form.elements.ticker.value.trim();
        payload.currency = form.elements.currency.value.trim().toUpperCase();
        if (!payload.ticker && payload.kind !== "cash") { showError("Enter a ticker or a name."); return; }
        if (!payload.ticker) payload.ticker = payload.currency;
        var account = form.elements.account_id.value;
        if (account === "new") {
          var name = form.elements.account_name.value.trim();
          if (!name) { showError("Name the new account."); return; }
          var created = await api("POST", "/api/manual-accounts", { name: name, currency: payload.currency });
          account = String(created.id);
          form.elements.account_id.appendChild(el("option", { value: account, "data-own": "1" }, name));
          form.elements.account_id.value = account;
          $("#manual-new-account").hidden = true;
        }
        if (account) payload.account_id = Number(account);
        if (onExisting) payload.on_existing = onExisting;
        await api("POST", "/api/manual-positions", payload);
      }
      $("#manual-dialog").close();
      location.reload();
    } catch (e) {
      if (e.code === "manual_position_exists") {
        askExisting(form, e, payload);
      } else {
        showError("Could not save the entry: " + e.message);
      }
    } finally {
      button.disabled = false;
    }
  }

  function init() {
    var form = $("#manual-form");
    if (!form) return;
    document.addEventListener("click", async function (event) {
      var add = event.target.closest("button.manual-add");
      if (add) { openDialog(add.getAttribute("data-account-id"), null); return; }
      var edit = event.target.closest("button.manual-edit");
      if (edit) {
        var id = Number(edit.getAttribute("data-position-id"));
        openDialog(null, entries.filter(function (p) { return p.id === id; })[0]);
        return;
      }
      var del = event.target.closest("button.manual-delete");
      if (del) {
        del.disabled = true;
        try {
          await api("DELETE", "/api/manual-positions/" + del.getAttribute("data-position-id"));
          location.reload();
        } catch (e) {
          del.disabled = false;
          del.closest(".manual-entries").appendChild(el("p", { class: "problem-text" }, "Could not delete: " + e.message));
        }
      }
    });
    $("#manual-account").addEventListener("change", function (event) {
      $("#manual-new-account").hidden = event.target.value !== "new";
    });
    $("#manual-cancel").addEventListener("click", function () { $("#manual-dialog").close(); });
    form.addEventListener("input", function () { $("#manual-existing").hidden = true; });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      save(form, null);
    });
    var connections = $("#connections");
    if (connections && typeof MutationObserver === "function") {
      // The accounts are re-rendered after a sync: list the entries again.
      new MutationObserver(function () {
        if (document.querySelector(".manual-entries:not(:has(ul.manual-list))")) renderAll();
      }).observe(connections, { childList: true });
    }
    load().catch(function (e) { showError("Could not load the manual entries: " + e.message); });
  }

  init();
})();
