/* The live alerts badge of the map page: asks /api/alerts/count every 30 s and shows the number of the
   user's unacknowledged alerts as a red badge on the link to /alerts (the page where they are read and
   acknowledged). Loaded as a file (the Content-Security-Policy allows no inline script). */
(function () {
  "use strict";

  var POLL_MS = 30000;

  function start() {
    var link = document.getElementById("wm-alerts-link");
    if (!link) return;
    var badge = link.querySelector(".wm-alerts-badge");
    var url = link.getAttribute("data-count-url");
    var timer = null;
    // the look of the badge lives here with its behaviour (style properties are not inline scripts)
    badge.style.background = "#d7301f";
    badge.style.color = "#fff";
    badge.style.borderRadius = "0.7rem";
    badge.style.padding = "0 0.4rem";
    badge.style.marginLeft = "0.25rem";
    badge.style.fontWeight = "700";
    badge.style.fontSize = "0.8rem";

    function show(count) {
      link.setAttribute("data-count", String(count));
      if (count > 0) {
        badge.textContent = count > 99 ? "99+" : String(count);
        badge.hidden = false;
      } else {
        badge.textContent = "";
        badge.hidden = true;
      }
    }

    function poll() {
      clearTimeout(timer);
      fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (answer) { if (answer && typeof answer.count === "number") show(answer.count); })
        .catch(function () { /* the server is away for a moment: keep the last number, ask again later */ })
        .then(function () { timer = setTimeout(poll, POLL_MS); });
    }

    // a tab coming back to the front asks at once rather than showing a number up to 30 s old
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") poll();
    });
    window.webmapAlerts = { poll: poll };
    poll();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
