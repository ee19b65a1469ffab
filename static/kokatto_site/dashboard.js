// The admin front page's charts (kokatto_site/templates/admin/index.html): the figures
// come from the page's json_script element, the drawing from the vendored Chart.js
// (static/vendor/chartjs/). A file, not an inline script: the admin's CSP allows no other.
"use strict";

(function () {
  const SOURCE_COLOURS = ["#417690", "#f5a623"];
  const STATUS_COLOURS = {
    PENDING: "#9aa5b1",
    SENDING: "#79aec8",
    SENT: "#417690",
    DELIVERED: "#2e8b57",
    UNDELIVERED: "#d9822b",
    FAILED: "#ba2121",
    CANCELLED: "#6b6b6b",
    EXPIRED: "#8e44ad",
  };

  function stackedBar(canvas, labels, datasets) {
    return new window.Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }

  function draw() {
    const source = document.getElementById("dashboard-data");
    if (!source || !window.Chart) {
      return;
    }
    const data = JSON.parse(source.textContent);
    stackedBar(
      document.getElementById("chart-accepted"),
      data.days,
      data.accepted.map(function (series, index) {
        return {
          label: series.label,
          data: series.data,
          backgroundColor: SOURCE_COLOURS[index % SOURCE_COLOURS.length],
        };
      }),
    );
    stackedBar(
      document.getElementById("chart-deliveries"),
      data.media,
      data.deliveries.map(function (series) {
        return {
          label: series.label,
          data: series.data,
          backgroundColor: STATUS_COLOURS[series.label] || "#999999",
        };
      }),
    );
    document.getElementById("platform-dashboard").dataset.chartsDrawn = "true";
  }

  // Deferred scripts run before DOMContentLoaded, Chart.js first (document order).
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
