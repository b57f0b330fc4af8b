/* flask-apikeys: choosing a key's resources. Everything works without this file. */
(function () {
  "use strict";
  document.querySelectorAll("[data-ak-resources]").forEach(function (box) {
    // Ticking a resource means "only these"; choosing "all" unticks them.
    box.querySelectorAll("[data-ak-resource-group]").forEach(function (group) {
      var modes = Array.prototype.slice.call(group.querySelectorAll("[data-ak-resource-mode]"));
      var items = Array.prototype.slice.call(group.querySelectorAll("[data-ak-resource]"));
      items.forEach(function (item) {
        item.addEventListener("change", function () {
          if (item.checked) modes.forEach(function (m) { m.checked = m.value === "only"; });
        });
      });
      modes.forEach(function (mode) {
        mode.addEventListener("change", function () {
          if (mode.checked && mode.value === "all") items.forEach(function (i) { i.checked = false; });
        });
      });
    });
    // With several organizations, only the chosen one's lists are shown and sent.
    var form = box.closest("form");
    var org = form && form.querySelector("[data-ak-org]");
    if (!org) return;
    var groups = Array.prototype.slice.call(box.querySelectorAll("[data-ak-resource-org]"));
    var sync = function () {
      groups.forEach(function (g) {
        var shown = g.getAttribute("data-ak-resource-org") === org.value;
        g.hidden = !shown;
        g.disabled = !shown;
      });
    };
    org.addEventListener("change", sync);
    sync();
  });
})();
