/* flask-apikeys pages: small progressive enhancements. Everything works without this file. */
(function () {
  "use strict";

  // Copy buttons: shown only when the Clipboard API is there; select the text otherwise.
  document.querySelectorAll("[data-ak-copy-target]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-ak-copy-target"));
    var status = button.closest("[data-ak-copy]").querySelector(".ak-copy-status");
    if (!target) return;
    button.hidden = false;
    var label = button.innerHTML;
    button.addEventListener("click", function () {
      var done = function (ok) {
        if (ok) {
          button.setAttribute("data-copied", "");
          button.textContent = "Copied";
          if (status) status.textContent = "Copied to the clipboard.";
        } else {
          target.focus();
          target.select();
          if (status) status.textContent = "Press Ctrl+C or Cmd+C to copy.";
        }
        window.setTimeout(function () {
          button.removeAttribute("data-copied");
          button.innerHTML = label;
        }, 2000);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(target.value).then(function () { done(true); }, function () { done(false); });
      } else {
        target.select();
        var ok = false;
        try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
        done(ok);
      }
    });
    target.addEventListener("focus", function () { target.select(); });
  });

  // Create form: Read-only / Full access shortcuts tick the grid; custom expiry date.
  var form = document.querySelector("[data-ak-create]");
  if (!form) return;
  form.setAttribute("data-ak-enhanced", "");
  var boxes = Array.prototype.slice.call(form.querySelectorAll("[data-ak-scope]"));
  var accessRadios = Array.prototype.slice.call(form.querySelectorAll("[data-ak-access]"));
  var setAccess = function (value) {
    accessRadios.forEach(function (r) { r.checked = r.value === value; });
  };
  var applyAccess = function (value) {
    if (value === "read" || value === "full") {
      boxes.forEach(function (box) {
        if (box.disabled) return;
        box.checked = value === "full" || box.getAttribute("data-read") === "true";
      });
    }
  };
  accessRadios.forEach(function (radio) {
    radio.addEventListener("change", function () { if (radio.checked) applyAccess(radio.value); });
  });
  boxes.forEach(function (box) {
    box.addEventListener("change", function () { setAccess("custom"); });
  });

  var org = form.querySelector("[data-ak-org]");
  if (org) {
    org.addEventListener("change", function () {
      boxes.forEach(function (box) {
        var allowed = (" " + box.getAttribute("data-orgs") + " ").indexOf(" " + org.value + " ") !== -1;
        box.disabled = !allowed;
        if (!allowed) box.checked = false;
        box.closest(".ak-perm").classList.toggle("ak-perm-disabled", !allowed);
        var why = box.closest(".ak-perm").querySelector(".ak-why");
        if (why) why.hidden = allowed;
      });
      var checked = accessRadios.filter(function (r) { return r.checked; })[0];
      if (checked) applyAccess(checked.value);
    });
  }

  var custom = form.querySelector("[data-ak-custom-date]");
  var expiryRadios = Array.prototype.slice.call(form.querySelectorAll("[data-ak-expiry]"));
  var syncExpiry = function () {
    var chosen = expiryRadios.filter(function (r) { return r.checked; })[0];
    if (custom) custom.hidden = !(chosen && chosen.value === "custom");
  };
  expiryRadios.forEach(function (r) { r.addEventListener("change", syncExpiry); });
  syncExpiry();
})();
