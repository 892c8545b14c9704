// rollwise console: progressive enhancement only. Every page works without this file;
// it adds live updates, instant share percentages, confirmations and small conveniences.
"use strict";

function onReady(fn) {
  if (document.readyState !== "loading") fn();
  else document.addEventListener("DOMContentLoaded", fn);
}

// The environment switcher submits on change (its button is for use without JavaScript).
function autosubmit() {
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
    var button = select.form.querySelector(".js-hide");
    if (button) button.hidden = true;
  });
}

// Buttons with data-confirm ask before their form is sent.
function confirmations() {
  document.querySelectorAll("[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
}

// A split's shares, as percentages, follow its weights as they are typed.
function shares() {
  document.querySelectorAll("table[data-split]").forEach(function (table) {
    function update() {
      var inputs = table.querySelectorAll("input[data-weight]");
      var total = 0;
      inputs.forEach(function (input) {
        var w = Number(input.value);
        if (Number.isInteger(w) && w >= 0) total += w;
      });
      inputs.forEach(function (input) {
        var out = input.closest("tr").querySelector("output[data-share]");
        var w = Number(input.value);
        out.textContent = (Number.isInteger(w) && w >= 0 && total > 0)
          ? Number((100 * w / total).toPrecision(4)) + "%" : "–";
      });
    }
    table.addEventListener("input", update);
  });
}

// Variant keys typed in the editor are offered in the variant fields at once.
function variantKeys() {
  var list = document.getElementById("variant-keys");
  if (!list) return;
  function refresh() {
    list.replaceChildren();
    document.querySelectorAll("input[data-variant-key]").forEach(function (input) {
      if (!input.value) return;
      var option = document.createElement("option");
      option.value = input.value;
      list.appendChild(option);
    });
  }
  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches("input[data-variant-key]")) refresh();
  });
}

// Changing a condition's kind or operator, or a rule's serve, redraws the form's fields.
function redraw() {
  document.querySelectorAll("select[data-operator], select[data-condition-kind], select[data-serve]")
    .forEach(function (select) {
      select.addEventListener("change", function () {
        var form = select.form;
        var action = document.createElement("input");
        action.type = "hidden";
        action.name = "action";
        action.value = "refresh";
        form.appendChild(action);
        sessionStorage.setItem("rollwise-focus", select.id);
        form.submit();
      });
    });
  var focus = sessionStorage.getItem("rollwise-focus");
  if (focus) {
    sessionStorage.removeItem("rollwise-focus");
    var element = document.getElementById(focus);
    if (element) element.focus();
  }
}

// The new token is selected when focused, to copy it.
function selectOnFocus() {
  document.querySelectorAll("[data-select-on-focus]").forEach(function (input) {
    input.addEventListener("focus", function () { input.select(); });
  });
}

// A rollout page follows the controller: on every change its live part is fetched again.
function live() {
  var region = document.getElementById("rollout-live");
  if (!region || !window.EventSource) return;
  var source = new EventSource(region.getAttribute("data-live"));
  source.addEventListener("changed", function () {
    fetch(region.getAttribute("data-part"), {credentials: "same-origin"})
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        region.innerHTML = html;
        confirmations();
        region.setAttribute("data-updated", String(Date.now()));
      })
      .catch(function () { source.close(); });
  });
}

// After a refused save, the list of problems takes the focus (screen readers read it).
function problems() {
  var box = document.getElementById("problems");
  if (box) box.focus();
}

onReady(function () {
  autosubmit();
  confirmations();
  shares();
  variantKeys();
  redraw();
  selectOnFocus();
  live();
  problems();
  document.documentElement.setAttribute("data-ready", "");  // the enhancements are in place
});
