// Airlock admin: progressive enhancement only; every page works without this file.
// It never reads package values into code: it only wires up existing form controls.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Filters apply as soon as a select changes.
  document.querySelectorAll("form.filters select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  // "/" focuses the package search, like most code hosts.
  document.addEventListener("keydown", function (event) {
    var search = document.querySelector("form.filters input[type=search]");
    var typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
    if (event.key === "/" && search && !typing) {
      event.preventDefault();
      search.focus();
    }
  });
});
