// Draws each [data-chart] element from the inert JSON block; data never becomes markup.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var charts = document.querySelectorAll("[data-chart]");
  Array.prototype.forEach.call(charts, function (el) {
    var spec = data.charts[el.getAttribute("data-chart")];
    if (!spec) { return; }
    Plotly.newPlot(el, spec.data, spec.layout, spec.config).then(function () {
      el.setAttribute("data-drawn", "true");
    });
  });
})();
