// Times show in the viewer's zone (components.Time), UTC when they chose none, with ISO 8601
// as the title. When the viewer chose no zone, hovering a time also shows it in the
// browser's own zone: add it to the title of each <time data-local-title>, once.
(function () {
  function fill(root) {
    root.querySelectorAll("time[data-local-title]:not([data-local-filled])").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      el.title = d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "long" }) + " · " + el.getAttribute("datetime");
      el.setAttribute("data-local-filled", "");
    });
  }
  document.addEventListener("DOMContentLoaded", function () { fill(document); });
  document.addEventListener("htmx:afterSettle", function (e) { fill(e.target); });
})();
