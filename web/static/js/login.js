const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  error.hidden = true;
  const r = await fetch("/auth/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: form.email.value, password: form.password.value }),
  });
  if (r.ok) {
    location.assign(form.dataset.next || "/");
    return;
  }
  const body = await r.json().catch(() => ({}));
  error.textContent = r.status === 429 ? "Too many attempts; wait a moment and try again."
    : body.message || "Sign-in failed.";
  error.hidden = false;
  form.password.select();
});
