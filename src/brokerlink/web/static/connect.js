/* brokerlink web app: what a provider's connection window reported, in plain words.
 *
 * The popup comes back to /connect/callback with a status (SUCCESS, CANCELLED, EXITED, ERROR)
 * and, on failure, the provider's error code. Codes stay codes for programs; people read the
 * sentence. Loaded before app.js, which calls window.brokerlinkConnect.problem().
 */
(function () {
  "use strict";

  // Plaid's error codes (Hosted Link exits) and SnapTrade's portal codes, by what they mean
  // for the person: pick another way in, wait and retry, or check what they typed.
  var WORDS = {
    PRODUCTS_NOT_SUPPORTED: function (l, p) {
      return l + " can't share these accounts through " + p + ". Nothing was connected.";
    },
    INSTITUTION_NOT_SUPPORTED: function (l, p) {
      return p + " doesn't support " + l + " right now. Nothing was connected.";
    },
    INVALID_INSTITUTION: function (l, p) {
      return p + " doesn't know " + l + ". Nothing was connected.";
    },
    INSTITUTION_DOWN: function (l) {
      return l + " isn't responding right now. Nothing was connected; try again in a few minutes.";
    },
    INSTITUTION_NOT_RESPONDING: function (l) {
      return l + " isn't responding right now. Nothing was connected; try again in a few minutes.";
    },
    INSTITUTION_NOT_AVAILABLE: function (l) {
      return l + " isn't available right now. Nothing was connected; try again later.";
    },
    ITEM_LOCKED: function (l) {
      return "Your " + l + " login is locked. Unlock it at " + l + ", then try again.";
    },
    USER_SETUP_REQUIRED: function (l) {
      return "Your " + l + " login needs attention at " + l + " first (sign in there), then try again.";
    },
    "1012": function (l, p) {
      return p + " couldn't connect " + l + " (the brokerage may be in maintenance). " +
        "Nothing was connected; try again later.";
    },
  };

  /** The sentence for a flow that came back without a connection, or null when it succeeded. */
  function problem(outcome, provider, label) {
    var status = outcome.status;
    if (status === "SUCCESS" || status === "SUCCEEDED") return null;
    if (status === "CLOSED") {
      return { kind: "cancelled", message: "The " + provider + " window was closed before " +
        label + " was connected. Nothing was connected." };
    }
    var code = outcome.error_code ? String(outcome.error_code).toUpperCase() : null;
    if (!code && (status === "CANCELLED" || status === "CANCELED" || status === "ABANDONED")) {
      return { kind: "cancelled", message: "Connecting " + label + " was cancelled in " +
        provider + ". Nothing was connected." };
    }
    var words = code && WORDS[code];
    var message = words ? words(label, provider)
      : provider + " could not connect " + label + ". Nothing was connected.";
    return { kind: "failed", code: code, message: message };
  }

  window.brokerlinkConnect = { problem: problem };
})();
