// Platform dashboard: fetches fresh server-rendered charts every 10 s while the tab
// is visible. Without JavaScript the page shows the charts as of its load.
(function () {
  "use strict";
  var box = document.getElementById("dashboard");
  if (!box || !window.fetch) return;
  var url = box.getAttribute("data-refresh");
  function refresh() {
    if (document.hidden) return;
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html) box.innerHTML = html; })
      .catch(function () {});
  }
  setInterval(refresh, 10000);
})();
