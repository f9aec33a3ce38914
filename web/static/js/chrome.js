// What every page has: sign-out and the project switch.
import { logout } from "./api.js";

document.getElementById("logout")?.addEventListener("click", logout);
document.getElementById("project-switch")?.addEventListener("change", (e) => {
  const url = new URL(location.href);
  url.searchParams.set("project", e.target.value);
  location.assign(url);
});
