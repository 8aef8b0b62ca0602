// backoffice: the evidence upload form. Works without this file (a plain multipart POST); with it,
// files can be dropped onto the form, are listed with their sizes and checked against the limits
// before anything is sent, and a progress bar follows the upload while the page stays usable.
(function () {
  "use strict";

  function humanSize(bytes) {
    var units = [["GB", 1073741824], ["MB", 1048576], ["KB", 1024]];
    for (var i = 0; i < units.length; i++) {
      if (bytes >= units[i][1]) {
        return (Math.round(bytes / units[i][1] * 10) / 10) + " " + units[i][0];
      }
    }
    return bytes + " bytes";
  }

  // The problems with the chosen files, as the server would word them (it checks again anyway).
  function problems(form, files) {
    var maxFiles = +form.dataset.maxFiles, maxFile = +form.dataset.maxFileBytes, maxTotal = +form.dataset.maxTotalBytes;
    var out = [], total = 0;
    if (files.length > maxFiles) out.push("Attach at most " + maxFiles + " files to one submission (you chose " + files.length + ").");
    for (var i = 0; i < files.length; i++) {
      total += files[i].size;
      if (files[i].size === 0) out.push("“" + files[i].name + "” is empty.");
      else if (files[i].size > maxFile) out.push("“" + files[i].name + "” is " + humanSize(files[i].size) + ", more than the " + humanSize(maxFile) + " allowed per file.");
    }
    if (total > maxTotal) out.push("The files add up to " + humanSize(total) + "; one submission can carry at most " + humanSize(maxTotal) + ".");
    return out;
  }

  function showChosen(form) {
    var input = form.querySelector("input[type=file]"), list = form.querySelector("[data-chosen]");
    if (!input || !list) return [];
    list.textContent = "";
    for (var i = 0; i < input.files.length; i++) {
      var li = document.createElement("li");
      li.textContent = input.files[i].name + " — " + humanSize(input.files[i].size);
      list.appendChild(li);
    }
    var found = problems(form, input.files);
    for (var j = 0; j < found.length; j++) {
      var err = document.createElement("li");
      err.className = "field-error";
      err.textContent = found[j];
      list.appendChild(err);
    }
    input.setAttribute("aria-invalid", found.length ? "true" : "false");
    return found;
  }

  document.addEventListener("change", function (e) {
    var form = e.target.closest && e.target.closest("form[data-upload]");
    if (form && e.target.type === "file") showChosen(form);
  });

  // A file dropped beside the drop zone must not make the browser leave the page (and the typed note).
  function hasUploadForm() { return !!document.querySelector("form[data-upload]"); }
  ["dragenter", "dragover"].forEach(function (type) {
    document.addEventListener(type, function (e) {
      var zone = e.target.closest && e.target.closest("[data-dropzone]");
      if (!zone) {
        if (hasUploadForm()) e.preventDefault();
        return;
      }
      e.preventDefault();
      zone.classList.add("dragging");
    });
  });
  document.addEventListener("dragleave", function (e) {
    var zone = e.target.closest && e.target.closest("[data-dropzone]");
    if (zone) zone.classList.remove("dragging");
  });
  document.addEventListener("drop", function (e) {
    var zone = e.target.closest && e.target.closest("[data-dropzone]");
    if (!zone) {
      if (hasUploadForm()) e.preventDefault();
      return;
    }
    e.preventDefault();
    zone.classList.remove("dragging");
    var input = zone.querySelector("input[type=file]");
    input.files = e.dataTransfer.files;
    showChosen(zone.closest("form"));
  });

  // Refuse to send what the server would refuse anyway; otherwise show the progress bar.
  // Only the form's own request carries the files: a button inside it that re-renders part of the form in place
  // (the proposal form's milestone rows) sends no files, so it is neither refused for them nor shown uploading.
  document.addEventListener("htmx:beforeRequest", function (e) {
    var form = e.target.closest && e.target.closest("form[data-upload]");
    if (!form || e.target !== form) return;
    if (showChosen(form).length) {
      e.preventDefault();
      return;
    }
    var box = form.querySelector("[data-progress]");
    if (box) {
      box.hidden = false;
      box.querySelector("progress").value = 0;
    }
  });
  document.addEventListener("htmx:xhr:progress", function (e) {
    var form = e.target.closest && e.target.closest("form[data-upload]");
    if (!form || !e.detail.lengthComputable) return;
    var percent = Math.round(e.detail.loaded / e.detail.total * 100);
    form.querySelector("[data-progress] progress").value = percent;
    form.querySelector("[data-progress-text]").textContent =
      percent < 100 ? "Uploading… " + percent + "% of " + humanSize(e.detail.total) : "Uploaded; checking the files…";
  });
  document.addEventListener("htmx:responseError", function (e) {
    var form = e.target.closest && e.target.closest("form[data-upload]");
    if (!form) return;
    var text = form.querySelector("[data-progress-text]");
    if (text) {
      text.textContent = e.detail.xhr.status === 413
        ? "The upload is larger than a submission may be. Nothing was saved."
        : "The upload failed (" + e.detail.xhr.status + "). Nothing was saved; try again.";
      text.className = "field-error";
    }
  });
  document.addEventListener("htmx:sendError", function (e) {
    var form = e.target.closest && e.target.closest("form[data-upload]");
    var text = form && form.querySelector("[data-progress-text]");
    if (text) {
      text.textContent = "The connection was lost during the upload. Nothing was saved; try again.";
      text.className = "field-error";
    }
  });
})();

