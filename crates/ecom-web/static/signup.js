// The sign-up form's live address check: suggests an address from the store name
// and asks the server whether it is free as the merchant types. The form works
// without it; the server checks again on submit.
(() => {
  const slug = document.getElementById("slug");
  const name = document.getElementById("store_name");
  const status = document.getElementById("slug-status");
  if (!slug || !status) return;
  let typed = slug.value !== "";
  let timer = 0;
  let asked = "";
  const suggest = (text) =>
    text.toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40).replace(/-+$/, "");
  const check = () => {
    const value = slug.value.trim().toLowerCase();
    if (!value || value === asked) return;
    asked = value;
    fetch(slug.dataset.check + "?slug=" + encodeURIComponent(value), { headers: { accept: "application/json" } })
      .then((r) => r.json())
      .then((a) => {
        if (slug.value.trim().toLowerCase() !== value) return;
        status.textContent = a.message;
        status.className = a.available ? "hint ok" : "hint bad";
        slug.setAttribute("aria-invalid", a.available ? "false" : "true");
      })
      .catch(() => {});
  };
  const later = () => { clearTimeout(timer); timer = setTimeout(check, 250); };
  slug.addEventListener("input", () => { typed = slug.value !== ""; later(); });
  if (name) {
    name.addEventListener("input", () => {
      if (!typed) { slug.value = suggest(name.value); later(); }
    });
  }
  if (slug.value) check();
})();
