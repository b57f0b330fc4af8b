/* flask-apikeys pages: small progressive enhancements. Everything works without this file. */
(function () {
  "use strict";

  var toArray = function (list) { return Array.prototype.slice.call(list); };

  // Copy buttons: shown only when the Clipboard API is there; select the text otherwise.
  toArray(document.querySelectorAll("[data-ak-copy-target]")).forEach(function (button) {
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

  // Read-only boxes (the key, the snippets) as tall as their wrapped text, where the
  // browser cannot do it with `field-sizing: content`.
  var fits = window.CSS && CSS.supports && CSS.supports("field-sizing", "content");
  var boxes = toArray(document.querySelectorAll("[data-ak-autosize]"));
  var autosize = function () {
    boxes.forEach(function (box) {
      box.style.height = "auto";
      box.style.height = box.scrollHeight + 2 + "px";
    });
  };
  if (!fits && boxes.length) {
    autosize();
    window.addEventListener("resize", autosize);
  }

  // Snippet tabs (the show-once page): <details>, one open at a time, without this
  // script; with it, ARIA tabs (arrows, Home and End move between them), and the tab
  // last chosen is chosen again next time.
  toArray(document.querySelectorAll("[data-ak-tabs]")).forEach(function (box) {
    var panels = toArray(box.children).filter(function (el) { return el.matches("details[data-ak-tab]"); });
    if (panels.length < 2) return;
    var list = document.createElement("div");
    list.className = "ak-tablist";
    list.setAttribute("role", "tablist");
    list.setAttribute("aria-label", "Languages and clients");
    var tabs = [];
    var bodies = [];
    panels.forEach(function (details) {
      var body = details.querySelector(".ak-tab-body");
      var tab = document.createElement("button");
      tab.type = "button";
      tab.id = body.id + "-tab";
      tab.className = "ak-tab-button";
      tab.textContent = details.querySelector("summary").textContent;
      tab.setAttribute("role", "tab");
      tab.setAttribute("aria-controls", body.id);
      tab.setAttribute("data-ak-tab", details.getAttribute("data-ak-tab"));
      body.setAttribute("role", "tabpanel");
      body.setAttribute("aria-labelledby", tab.id);
      body.tabIndex = 0;
      list.appendChild(tab);
      tabs.push(tab);
      bodies.push(body);
    });
    var remembered = null;
    try { remembered = window.localStorage.getItem("ak-snippet-tab"); } catch (e) { remembered = null; }
    var select = function (n, byUser) {
      tabs.forEach(function (tab, i) {
        tab.setAttribute("aria-selected", i === n ? "true" : "false");
        tab.tabIndex = i === n ? 0 : -1;
        bodies[i].hidden = i !== n;
      });
      if (!fits) autosize();
      if (byUser) {
        tabs[n].focus();
        try { window.localStorage.setItem("ak-snippet-tab", tabs[n].getAttribute("data-ak-tab")); } catch (e) { /* private mode */ }
      }
    };
    tabs.forEach(function (tab, i) {
      tab.addEventListener("click", function () { select(i, true); });
      tab.addEventListener("keydown", function (event) {
        var to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[event.key];
        if (to === undefined) return;
        event.preventDefault();
        select((to + tabs.length) % tabs.length, true);
      });
    });
    box.insertBefore(list, panels[0]);
    bodies.forEach(function (body) { box.appendChild(body); });
    panels.forEach(function (details) { box.removeChild(details); });
    var first = 0;
    tabs.forEach(function (tab, i) { if (tab.getAttribute("data-ak-tab") === remembered) first = i; });
    select(first, false);
    box.setAttribute("data-ak-tabs-on", "");
  });

  // Row menus (<details>): one open at a time; Escape or a click elsewhere closes them.
  var menus = toArray(document.querySelectorAll("[data-ak-menu]"));
  var closeMenus = function (except) {
    menus.forEach(function (menu) { if (menu !== except) menu.open = false; });
  };
  menus.forEach(function (menu) {
    menu.addEventListener("toggle", function () { if (menu.open) closeMenus(menu); });
    menu.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && menu.open) {
        menu.open = false;
        menu.querySelector("summary").focus();
      }
    });
  });
  if (menus.length) {
    document.addEventListener("click", function (event) {
      if (!event.target.closest || !event.target.closest("[data-ak-menu]")) closeMenus(null);
    });
  }

  var form = document.querySelector("[data-ak-create]");
  if (form) enhanceCreateForm(form);

  // Create form: Read-only / Full access shortcuts tick the grid; the custom date field;
  // the chosen expiry's date; error messages that go away once the field is fixed.
  function enhanceCreateForm(form) {
    form.setAttribute("data-ak-enhanced", "");
    var scopes = toArray(form.querySelectorAll("[data-ak-scope]"));
    var accessRadios = toArray(form.querySelectorAll("[data-ak-access]"));
    var checked = function (radios) { return radios.filter(function (r) { return r.checked; })[0]; };
    var setAccess = function (value) {
      accessRadios.forEach(function (r) { r.checked = r.value === value; });
    };
    var applyAccess = function (value) {
      if (value === "read" || value === "full") {
        scopes.forEach(function (box) {
          if (box.disabled) return;
          box.checked = value === "full" || box.getAttribute("data-read") === "true";
        });
      }
    };
    accessRadios.forEach(function (radio) {
      radio.addEventListener("change", function () { if (radio.checked) applyAccess(radio.value); });
    });
    scopes.forEach(function (box) {
      box.addEventListener("change", function () { setAccess("custom"); });
    });

    var org = form.querySelector("[data-ak-org]");
    if (org) {
      org.addEventListener("change", function () {
        scopes.forEach(function (box) {
          var allowed = (" " + box.getAttribute("data-orgs") + " ").indexOf(" " + org.value + " ") !== -1;
          box.disabled = !allowed;
          if (!allowed) box.checked = false;
          box.closest(".ak-perm").classList.toggle("ak-perm-disabled", !allowed);
          var why = box.closest(".ak-perm").querySelector(".ak-why");
          if (why) why.hidden = allowed;
        });
        var access = checked(accessRadios);
        if (access) applyAccess(access.value);
      });
    }

    var custom = form.querySelector("[data-ak-custom-date]");
    var dateInput = custom ? custom.querySelector("input") : null;
    var expiryRadios = toArray(form.querySelectorAll("[data-ak-expiry]"));
    var summary = form.querySelector("[data-ak-expiry-summary]");
    var MONTHS = ["January", "February", "March", "April", "May", "June", "July",
      "August", "September", "October", "November", "December"];
    var customText = function () {
      var match = dateInput && /^(\d{4})-(\d{2})-(\d{2})$/.exec(dateInput.value);
      if (!match) return "Pick the last day the key works.";
      return "Expires at the end of " + Number(match[3]) + " " + MONTHS[Number(match[2]) - 1] +
        " " + match[1] + " (UTC).";
    };
    var syncExpiry = function () {
      var chosen = checked(expiryRadios);
      var isCustom = Boolean(chosen && chosen.value === "custom");
      if (custom) custom.hidden = !isCustom;
      if (summary) {
        var text = !chosen ? "" : isCustom ? customText() : chosen.getAttribute("data-ak-expiry-text");
        if (summary.textContent !== text) summary.textContent = text;
      }
    };
    expiryRadios.forEach(function (r) { r.addEventListener("change", syncExpiry); });
    if (dateInput) {
      dateInput.addEventListener("input", syncExpiry);
      dateInput.addEventListener("change", syncExpiry);
    }
    syncExpiry();

    // A field the server marked invalid: its message goes once the field is fixed, and
    // comes back if it is broken again.
    var name = form.querySelector("input[name='name']");
    var fixed = {
      name: function () {
        var value = name.value.trim();
        return value !== "" && value.length <= (Number(name.getAttribute("maxlength")) || 100);
      },
      expiry: function () {
        var chosen = checked(expiryRadios);
        return Boolean(chosen) && (chosen.value !== "custom" || (dateInput && dateInput.value !== ""));
      },
      scopes: function () {
        var access = checked(accessRadios);
        if (access && access.value !== "custom") return true;
        return scopes.some(function (box) { return box.checked && !box.disabled; });
      }
    };
    var invalid = toArray(form.querySelectorAll(".ak-field-invalid"));
    var watched = invalid.map(function (field) {
      var check = field.getAttribute("data-ak-check") || (name && field.contains(name) ? "name" : null);
      return check && fixed[check] ? { field: field, ok: fixed[check] } : null;
    }).filter(Boolean);
    var setShown = function (item, show) {
      item.field.classList.toggle("ak-field-invalid", show);
      toArray(item.field.querySelectorAll(".ak-field-errors")).forEach(function (list) {
        list.hidden = !show;
        // a hidden message must not still be read out as the field's description
        toArray(item.field.querySelectorAll("[aria-describedby]")).forEach(function (input) {
          var ids = input.getAttribute("aria-describedby").split(/\s+/).filter(function (id) {
            return id && id !== list.id;
          });
          if (show) ids.push(list.id);
          if (ids.length) input.setAttribute("aria-describedby", ids.join(" "));
          else input.removeAttribute("aria-describedby");
        });
      });
      toArray(item.field.querySelectorAll("[aria-invalid]")).forEach(function (input) {
        input.setAttribute("aria-invalid", show ? "true" : "false");
      });
    };
    var recheck = function () {
      watched.forEach(function (item) { setShown(item, !item.ok()); });
    };
    if (watched.length) {
      form.addEventListener("input", recheck);
      form.addEventListener("change", recheck);
    }
  }
})();