// Irreversible actions (export, void, release, record payment) ask first: a button or form with
// data-confirm shows the question; cancelling sends nothing.
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  var question = (button && button.getAttribute("data-confirm")) || event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

/* ── issue 22: review ── */
// Keyboard shortcuts of the review queue (j/k move, Enter/o open) and the review screen (a, p, d, n: the
// element marked data-shortcut). They never act while a person types in a field or holds a modifier key.
(function () {
  "use strict";

  function typing(el) {
    return !!el && (el.isContentEditable || /^(input|textarea|select)$/i.test(el.tagName));
  }
  function visible(el) {
    return !!el && !el.disabled && el.getClientRects().length > 0;
  }
  function queueLinks() {
    return Array.prototype.filter.call(document.querySelectorAll("a[data-queue-link]"), visible);
  }

  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    var key = e.key;
    var links = queueLinks();
    if (links.length && (key === "j" || key === "k")) {
      var at = links.indexOf(document.activeElement);
      var next = at < 0 ? 0 : Math.min(links.length - 1, Math.max(0, at + (key === "j" ? 1 : -1)));
      links[next].focus();
      e.preventDefault();
      return;
    }
    if (links.length && (key === "o" || (key === "Enter" && e.target === document.body))) {
      var chosen = links.indexOf(document.activeElement) >= 0 ? document.activeElement : links[0];
      chosen.click();
      e.preventDefault();
      return;
    }
    if (key.length !== 1) return;
    var target = document.querySelector('[data-shortcut="' + key.toLowerCase().replace(/[^a-z]/g, "") + '"]');
    if (!target || !visible(target) || key !== key.toLowerCase()) return;
    e.preventDefault();
    // Partial and Dispute need a reason: with none yet, the key takes the person to the field instead.
    var reason = target.hasAttribute("data-needs-reason") && target.form && target.form.querySelector("#reason");
    if (reason && !reason.value.trim()) {
      reason.focus();
      return;
    }
    target.click();
  });
})();

// ── issue 22: phones and editors ──
// The main navigation folds under "Menu" on a phone (app.css, only with this class: without JavaScript the links
// show). The header comes back closed with each boosted page, so nothing is kept between pages.
document.documentElement.classList.add("nav-js");
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest(".nav-toggle");
  if (!button) return;
  var open = button.getAttribute("aria-expanded") !== "true";
  button.setAttribute("aria-expanded", open ? "true" : "false");
  button.closest("nav").classList.toggle("nav-open", open);
});
document.addEventListener("keydown", function (event) {
  if (event.key !== "Escape") return;
  var nav = document.querySelector("nav.nav-open");
  if (!nav || !nav.contains(document.activeElement)) return;
  var button = nav.querySelector(".nav-toggle");
  button.setAttribute("aria-expanded", "false");
  nav.classList.remove("nav-open");
  button.focus();
});

