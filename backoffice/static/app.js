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
