// Times are shown in UTC (components.Time). When the viewer chose no time zone, hovering a
// time shows it in the browser's own zone: fill the title of each <time data-local-title>.
(function () {
  function fill(root) {
    root.querySelectorAll("time[data-local-title]:not([title])").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) el.title = d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "long" });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { fill(document); });
  document.addEventListener("htmx:afterSettle", function (e) { fill(e.target); });
})();