// The editors' live total: the amounts as typed, read the way the server reads them (domain/money.parse_amount:
// commas between thousands, a point before at most the currency's decimals, the currency's code or symbol around
// it). An amount it cannot read is left out and counted; the server checks everything again on Update and on Save,
// and its total is what the page shows after each of those.
(function () {
  "use strict";
  var GROUPED = /^(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?$/;

  function parseMinor(text, currency, decimals, symbol) {
    var value = (text || "").trim();
    if (!value) return null;
    if (value.toUpperCase().indexOf(currency) === 0) value = value.slice(3).trim();
    else if (value.toUpperCase().slice(-3) === currency) value = value.slice(0, -3).trim();
    if (symbol && value.charAt(0) === symbol) value = value.slice(1).trim();
    var match = GROUPED.exec(value);
    if (!match) return NaN;
    var frac = match[2] || "";
    if (frac.length > decimals) return NaN;
    while (frac.length < decimals) frac += "0";
    return parseInt(match[1].replace(/,/g, ""), 10) * Math.pow(10, decimals) + (frac ? parseInt(frac, 10) : 0);
  }

  // As domain/money.format_amount: the zero the server formatted ("$0.00", "KWD 0.000") with the number put in.
  function formatMinor(minor, zero, decimals) {
    var scale = Math.pow(10, decimals), whole = Math.floor(minor / scale), frac = String(minor % scale);
    while (frac.length < decimals) frac = "0" + frac;
    var number = whole.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",") + (decimals ? "." + frac : "");
    return zero.replace(/0(\.0+)?/, number);
  }

  function recount(form) {
    var out = form.querySelector("[data-live-total]");
    if (!out) return;
    var currency = out.dataset.currency, zero = out.dataset.zero;
    var decimals = (/\.(0+)/.exec(zero) || ["", ""])[1].length;
    var symbol = zero.charAt(0) === "0" || /^[A-Z]{3}/.test(zero) ? "" : zero.charAt(0);
    var total = 0, unread = 0;
    form.querySelectorAll("[data-amount-minor], input[data-amount]").forEach(function (el) {
      var row = el.closest("tr");
      if (row && row.querySelector("input[data-cancels]:checked")) return;
      if (el.hasAttribute("data-amount-minor")) {
        total += +el.getAttribute("data-amount-minor");
        return;
      }
      var minor = parseMinor(el.value, currency, decimals, symbol);
      if (minor === null) return;
      if (isNaN(minor) || minor <= 0) unread += 1;
      else total += minor;
    });
    out.querySelector("[data-total]").textContent = formatMinor(total, zero, decimals);
    var note = out.querySelector("[data-total-note]");
    if (note) {
      note.textContent = unread
        ? (out.dataset.typedWords || "as typed") + "; " + unread + (unread === 1 ? " amount is" : " amounts are") + " not counted until written like " +
          formatMinor(1250 * Math.pow(10, decimals), zero, decimals).replace(/^[^0-9]*/, "")
        : out.dataset.typedWords || "as typed";
    }
  }

  document.addEventListener("input", function (event) {
    var form = event.target.closest && event.target.closest("form");
    if (form && (event.target.matches("input[data-amount]") || event.target.matches("input[data-cancels]"))) {
      recount(form);
    }
  });
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form");
    if (form && event.target.matches("input[data-cancels]")) recount(form);
  });
})();

/* ── issue 22: search ── */
// The header's search suggestions (web/search.py): Escape closes them, the arrow keys move between the box and the
// results, a click elsewhere closes them. Without JavaScript the box submits to the results page.
document.addEventListener("keydown", function (event) {
  var form = event.target.closest && event.target.closest(".header-search");
  if (!form) return;
  var box = form.querySelector(".search-suggestions");
  var input = form.querySelector("input[type=search]");
  if (event.key === "Escape") {
    if (box.children.length) {
      box.innerHTML = "";
      input.focus();
      event.preventDefault();
    }
    return;
  }
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
  var links = Array.prototype.slice.call(box.querySelectorAll("a"));
  if (!links.length) return;
  var next = links.indexOf(document.activeElement) + (event.key === "ArrowDown" ? 1 : -1);
  if (next < 0) input.focus();
  else links[Math.min(next, links.length - 1)].focus();
  event.preventDefault();
});
document.addEventListener("click", function (event) {
  var box = document.getElementById("header-search-results");
  if (box && box.children.length && !event.target.closest(".header-search")) box.innerHTML = "";
});

