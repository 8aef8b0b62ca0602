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
