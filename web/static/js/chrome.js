// What every page has: sign-out, the project switch, and times in the viewer's locale (the server writes each as
// ISO text in a <time datetime> or an element's data-datetime; data-format says how: date (a UTC day), day, hour,
// week, month, or datetime, the default).
import { logout } from "./api.js";

document.getElementById("logout")?.addEventListener("click", logout);
document.getElementById("project-switch")?.addEventListener("change", (e) => {
  const url = new URL(location.href);
  url.searchParams.set("project", e.target.value);
  location.assign(url);
});

const formats = {
  datetime: { dateStyle: "medium", timeStyle: "short" },
  date: { dateStyle: "medium", timeZone: "UTC" },
  day: { month: "short", day: "numeric", timeZone: "UTC" },
  week: { month: "short", day: "numeric", timeZone: "UTC" },
  month: { month: "short", year: "numeric", timeZone: "UTC" },
  hour: { hour: "numeric", minute: "2-digit" },
};
for (const el of document.querySelectorAll("time[datetime], [data-datetime]")) {
  const iso = el.dataset.datetime || el.getAttribute("datetime");
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) continue;
  const text = new Intl.DateTimeFormat(undefined, formats[el.dataset.format] || formats.datetime).format(when);
  el.textContent = text + (el.dataset.suffix || "");
  if (el.tagName === "TIME" && !el.title) el.title = iso;
}
