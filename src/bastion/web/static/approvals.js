// Keeps the approvals queue current without reloading: polls the server-rendered cards and adds
// or removes whole cards, leaving the ones on screen (and any reason being typed) untouched.
(function () {
  "use strict";
  var queue = document.getElementById("queue");
  if (!queue) { return; }
  var empty = document.getElementById("queue-empty");
  var state = document.getElementById("queue-state");
  var source = queue.getAttribute("data-source");
  var INTERVAL_MS = 1500;

  function cardsOf(root) {
    var found = {};
    root.querySelectorAll("[data-approval]").forEach(function (card) {
      found[card.getAttribute("data-approval")] = card;
    });
    return found;
  }

  function merge(html) {
    var fresh = document.createElement("template");
    fresh.innerHTML = html;  // server-rendered with every value HTML-escaped
    var incoming = cardsOf(fresh.content);
    var present = cardsOf(queue);
    Object.keys(present).forEach(function (id) {
      if (!incoming[id]) { present[id].remove(); }
    });
    Object.keys(incoming).forEach(function (id) {
      if (!present[id]) { queue.appendChild(document.importNode(incoming[id], true)); }
    });
    if (empty) { empty.hidden = Object.keys(incoming).length > 0; }
  }

  function poll() {
    fetch(source, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        if (html !== null) { merge(html); }
        if (state) { state.textContent = ""; }
      })
      .catch(function () {
        if (state) { state.textContent = "(cannot reach the gateway; retrying)"; }
      })
      .finally(function () { window.setTimeout(poll, INTERVAL_MS); });
  }

  window.setTimeout(poll, INTERVAL_MS);
})();
