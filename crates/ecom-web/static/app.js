// Registers the service worker that makes the store and the merchant panel
// installable and usable offline. Everything else works without JavaScript.
if ("serviceWorker" in navigator) {
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js").catch(() => {});
  });
}