/* ── issue 22: words (copy a link) ── */
// A button with data-copy="<input id>" copies that field's value. It is hidden in the HTML and shown here, so
// without JavaScript there is no dead button: the read-only field can still be selected and copied by hand.
(function () {
  function reveal(root) {
    (root.querySelectorAll ? root : document).querySelectorAll("button[data-copy][hidden]").forEach(function (b) {
      b.hidden = false;
    });
  }
  document.addEventListener("DOMContentLoaded", function () { reveal(document); });
  document.addEventListener("htmx:load", function (e) { reveal(e.target); });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-copy"));
    var status = document.querySelector('[data-copy-status="' + button.getAttribute("data-copy") + '"]');
    if (!field) return;
    function said(words) { if (status) status.textContent = words; }
    field.focus();
    field.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(
        function () { said("Copied."); },
        function () { said("Press Ctrl+C (⌘C on a Mac) to copy the selected link."); }
      );
    } else {
      said(document.execCommand && document.execCommand("copy") ? "Copied." : "Press Ctrl+C (⌘C on a Mac) to copy the selected link.");
    }
  });
})();

/* ── issue 22: queue ── */
// The payment queue's selection (templates/payments/_queue.html): the header box ticks every row of the page, and
// the selection's total follows what is ticked, per currency, summed from the rows' data attributes (net in minor
// units, exact integers) and written as the page writes money; the export and hold questions name it. Without this
// the server still refuses an empty selection and states the total after the action.
(function () {
  function grouped(whole) {
    return whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }
  function formatMinor(minor, symbol, exp) {
    var digits = String(minor);
    if (!exp) return symbol + grouped(digits);
    while (digits.length <= exp) digits = "0" + digits;
    return symbol + grouped(digits.slice(0, -exp)) + "." + digits.slice(-exp);
  }
  function summary(form) {
    var sums = {}, order = [], count = 0;
    form.querySelectorAll("input[name=invoice_id][data-net-minor]:checked").forEach(function (box) {
      var currency = box.getAttribute("data-currency");
      if (!sums[currency]) {
        sums[currency] = { minor: 0, symbol: box.getAttribute("data-symbol"), exp: +box.getAttribute("data-exp") };
        order.push(currency);
      }
      sums[currency].minor += +box.getAttribute("data-net-minor");
      count += 1;
    });
    order.sort();
    var totals = order.map(function (c) { return formatMinor(sums[c].minor, sums[c].symbol, sums[c].exp); });
    return { count: count, totals: totals.join(" and ") };
  }
  function refresh(form) {
    if (form.querySelector("input[name=scope][value=matching]")) return;  // the server's "all matching" words stand
    var boxes = form.querySelectorAll("input[name=invoice_id][data-net-minor]");
    var s = summary(form);
    var words = s.count + " payment" + (s.count === 1 ? "" : "s");
    var output = form.querySelector("[data-selection-total]");
    if (output) output.textContent = s.count ? words + " selected, " + s.totals + " total." : "Tick payments to select them.";
    var all = form.querySelector("[data-select-page]");
    if (all) {
      all.hidden = boxes.length === 0;
      var ticked = form.querySelectorAll("input[name=invoice_id][data-net-minor]:checked").length;
      all.checked = boxes.length > 0 && ticked === boxes.length;
      all.indeterminate = ticked > 0 && ticked < boxes.length;
    }
    form.querySelectorAll("button[data-confirm-verb]").forEach(function (button) {
      if (s.count) {
        button.setAttribute("data-confirm", button.getAttribute("data-confirm-verb") + " " + words + ", " + s.totals
          + ", " + button.getAttribute("data-confirm-end"));
      }
    });
  }
  function setUp(root) {
    (root || document).querySelectorAll("form[data-bulk-selection]").forEach(refresh);
  }
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form[data-bulk-selection]");
    if (!form) return;
    if (event.target.matches("[data-select-page]")) {
      form.querySelectorAll("input[name=invoice_id][data-net-minor]:not(:disabled)").forEach(function (box) {
        box.checked = event.target.checked;
      });
    }
    refresh(form);
  });
  document.addEventListener("DOMContentLoaded", function () { setUp(document); });
  document.addEventListener("htmx:load", function (event) { setUp(event.target); });
  // Back to a page the browser kept: its boxes may be ticked still.
  window.addEventListener("pageshow", function () { setUp(document); });
})();
