// The notification template editor's live preview: as the merchant types, the form's
// fields (with its CSRF token) are posted to the preview endpoint, and the rendered
// email goes into a sandboxed iframe through `srcdoc` (no scripts run there). Saving,
// resetting and test sends are plain form posts and work without this script.
(function () {
  "use strict";
  var form = document.getElementById("template-form");
  if (!form || !window.fetch) return;
  var url = form.getAttribute("data-preview");
  var frame = document.getElementById("preview-html");
  var subject = document.getElementById("preview-subject");
  var text = document.getElementById("preview-text");
  var error = document.getElementById("preview-error");
  var timer = null;
  var seq = 0;

  function show(data) {
    error.hidden = true;
    if (subject) subject.textContent = data.subject || "";
    text.textContent = data.text || "";
    if (frame) {
      var hasHtml = !!data.html && !!document.getElementById("html");
      frame.hidden = !hasHtml;
      if (hasHtml) frame.srcdoc = data.html;
    }
  }

  function refresh() {
    var mine = ++seq;
    var body = new URLSearchParams(new FormData(form));
    body.delete("action");
    fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    })
      .then(function (resp) { return resp.json().then(function (data) { return { ok: resp.ok, data: data }; }); })
      .then(function (r) {
        if (mine !== seq) return; // a newer keystroke's answer wins
        if (r.ok) {
          show(r.data);
        } else {
          error.textContent = (r.data && r.data.error && r.data.error.message) || "The preview failed.";
          error.hidden = false;
        }
      })
      .catch(function () {
        if (mine !== seq) return;
        error.textContent = "The preview could not be reached; your text is not lost.";
        error.hidden = false;
      });
  }

  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  });
})();
