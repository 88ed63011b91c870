// The inbox bell: keeps the unread count in the header live, and adds new messages to
// the inbox page as they arrive, from the account's server-sent event stream. The
// pages work without it (the count is rendered by the server; reload to refresh).
(() => {
  const bell = document.querySelector("a.bell[data-inbox-stream]");
  if (!bell || !("EventSource" in window)) return;
  const count = bell.querySelector("[data-unread]");
  const list = document.querySelector("[data-inbox-list]");

  function showCount(n) {
    if (count) {
      count.textContent = String(n);
      count.hidden = n === 0;
    }
    bell.classList.toggle("has-unread", n > 0);
    bell.setAttribute("aria-label", n > 0 ? `Inbox, ${n} unread` : "Inbox");
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function addItem(item) {
    if (!list || document.getElementById(`item-${item.id}`)) return;
    const li = el("li", "inbox-item unread fresh");
    li.id = `item-${item.id}`;
    const main = el("div", "inbox-main");
    const title = el("p", "inbox-title");
    title.append(el("span", "pill new", "New"), document.createTextNode(` ${item.title}`));
    main.append(title);
    if (item.body) main.append(el("p", "inbox-body", item.body));
    const meta = el("p", "inbox-meta");
    meta.append(el("time", "", item.created_at));
    if (item.link) {
      const a = el("a", "", item.link.includes("/orders/") ? "View the order" : "Open");
      a.href = item.link;
      meta.append(document.createTextNode(" · "), a);
    }
    main.append(meta);
    li.append(main);
    const form = el("form", "inbox-action");
    form.method = "post";
    form.action = `${list.dataset.area}/inbox/${item.id}/read`;
    const csrf = el("input");
    csrf.type = "hidden";
    csrf.name = "_csrf";
    csrf.value = list.dataset.csrf || "";
    const button = el("button", "link", "Mark read");
    button.type = "submit";
    form.append(csrf, button);
    li.append(form);
    list.prepend(li);
    const empty = document.querySelector("[data-inbox-empty]");
    if (empty) empty.remove();
  }

  const source = new EventSource(bell.dataset.inboxStream);
  source.addEventListener("unread", (e) => {
    try { showCount(JSON.parse(e.data).unread); } catch (_) { /* a malformed event changes nothing */ }
  });
  source.addEventListener("item", (e) => {
    try {
      const item = JSON.parse(e.data);
      addItem(item);
      showCount(item.unread);
    } catch (_) { /* ignored */ }
  });
})();
