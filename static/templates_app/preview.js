// Live preview of a content template: posts the form's template parts to the
// admin's preview endpoint, which renders them with the platform's own renderer.
// Everything shown is set with textContent, so a template cannot inject markup.
"use strict";
(function () {
  function $(id) { return document.getElementById(id); }

  function fieldValue(name) {
    const element = document.querySelector('[name="' + name + '"]');
    return element ? element.value : "";
  }

  function show(result) {
    const preview = result.preview || {};
    ["subject", "body", "html_body"].forEach(function (part) {
      $("preview-" + part).textContent = preview[part] || "";
    });
    const sms = result.sms;
    $("preview-sms").textContent = sms
      ? sms.characters + " characters · " + sms.encoding + " · " + sms.segments +
        " segment(s) · " + sms.remaining + " left in the last"
      : "";
    const problems = $("preview-problems");
    problems.replaceChildren();
    Object.entries(result.errors || {}).forEach(function ([part, messages]) {
      messages.forEach(function (message) {
        const item = document.createElement("li");
        item.className = "preview-error";
        item.textContent = part.replace("_", " ") + ": " + message;
        problems.appendChild(item);
      });
    });
    (result.warnings || []).forEach(function (message) {
      const item = document.createElement("li");
      item.className = "preview-warning";
      item.textContent = message;
      problems.appendChild(item);
    });
    $("preview-status").textContent = result.error
      ? result.error
      : result.valid ? "Up to date." : "This template cannot be saved yet.";
  }

  let timer = null;
  let sequence = 0;

  function refresh() {
    const panel = $("template-preview");
    const data = new FormData();
    ["application", "medium", "subject", "body", "html_body"].forEach(function (name) {
      data.append(name, fieldValue(name));
    });
    data.append("template", panel.dataset.templateId || "");
    const mine = ++sequence;
    $("preview-status").textContent = "Rendering…";
    fetch(panel.dataset.previewUrl, {
      method: "POST",
      body: data,
      headers: { "X-CSRFToken": fieldValue("csrfmiddlewaretoken") },
      credentials: "same-origin",
    })
      .then(function (response) { return response.json(); })
      .then(function (result) { if (mine === sequence) { show(result); } })
      .catch(function () { $("preview-status").textContent = "Preview unavailable."; });
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!$("template-preview")) { return; }
    const form = $("template-preview").closest("form");
    form.addEventListener("input", schedule);
    form.addEventListener("change", schedule);
    refresh();
  });
})();
