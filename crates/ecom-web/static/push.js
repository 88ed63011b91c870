// "Get notified on this device" / "Alert me on new orders on this device": registers
// the service worker, subscribes to Web Push with the platform's VAPID key and saves
// the subscription for the signed-in account (or removes it). The card lives in
// layout/_push.html; data-push-area is "/account" or "/merchant".
(function () {
  const card = document.querySelector("[data-push-area]");
  if (!card) return;
  const area = card.getAttribute("data-push-area");
  const csrf = card.getAttribute("data-csrf");
  const state = card.querySelector("[data-push-state]");
  const on = card.querySelector("[data-push-on]");
  const off = card.querySelector("[data-push-off]");
  const say = (text) => { state.textContent = text; };
  const show = (subscribed) => {
    on.hidden = subscribed;
    off.hidden = !subscribed;
  };
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    say("This browser cannot receive push notifications.");
    return;
  }
  const keyBytes = (b64) => {
    const padded = (b64 + "===".slice((b64.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  };
  const post = (path, body) =>
    fetch(area + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify(body),
    });
  const registration = () => navigator.serviceWorker.register("/sw.js").then(() => navigator.serviceWorker.ready);

  registration()
    .then((reg) => reg.pushManager.getSubscription())
    .then((sub) => {
      show(Boolean(sub));
      say(sub ? "On: this device gets notifications." : "Off on this device.");
    })
    .catch(() => say("Push notifications are not available here."));

  on.addEventListener("click", () => {
    on.disabled = true;
    say("Asking your browser…");
    Notification.requestPermission()
      .then((permission) => {
        if (permission !== "granted") throw new Error("Notifications are blocked for this site in your browser settings.");
        return Promise.all([registration(), fetch(area + "/push/key", { credentials: "same-origin" }).then((r) => r.json())]);
      })
      .then(([reg, key]) => reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key.publicKey) }))
      .then((sub) => post("/push", sub.toJSON()).then((r) => {
        if (!r.ok) return r.json().then((e) => { sub.unsubscribe(); throw new Error(e.error || "The subscription was refused."); });
        show(true);
        say("On: this device gets notifications.");
      }))
      .catch((e) => say(e.message || "Could not turn notifications on."))
      .finally(() => { on.disabled = false; });
  });

  off.addEventListener("click", () => {
    off.disabled = true;
    registration()
      .then((reg) => reg.pushManager.getSubscription())
      .then((sub) => {
        if (!sub) return;
        return post("/push/unsubscribe", { endpoint: sub.endpoint }).then(() => sub.unsubscribe());
      })
      .then(() => { show(false); say("Off on this device."); })
      .catch(() => say("Could not turn notifications off."))
      .finally(() => { off.disabled = false; });
  });
})();
