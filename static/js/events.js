// The events explorer: keeps the URL free of empty parameters, keeps the
// structured panel and the search box in step, shows local times on hover,
// and adds the keyboard: / focuses the search, j and k move through the rows,
// Enter opens the selected event in the side panel.
(function () {
  "use strict";
  var form = document.getElementById("events-filter");
  if (!form) return;
  var q = document.getElementById("filter-q");
  var range = document.getElementById("filter-range");

  // Empty parameters stay out of the request and so out of the URL; from and
  // to only count for a custom range; the default range is no parameter.
  form.addEventListener("htmx:configRequest", function (e) {
    var p = e.detail.parameters;
    var custom = p.get ? p.get("range") === "custom" : p.range === "custom";
    ["q", "range", "from", "to"].forEach(function (k) {
      var v = p.get ? p.get(k) : p[k];
      if (v === "" || v === undefined || v === null || ((k === "from" || k === "to") && !custom) || (k === "range" && v === "30d")) {
        if (p.delete) { p.delete(k); } else { delete p[k]; }
      }
    });
  });
  // A plain submit (no htmx) drops empty fields the same way.
  form.addEventListener("submit", function () {
    if (window.htmx) return;
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name && el.value === "") el.disabled = true;
    });
  });
  ["filter-from", "filter-to"].forEach(function (id) {
    var el = document.getElementById(id);
    if (el) el.addEventListener("input", function () { range.value = "custom"; });
  });

  // The panel: each field owns its qualifier's (not negated) terms in the box.
  // Inside quotes, \" is a quote and \\ a backslash (as the server reads them).
  function tokens(s) {
    return s.match(/-?(?:[a-z]+:)?(?:"(?:[^"\\]|\\.)*"|\S+)/gi) || [];
  }
  function quote(v) {
    return /[\s":]/.test(v) || v.charAt(0) === "-" ? '"' + v.replace(/[\\"]/g, "\\$&") + '"' : v;
  }
  function unquote(v) {
    return v.length > 1 && v.charAt(0) === '"' && v.charAt(v.length - 1) === '"' ? v.slice(1, -1).replace(/\\([\\"])/g, "$1") : v;
  }
  function fillPanel() {
    var seen = {};
    tokens(q.value).forEach(function (t) {
      var m = /^([a-z]+):(.*)$/i.exec(t);
      if (m) seen[m[1].toLowerCase()] = unquote(m[2]);
    });
    form.querySelectorAll("[data-qualifier]").forEach(function (el) {
      var v = seen[el.dataset.qualifier] || "";
      if (el.tagName === "SELECT") v = el.dataset.qualifier === "class" ? v.toUpperCase() : v.toLowerCase();
      if (document.activeElement !== el) el.value = v;
    });
  }
  form.querySelectorAll("[data-qualifier]").forEach(function (el) {
    el.addEventListener("input", function (e) {
      e.stopPropagation(); // the box's own input event below runs the search
      var name = el.dataset.qualifier + ":";
      var kept = tokens(q.value).filter(function (t) { return t.toLowerCase().indexOf(name) !== 0; });
      if (el.value.trim() !== "") kept.push(name + quote(el.value.trim()));
      q.value = kept.join(" ");
      q.dispatchEvent(new Event("input", { bubbles: true }));
    });
  });
  q.addEventListener("input", fillPanel);
  fillPanel();


  // Keyboard.
  var current = -1;
  function rows() { return document.querySelectorAll('[data-testid="event-row"]'); }
  function select(i) {
    var rs = rows();
    if (!rs.length) return;
    current = Math.max(0, Math.min(rs.length - 1, i));
    rs.forEach(function (r, j) { r.setAttribute("aria-selected", j === current ? "true" : "false"); });
    var link = rs[current].querySelector('[data-testid="event-link"]');
    if (link) link.focus();
  }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var el = document.activeElement;
    var typing = el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
    if (e.key === "/" && !typing) {
      e.preventDefault();
      q.focus();
      q.select();
    } else if (e.key === "Escape" && typing && el === q) {
      q.blur();
    } else if ((e.key === "j" || e.key === "k") && !typing) {
      e.preventDefault();
      select(current + (e.key === "j" ? 1 : -1));
    }
  });

  document.body.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail.target && e.detail.target.id === "events-results") {
      current = -1;
      fillPanel();
    }
    if (e.detail.target && e.detail.target.id === "event-panel") {
      var h = e.detail.target.querySelector("h2");
      if (h) { h.setAttribute("tabindex", "-1"); h.focus(); }
    }
  });
  document.body.addEventListener("click", function (e) {
    var close = e.target.closest && e.target.closest("[data-panel-close]");
    if (close) {
      e.preventDefault();
      document.getElementById("event-panel").innerHTML = "";
      var rs = rows();
      if (current >= 0 && rs[current]) {
        var link = rs[current].querySelector('[data-testid="event-link"]');
        if (link) link.focus();
      }
    }
  });
})();
