// gpujobs dashboard: live updates without a framework. A <main data-refresh="N">
// is re-fetched every N seconds (same page, same origin) and swapped in, unless the
// reader is typing in a form or the tab is hidden. The server escapes every value, so
// the fetched HTML is the same markup a reload would show.
"use strict";
(function () {
  function busy() {
    var a = document.activeElement;
    return a && (a.tagName === "INPUT" || a.tagName === "SELECT" || a.tagName === "TEXTAREA");
  }
  function refresh(main, seconds) {
    setTimeout(function tick() {
      if (document.hidden || busy()) { setTimeout(tick, seconds * 1000); return; }
      fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.text(); })
        .then(function (text) {
          var doc = new DOMParser().parseFromString(text, "text/html");
          var fresh = doc.querySelector("main");
          var banner = doc.querySelector(".banner");
          var old = document.querySelector(".banner");
          if (fresh) { main.replaceChildren.apply(main, Array.prototype.slice.call(fresh.childNodes)); }
          if (old) { old.remove(); }
          if (banner) { main.parentNode.insertBefore(banner, main); }
          document.body.dataset.updated = String(Date.now());
        })
        .catch(function () {
          if (!document.querySelector(".banner")) {
            var b = document.createElement("div");
            b.className = "banner";
            b.setAttribute("role", "alert");
            b.textContent = "The dashboard cannot be reached; retrying.";
            main.parentNode.insertBefore(b, main);
          }
        })
        .finally(function () { setTimeout(tick, seconds * 1000); });
    }, seconds * 1000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var main = document.querySelector("main[data-refresh]");
    if (main) { refresh(main, Number(main.dataset.refresh) || 5); }
  });
})();
