/* facturo: the small behaviours of the pages. No amounts are computed here: totals come
   from the server (htmx posts the editor form to the totals endpoint). */
(function () {
  "use strict";

  function refreshTotals() {
    document.body.dispatchEvent(new CustomEvent("lines-changed", { bubbles: true }));
  }

  // Editor: add a line from the <template>, with the next free index.
  document.addEventListener("click", function (event) {
    var add = event.target.closest("#add-line");
    if (add) {
      var lines = document.getElementById("lines");
      var template = document.getElementById("line-template");
      var index = parseInt(lines.dataset.next || "0", 10);
      lines.dataset.next = String(index + 1);
      var wrapper = document.createElement("div");
      wrapper.innerHTML = template.innerHTML.replace(/__i__/g, String(index));
      var row = wrapper.firstElementChild;
      lines.appendChild(row);
      var first = row.querySelector("input");
      if (first) first.focus();
      return;
    }
    var remove = event.target.closest(".remove-line");
    if (remove) {
      var line = remove.closest("[data-line]");
      var container = line.parentElement;
      line.remove();
      if (!container.querySelector("[data-line]")) document.getElementById("add-line").click();
      refreshTotals();
    }
  });

  // Product picker: fill the line from the product (capture phase, so that the totals
  // request triggered by the same change sees the filled values).
  document.addEventListener("change", function (event) {
    var picker = event.target.closest("select.product-picker");
    if (!picker) return;
    var option = picker.selectedOptions[0];
    if (!option || !option.value) return;
    var line = picker.closest("[data-line]");
    function set(suffix, value) {
      var field = line.querySelector('[name$="-' + suffix + '"]');
      if (field && value !== undefined) field.value = value;
    }
    var description = line.querySelector('[name$="-description"]');
    if (description && (!description.value || description.dataset.fromProduct === "1")) {
      description.value = option.dataset.name;
      description.dataset.fromProduct = "1";
    }
    set("unit_price", option.dataset.price);
    set("vat_rate", option.dataset.rate);
    set("vat_category", option.dataset.category);
    set("unit_code", option.dataset.unit);
  }, true);

  // Confirmation on destructive or final actions.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });

  // Double-click safety: a form posts once; its buttons are disabled until the next page.
  // The clicked button's name/value is kept in a hidden field (disabled buttons are not sent).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-once")) return;
    if (form.dataset.submitted === "1") { event.preventDefault(); return; }
    form.dataset.submitted = "1";
    var submitter = event.submitter;
    if (submitter && submitter.name) {
      var hidden = document.createElement("input");
      hidden.type = "hidden";
      hidden.name = submitter.name;
      hidden.value = submitter.value;
      form.appendChild(hidden);
    }
    if (submitter) submitter.setAttribute("aria-busy", "true");
    window.setTimeout(function () {
      form.querySelectorAll("button[type=submit], button:not([type])").forEach(function (b) {
        b.disabled = true;
      });
    }, 0);
  });

  // Coming back with the browser's Back button: the form can be used again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-once]").forEach(function (form) {
      delete form.dataset.submitted;
      form.querySelectorAll("button").forEach(function (b) {
        b.disabled = false;
        b.removeAttribute("aria-busy");
      });
      form.querySelectorAll("input[type=hidden][name=action]").forEach(function (i) { i.remove(); });
    });
  });
})();
