// pystator dashboard: charts, live refresh (from the transition stream) that can be paused,
// diagrams, confirmations.
// No inline script anywhere: page data comes in <script type="application/json"> blocks.
(function () {
  "use strict";

  var COLORS = { applied: "#12805c", retried: "#b54708", dead: "#c01048", rejected: "#7f56d9" };

  function drawCharts(root) {
    if (typeof uPlot === "undefined") return;
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-source"));
      if (!source) return;
      var data = JSON.parse(source.textContent);
      var names = Object.keys(COLORS).filter(function (k) { return k in data; });
      var series = [{}].concat(names.map(function (name) {
        return { label: name, stroke: COLORS[name], width: 1.5, points: { show: false } };
      }));
      var columns = [data.t].concat(names.map(function (name) { return data[name]; }));
      el.innerHTML = "";
      var width = Math.max(el.clientWidth || 600, 300);
      new uPlot({
        width: width, height: 240, series: series,
        scales: { x: { time: true } },
        axes: [{}, { label: "events / min", size: 60 }],
        legend: { live: true },
      }, columns, el);
    });
  }

  function paused() {
    var box = document.getElementById("live-pause");
    return !!(box && box.checked);
  }

  document.addEventListener("htmx:beforeRequest", function (evt) {
    var el = evt.detail && evt.detail.elt;
    if (el && el.hasAttribute && el.hasAttribute("data-live") && paused()) evt.preventDefault();
  });

  document.addEventListener("htmx:afterSwap", function (evt) {
    drawCharts(evt.detail.target || document);
  });

  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) evt.preventDefault();
  }, true);

  // Live updates: a region with data-stream re-renders (its hx-trigger listens for
  // "transition" on the body) when the transition stream delivers one. EventSource reconnects
  // by itself, sending Last-Event-ID, so nothing is missed across a dropped connection.
  function startStream() {
    var region = document.querySelector("[data-stream]");
    if (!region || typeof EventSource === "undefined") return;
    var source = new EventSource(region.getAttribute("data-stream"));
    source.addEventListener("open", function () {
      document.body.setAttribute("data-stream-state", "open");
    });
    source.addEventListener("error", function () {
      document.body.setAttribute("data-stream-state", "reconnecting");
    });
    source.addEventListener("transition", function (evt) {
      document.body.setAttribute("data-last-transition", evt.lastEventId);
      if (!paused() && typeof htmx !== "undefined") htmx.trigger(document.body, "transition");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
    startStream();
    if (typeof mermaid !== "undefined" && document.querySelector("pre.mermaid")) {
      mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "neutral" });
      mermaid.run({ querySelector: "pre.mermaid" }).then(function () {
        document.body.setAttribute("data-diagram", "drawn");
      }).catch(function (err) {
        document.body.setAttribute("data-diagram", "failed");
        console.error(err);
      });
    }
  });
})();
