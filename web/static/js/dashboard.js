// The dashboard's Refresh now (admins): refreshes every metrics view, then shows the page again with the new figures.
import { rpc } from "./api.js";

const button = document.getElementById("refresh-now");
const status = document.getElementById("refresh-status");
button?.addEventListener("click", async () => {
  button.disabled = true;
  status.textContent = "Refreshing…";
  try {
    const out = await rpc("refresh_metrics");
    if (out.refreshed) {
      status.textContent = "Refreshed; reloading…";
      location.reload();
      return;
    }
    status.textContent = "A refresh is already running; try again in a moment.";
  } catch (e) {
    status.textContent = `Could not refresh: ${e.message}`;
  }
  button.disabled = false;
});
