// fairshelf console: progressive enhancement only; every page works without it.
// Part of fairshelf, Apache-2.0 (see LICENSE.md in this folder).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Keyboard users land on the first field the server refused, or on the alert.
  var bad = document.querySelector('[aria-invalid="true"]');
  var alert = document.querySelector('[role="alert"]');
  if (bad) { bad.focus(); } else if (alert) { alert.setAttribute("tabindex", "-1"); alert.focus(); }
  // A restore asks once before it creates a new version.
  document.querySelectorAll('form[action$="/guardrails/rollback"]').forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var v = form.querySelector('input[name="version"]').value;
      if (!window.confirm("Restore the guardrails of version " + v + " as a new version?")) {
        event.preventDefault();
      }
    });
  });
});
