/* flask-apikeys list and policy pages: small progressive enhancements, loaded by the
   pages that need them. Everything works without this file (an Apply button submits
   the filters; the permission list is read only when its box is ticked). */
(function () {
  "use strict";

  var toArray = function (list) { return Array.prototype.slice.call(list); };
  var narrow = window.matchMedia ? window.matchMedia("(max-width: 760px)") : null;

  // Filters that apply themselves: a choice submits the form; the search box does on
  // Enter (or when cleared). The Apply button is then not needed.
  toArray(document.querySelectorAll("form[data-ak-autosubmit]")).forEach(function (form) {
    var submit = function () {
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    };
    toArray(form.querySelectorAll("select")).forEach(function (select) {
      select.addEventListener("change", submit);
    });
    toArray(form.querySelectorAll("input[type='search']")).forEach(function (input) {
      var last = input.value;
      input.addEventListener("search", function () { if (input.value !== last) submit(); });
      input.addEventListener("change", function () { if (input.value !== last) submit(); });
    });
    toArray(form.querySelectorAll("[data-ak-apply]")).forEach(function (button) {
      button.hidden = true;
    });
    form.setAttribute("data-ak-enhanced", "");
  });

  // Filters fold away on a phone (behind their summary) and open again on a wide screen.
  var folds = toArray(document.querySelectorAll("details[data-ak-fold]"));
  var fold = function () {
    folds.forEach(function (details) { details.open = !(narrow && narrow.matches); });
  };
  if (folds.length) {
    fold();
    if (narrow && narrow.addEventListener) narrow.addEventListener("change", fold);
  }

  // A list of choices that counts only when a box is ticked: disabled until it is.
  toArray(document.querySelectorAll("[data-ak-enabled-by]")).forEach(function (box) {
    var toggle = document.getElementById(box.getAttribute("data-ak-enabled-by"));
    if (!toggle) return;
    var sync = function () {
      box.classList.toggle("ak-choices-off", !toggle.checked);
      toArray(box.querySelectorAll("input")).forEach(function (input) {
        input.disabled = !toggle.checked;
      });
    };
    toggle.addEventListener("change", sync);
    sync();
  });
})();
